using System.Collections.Concurrent;
using System.Diagnostics;
using System.Numerics.Tensors;
using Bastion.Diagnostics;
using Bastion.Generation;
using Bastion.Inference;
using Bastion.Tests.Grains.Inference;
using Microsoft.Extensions.Time.Testing;

namespace Bastion.Tests.Grains.Generation;

/// <summary>
/// The continuous-batching engine: a sequence computes exactly what it computes alone while others of other
/// lengths join and leave around it; cancellation and slow readers free the batch for the others.
/// </summary>
public sealed class BatchingEngineTests
{
    private static readonly ModelShape Small = new(50257, 128, 64, 2, 4);
    private static readonly TextTokenizer Tokenizer = TextTokenizer.CreateGpt2();

    /// <summary>How long a test waits for the engine's thread before calling it stuck; never a wait for time to pass.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    public static TheoryData<string> Variants => ["gpt2", "gqa", "no-position-ids"];

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task Batched_TokensAndLogitsMatchEachSequenceAlone_AsOthersJoinAndLeave(string variant)
    {
        var bytes = variant switch
        {
            "gpt2" => Gpt2ModelBuilder.Build(ModelShape.Tiny),
            "gqa" => Gpt2ModelBuilder.Build(Small with { KeyValueHeads = 2 }),
            _ => Gpt2ModelBuilder.Build(Small with { PositionIdsInput = false }),
        };
        // No end-of-text, so every sequence runs its full length and the schedule below is fixed.
        using var model = DecoderModel.Load(bytes, TinyModelFixture.RuntimeOptions, eosTokenId: -1);
        // Different prompt lengths and lifetimes: A runs throughout; B joins at A's step 2 and leaves early;
        // C joins at A's step 4; D and F join with C (the three prompts, of different lengths, are prefilled together,
        // padded and masked) and D is cancelled mid-way; E joins after B has left.
        var plans = new Plan[]
        {
            new("A", [15496, 995, 11, 428, 318], 16, JoinAt: null),
            new("B", [40, 1842], 4, JoinAt: ("A", 2)),
            new("C", [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290], 10, JoinAt: ("A", 4)),
            new("D", [1212, 318, 257], 12, JoinAt: ("A", 4), CancelAfter: 3),
            new("E", [50256], 6, JoinAt: ("A", 9)),
            new("F", [818, 262, 3726, 373, 262, 1573], 5, JoinAt: ("A", 4)),
        };
        var alone = plans.ToDictionary(p => p.Name, p => Alone(model, p));

        using var engine = new BatchingEngine(model, Tokenizer.Decode, new BatchingOptions(), TimeProvider.System);
        var logits = plans.ToDictionary(p => p.Name, _ => new List<float[]>());
        var cancellations = plans.ToDictionary(p => p.Name, _ => new CancellationTokenSource());
        var runs = new ConcurrentDictionary<string, Task<GenerationResult>>();
        var widest = 0;

        void Start(Plan plan)
        {
            Assert.True(engine.TryReserve());
            var prepared = new PreparedGeneration("m", plan.Prompt, plan.MaxTokens, SamplingOptions.Greedy, []);
            var buffer = new CompletionBuffer(ModelCatalog.BufferCapacity);
            buffer.RemoveBound();
            runs[plan.Name] = engine.Enqueue(plan.Name, prepared, buffer, (step, own) =>
            {
                logits[plan.Name].Add(own.ToArray());
                widest = Math.Max(widest, engine.ActiveSequences);
                if (plan.CancelAfter == step)
                {
                    cancellations[plan.Name].Cancel();
                }

                foreach (var joiner in plans.Where(p => p.JoinAt == (plan.Name, step)))
                {
                    Start(joiner);
                }
            }, cancellations[plan.Name].Token);
        }

        Start(plans[0]);
        while (runs.Count < plans.Length || !runs.Values.All(r => r.IsCompleted))
        {
            await Task.WhenAll(runs.Values);
        }

        Assert.True(widest >= 3, $"at most {widest} sequences were ever batched together");
        foreach (var plan in plans)
        {
            var result = await runs[plan.Name];
            var expected = alone[plan.Name];
            var steps = logits[plan.Name];
            var produced = plan.CancelAfter is { } cancelled ? cancelled + 1 : plan.MaxTokens;
            Assert.Equal(produced, result.Usage.CompletionTokens);
            Assert.Equal(plan.Prompt.Length, result.Usage.PromptTokens);
            Assert.Equal(produced, steps.Count);
            var tokens = steps.Select(s => TensorPrimitives.IndexOfMax<float>(s)).ToList();
            Assert.Equal(expected.Tokens.Take(produced).ToList(), tokens);
            for (var step = 0; step < produced; step++)
            {
                var difference = TensorPrimitives.MaxMagnitude(Difference(expected.Logits[step], steps[step]));
                Assert.True(difference <= 1e-4f, $"{plan.Name} step {step}: logits differ by {difference}");
            }

            if (plan.CancelAfter is null)
            {
                Assert.Equal(Tokenizer.Decode(expected.Tokens), result.Text);
                Assert.Equal(FinishReasons.Length, result.FinishReason);
            }
            else
            {
                Assert.Equal(FinishReasons.Cancelled, result.FinishReason);
            }
        }

        Assert.Equal(0, engine.ActiveSequences);
        Assert.Equal(0, engine.QueueDepth);
    }

    [Fact]
    public async Task Cancellation_FreesTheSlotForTheNextSequence()
    {
        using var model = DecoderModel.Load(Gpt2ModelBuilder.Build(ModelShape.Tiny), TinyModelFixture.RuntimeOptions, eosTokenId: -1);
        using var engine = new BatchingEngine(model, Tokenizer.Decode, new BatchingOptions { MaxBatchSize = 1 }, TimeProvider.System);
        using var cancellation = new CancellationTokenSource();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var first = Enqueue(engine, [15496, 995], 10_000, (_, _) => started.TrySetResult(), cancellation.Token);
        await started.Task;
        var second = Enqueue(engine, [40, 1842], 5, null, CancellationToken.None);
        Assert.Equal(1, engine.QueueDepth);
        Assert.False(second.IsCompleted);
        await cancellation.CancelAsync();

        var result = await second;
        Assert.Equal(FinishReasons.Cancelled, (await first).FinishReason);
        Assert.Equal(FinishReasons.Length, result.FinishReason);
        Assert.Equal(5, result.Usage.CompletionTokens);
    }

    [Fact]
    public async Task SlowReader_IsSetAsideWithoutStallingOthers_AndResumesWhereItWas()
    {
        using var model = DecoderModel.Load(Gpt2ModelBuilder.Build(ModelShape.Tiny), TinyModelFixture.RuntimeOptions, eosTokenId: -1);
        using var engine = new BatchingEngine(model, Tokenizer.Decode, new BatchingOptions { MaxBatchSize = 2 }, TimeProvider.System);
        int[] prompt = [15496, 995, 11];
        var expected = Tokenizer.Decode(model.GenerateGreedy(prompt, 40, CancellationToken.None).ToList());
        var slowBuffer = new CompletionBuffer(2);
        Assert.True(engine.TryReserve());
        var slow = engine.Enqueue("slow", new PreparedGeneration("m", prompt, 40, SamplingOptions.Greedy, []), slowBuffer, CancellationToken.None);

        // Nobody reads the slow sequence, yet another decodes to the end beside it.
        var other = await Enqueue(engine, [40, 1842], 30, null, CancellationToken.None);
        Assert.Equal(30, other.Usage.CompletionTokens);
        Assert.False(slow.IsCompleted);
        Assert.Equal(1, engine.ActiveSequences);

        // As the generation grain does: the buffer ends once the engine reports the result.
        _ = slow.ContinueWith(t => slowBuffer.Complete(t.Result), TaskScheduler.Default);
        var text = new System.Text.StringBuilder();
        for (var index = 0; ;)
        {
            var chunk = await slowBuffer.ReadAsync(index, 1, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
            text.AppendJoin("", chunk.Pieces);
            index += chunk.Pieces.Count;
            if (chunk.Finished)
            {
                break;
            }
        }

        var result = await slow;
        Assert.Equal(expected, result.Text);
        Assert.Equal(expected, text.ToString());
        Assert.Equal(40, result.Usage.CompletionTokens);
        Assert.Equal(0, engine.ActiveSequences);
    }

    /// <summary>
    /// The slow-reader attack: one user opens as many streams as there are batch slots and never reads. Spec: both are
    /// set aside holding both slots, so another user's request waits; one tick short of the set-aside timeout they still
    /// hold them; at the timeout both end (<c>length</c>, with the text they had) and the other user is served in full.
    /// </summary>
    [Fact]
    public async Task SlowReaderAttack_SetAsideTimeoutFreesTheSlots_SoOthersAreServed()
    {
        using var model = DecoderModel.Load(Gpt2ModelBuilder.Build(ModelShape.Tiny), TinyModelFixture.RuntimeOptions, eosTokenId: -1);
        var time = new CountingTimeProvider();
        var options = new BatchingOptions { MaxBatchSize = 2, SetAsideTimeoutSeconds = 30 };
        using var engine = new BatchingEngine(model, Tokenizer.Decode, options, time);
        var attack = new List<(CompletionBuffer Buffer, Task<GenerationResult> Run)>();
        int[][] prompts = [[15496, 995], [40, 1842, 318]];
        foreach (var prompt in prompts)
        {
            Assert.True(engine.TryReserve());
            var unread = new CompletionBuffer(2);
            attack.Add((unread, engine.Enqueue("attacker", new PreparedGeneration("m", prompt, 1000, SamplingOptions.Greedy, []), unread, CancellationToken.None)));
        }

        Assert.True(SpinWait.SpinUntil(() => engine.SetAsideSequences == 2, Patience), "the unread streams were never set aside");
        var victim = Enqueue(engine, [464, 2068, 7586], 5, null, CancellationToken.None);
        Assert.Equal(2, engine.ActiveSequences);
        // Nothing else will wake the engine: it must have set itself a timer for the set-aside sequences.
        Assert.True(SpinWait.SpinUntil(() => time.ArmedTimers == 1, Patience), "the idle engine set no timer for its set-aside sequences");

        time.Advance(TimeSpan.FromSeconds(30) - TimeSpan.FromTicks(1));
        Assert.DoesNotContain(attack, a => a.Run.IsCompleted);
        Assert.Equal(2, engine.ActiveSequences);
        Assert.False(victim.IsCompleted);

        time.Advance(TimeSpan.FromTicks(1));
        var served = await victim.WaitAsync(Patience);

        Assert.Equal(5, served.Usage.CompletionTokens);
        Assert.Equal(FinishReasons.Length, served.FinishReason);
        foreach (var (buffer, run) in attack)
        {
            var ended = await run.WaitAsync(Patience);
            Assert.Equal(FinishReasons.Length, ended.FinishReason);
            Assert.InRange(ended.Usage.CompletionTokens, 2, 999);
            buffer.Complete(ended);
            Assert.Equal(ended.Text, await ReadAllAsync(buffer));
        }

        Assert.Equal(0, engine.ActiveSequences);
        Assert.Equal(0, engine.SetAsideSequences);
    }

    /// <summary>A reader that catches up within the set-aside timeout rejoins and gets its whole answer, however slow.</summary>
    [Fact]
    public async Task SlowReader_CatchingUpWithinTheSetAsideTimeout_KeepsItsGeneration()
    {
        using var model = DecoderModel.Load(Gpt2ModelBuilder.Build(ModelShape.Tiny), TinyModelFixture.RuntimeOptions, eosTokenId: -1);
        var time = new FakeTimeProvider();
        using var engine = new BatchingEngine(model, Tokenizer.Decode, new BatchingOptions { MaxBatchSize = 1, SetAsideTimeoutSeconds = 30 }, time);
        var buffer = new CompletionBuffer(2);
        Assert.True(engine.TryReserve());
        var run = engine.Enqueue("slow", new PreparedGeneration("m", [15496, 995], 12, SamplingOptions.Greedy, []), buffer, CancellationToken.None);

        _ = run.ContinueWith(t => buffer.Complete(t.Result), TaskScheduler.Default);
        var read = 0;
        var setAside = 0;
        while (!run.IsCompleted)
        {
            Assert.True(SpinWait.SpinUntil(() => engine.SetAsideSequences == 1 || run.IsCompleted, Patience), "the unread sequence was never set aside");
            if (run.IsCompleted)
            {
                break;
            }

            // Each time a second inside the timeout, the reader takes what waits; reading on from there acknowledges it,
            // and that read returns once the sequence, back in the batch, has written more.
            setAside++;
            time.Advance(TimeSpan.FromSeconds(29));
            read += (await buffer.ReadAsync(read, 100, CancellationToken.None)).Pieces.Count;
            read += (await buffer.ReadAsync(read, 100, CancellationToken.None).WaitAsync(Patience)).Pieces.Count;
        }

        var result = await run;
        Assert.True(setAside >= 2, $"set aside {setAside} times");
        Assert.Equal(12, result.Usage.CompletionTokens);
        Assert.Equal(FinishReasons.Length, result.FinishReason);
    }

    /// <summary>
    /// Spec: with a maximum duration of 1 s, a generation asked for 1000 tokens whose clock passes 1 s while its 4th
    /// token is sampled ends after exactly 4 tokens, <c>finish_reason: length</c>, and gives its slot back.
    /// </summary>
    [Fact]
    public async Task MaxGenerationDuration_EndsTheGenerationWithWhatItHas_AndFreesTheSlot()
    {
        using var model = DecoderModel.Load(Gpt2ModelBuilder.Build(ModelShape.Tiny), TinyModelFixture.RuntimeOptions, eosTokenId: -1);
        var time = new FakeTimeProvider();
        using var engine = new BatchingEngine(model, Tokenizer.Decode, new BatchingOptions { MaxBatchSize = 1, MaxGenerationSeconds = 1 }, time);
        int[] prompt = [15496, 995, 11];

        var run = Enqueue(engine, prompt, 1000, (step, _) =>
        {
            if (step == 3)
            {
                time.Advance(TimeSpan.FromSeconds(1));
            }
        }, CancellationToken.None);
        var result = await run.WaitAsync(Patience);

        Assert.Equal(FinishReasons.Length, result.FinishReason);
        Assert.Equal(4, result.Usage.CompletionTokens);
        Assert.Equal(Tokenizer.Decode(model.GenerateGreedy(prompt, 4, CancellationToken.None).ToList()), result.Text);
        Assert.Equal(0, engine.ActiveSequences);
        var next = await Enqueue(engine, [40, 1842], 3, null, CancellationToken.None).WaitAsync(Patience);
        Assert.Equal(3, next.Usage.CompletionTokens);
    }

    /// <summary>The maximum duration also ends a sequence that sits set aside, even one whose reader reads now and then.</summary>
    [Fact]
    public async Task MaxGenerationDuration_EndsASetAsideSequence()
    {
        using var model = DecoderModel.Load(Gpt2ModelBuilder.Build(ModelShape.Tiny), TinyModelFixture.RuntimeOptions, eosTokenId: -1);
        var time = new FakeTimeProvider();
        using var engine = new BatchingEngine(model, Tokenizer.Decode, new BatchingOptions { MaxGenerationSeconds = 60, SetAsideTimeoutSeconds = 3600 }, time);
        var buffer = new CompletionBuffer(2);
        Assert.True(engine.TryReserve());
        var run = engine.Enqueue("slow", new PreparedGeneration("m", [15496, 995], 1000, SamplingOptions.Greedy, []), buffer, CancellationToken.None);
        Assert.True(SpinWait.SpinUntil(() => engine.SetAsideSequences == 1, Patience));

        // The engine's idle loop may have measured the time left just before this advance and armed its (fake-clock)
        // timer just after it; such a timer runs from the new now, so another advance is what fires it. A real clock
        // has no such gap. Each advance is a full duration, so the sequence has in any case run past its maximum.
        time.Advance(TimeSpan.FromSeconds(60));
        for (var extra = 0; extra < 3 && await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(2))) != run; extra++)
        {
            time.Advance(TimeSpan.FromSeconds(60));
        }

        var result = await run.WaitAsync(Patience);

        Assert.Equal(FinishReasons.Length, result.FinishReason);
        Assert.Equal(0, engine.ActiveSequences);
    }

    [Fact]
    public async Task Enqueue_UnderAnActivity_RecordsQueueWaitPrefillAndDecodeAsItsChildren()
    {
        using var parent = new Activity("IGenerationGrain/StartAsync").SetIdFormat(ActivityIdFormat.W3C).Start();
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == InferenceTracing.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            // Other tests' engines may run meanwhile: only this trace counts.
            ActivityStopped = span =>
            {
                if (span.TraceId == parent.TraceId)
                {
                    spans.Enqueue(span);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        using var model = DecoderModel.Load(Gpt2ModelBuilder.Build(ModelShape.Tiny), TinyModelFixture.RuntimeOptions, eosTokenId: -1);
        using var engine = new BatchingEngine(model, Tokenizer.Decode, new BatchingOptions(), TimeProvider.System, "tiny");

        var result = await Enqueue(engine, [15496, 995], 5, observer: null, CancellationToken.None).WaitAsync(Patience);
        parent.Stop();

        // Each span is recorded before the sequence's result is set.
        Assert.Equal(
            [InferenceTracing.QueueWaitSpan, InferenceTracing.PrefillSpan, InferenceTracing.DecodeSpan],
            spans.OrderBy(s => s.StartTimeUtc).Select(s => s.DisplayName));
        Assert.All(spans, span =>
        {
            Assert.Equal(parent.SpanId, span.ParentSpanId);
            Assert.Equal("tiny", span.GetTagItem("gen_ai.request.model"));
            Assert.Equal("text_completion", span.GetTagItem("gen_ai.operation.name"));
        });
        var decode = spans.Single(s => s.DisplayName == InferenceTracing.DecodeSpan);
        Assert.Equal(5, Assert.IsType<int>(decode.GetTagItem("gen_ai.usage.output_tokens")));
        Assert.Equal(2, Assert.IsType<int>(decode.GetTagItem("gen_ai.usage.input_tokens")));
        Assert.Equal([result.FinishReason], Assert.IsType<string[]>(decode.GetTagItem("gen_ai.response.finish_reasons")));
    }

    [Fact]
    public void Queue_RefusesBeyondItsLength_AndReleasedPlacesReturn()
    {
        using var model = DecoderModel.Load(Gpt2ModelBuilder.Build(ModelShape.Tiny), TinyModelFixture.RuntimeOptions);
        using var engine = new BatchingEngine(model, Tokenizer.Decode, new BatchingOptions { MaxQueueLength = 2 }, TimeProvider.System);

        Assert.True(engine.TryReserve());
        Assert.True(engine.TryReserve());
        Assert.False(engine.TryReserve());
        Assert.Equal(2, engine.QueueDepth);
        engine.Release();
        Assert.True(engine.TryReserve());
    }

    [Fact]
    public void FairQueue_TakesOwnersInTurn_SoOneFloodingOwnerCannotStarveOthers()
    {
        var queue = new FairQueue<string>();
        foreach (var (owner, item) in new[] { ("a", "a1"), ("a", "a2"), ("a", "a3"), ("a", "a4"), ("b", "b1"), ("c", "c1"), ("b", "b2") })
        {
            queue.Enqueue(owner, item);
        }

        var order = new List<string>();
        while (queue.TryDequeue(out var item))
        {
            order.Add(item);
            if (item == "a2")
            {
                // A newcomer takes its turn after those already waiting.
                queue.Enqueue("d", "d1");
            }
        }

        Assert.Equal(["a1", "b1", "c1", "a2", "b2", "a3", "d1", "a4"], order);
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void FairQueue_RemoveAll_KeepsTheOthersInOrder()
    {
        var queue = new FairQueue<string>();
        queue.Enqueue("a", "a1");
        queue.Enqueue("a", "a2");
        queue.Enqueue("b", "b1");

        Assert.Equal(["a1"], queue.RemoveAll(i => i == "a1"));

        Assert.Equal(2, queue.Count);
        Assert.True(queue.TryDequeue(out var first));
        Assert.Equal("a2", first);
    }

    [Fact]
    public void Options_OutOfRange_NameTheSetting()
    {
        var problems = new BatchingOptions { MaxBatchSize = 0, MaxQueueLength = -1, MaxWaitMilliseconds = -5, MaxGenerationSeconds = 0, SetAsideTimeoutSeconds = 3601 }
            .Problems().ToList();

        Assert.Equal(5, problems.Count);
        Assert.Contains(problems, p => p.Contains("Bastion:Inference:Batching:MaxGenerationSeconds", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("Bastion:Inference:Batching:SetAsideTimeoutSeconds", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("Bastion:Inference:Batching:MaxBatchSize", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("Bastion:Inference:Batching:MaxQueueLength", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("Bastion:Inference:Batching:MaxWaitMilliseconds", StringComparison.Ordinal));
        Assert.Empty(new BatchingOptions().Problems());
    }

    private static async Task<string> ReadAllAsync(CompletionBuffer buffer)
    {
        var text = new System.Text.StringBuilder();
        for (var index = 0; ;)
        {
            var chunk = await buffer.ReadAsync(index, 100, CancellationToken.None).WaitAsync(Patience);
            text.AppendJoin("", chunk.Pieces);
            index += chunk.Pieces.Count;
            if (chunk.Finished)
            {
                return text.ToString();
            }
        }
    }

    private static Task<GenerationResult> Enqueue(BatchingEngine engine, int[] prompt, int maxTokens, LogitsObserver? observer, CancellationToken cancellationToken)
    {
        Assert.True(engine.TryReserve());
        var buffer = new CompletionBuffer(ModelCatalog.BufferCapacity);
        buffer.RemoveBound();
        return engine.Enqueue("owner", new PreparedGeneration("m", prompt, maxTokens, SamplingOptions.Greedy, []), buffer, observer, cancellationToken);
    }

    private static (List<int> Tokens, List<float[]> Logits) Alone(DecoderModel model, Plan plan)
    {
        var logits = new List<float[]>();
        var tokens = model.GenerateGreedy(plan.Prompt, plan.MaxTokens, (_, l) => logits.Add(l.ToArray()), CancellationToken.None).ToList();
        return (tokens, logits);
    }

    private static float[] Difference(float[] a, float[] b)
    {
        var difference = new float[a.Length];
        TensorPrimitives.Subtract(a, b, difference);
        return difference;
    }

    private sealed record Plan(string Name, int[] Prompt, int MaxTokens, (string, int)? JoinAt, int? CancelAfter = null);
}
