using System.Diagnostics;
using System.Text;
using Bastion.Diagnostics;
using Bastion.Guards;
using Bastion.Inference;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bastion.Generation;

/// <summary>
/// Continuous batching for one loaded model on one worker silo. A dedicated thread (off the Orleans
/// scheduler) runs the decode loop: between steps, finished, cancelled and slow-read sequences leave,
/// and queued ones join, taken round-robin across owners and prefilled apart from the batch (those of one turn with
/// prompts of similar length together); only then is the KV cache
/// repacked (see <see cref="DecodeBatch"/> and docs/batching.md).
/// </summary>
public sealed partial class BatchingEngine : IDisposable
{
    private readonly DecoderModel _model;
    private readonly Func<IReadOnlyList<int>, string> _decode;
    private readonly BatchingOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _name;
    private readonly BastionMetrics? _metrics;
    private readonly Lock _gate = new();
    private readonly FairQueue<Sequence> _queue = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly DecodeBatch _batch;
    private readonly Task _loop;

    // Owned by the loop thread alone.
    private readonly List<Sequence> _rows = [];
    private readonly List<Sequence> _paused = [];

    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _reserved;
    private int _active;
    private int _setAside;
    private bool _disposed;

    /// <param name="model">The model; the engine does not own it.</param>
    /// <param name="decode">Turns token ids into text.</param>
    /// <param name="options">Batch size, queue length and wait.</param>
    /// <param name="time">The clock token latencies are measured on.</param>
    /// <param name="name">The model's name in metrics.</param>
    /// <param name="metrics">Where token counts and latencies go, if anywhere.</param>
    /// <param name="logger">Where a failed loop is reported.</param>
    public BatchingEngine(
        DecoderModel model, Func<IReadOnlyList<int>, string> decode, BatchingOptions options, TimeProvider time, string name = "", BastionMetrics? metrics = null, ILogger? logger = null)
    {
        _model = model;
        _name = name;
        _metrics = metrics;
        _decode = decode;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        _batch = new DecodeBatch(model);
        _loop = Task.Factory.StartNew(Loop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Requests holding a queue place: reserved by a prepared generation, or waiting for a batch slot.</summary>
    public int QueueDepth
    {
        get
        {
            lock (_gate)
            {
                return _queue.Count + _reserved;
            }
        }
    }

    /// <summary>Sequences holding a batch slot: decoding, or set aside until their reader catches up.</summary>
    public int ActiveSequences => Volatile.Read(ref _active);

    /// <summary>Sequences holding a batch slot while set aside for a slow reader.</summary>
    internal int SetAsideSequences => Volatile.Read(ref _setAside);

    private TimeSpan MaxGeneration => TimeSpan.FromSeconds(_options.MaxGenerationSeconds);

    private TimeSpan SetAsideTimeout => TimeSpan.FromSeconds(_options.SetAsideTimeoutSeconds);

    /// <summary>Takes a queue place for a generation about to start; false when the queue is full.</summary>
    public bool TryReserve()
    {
        lock (_gate)
        {
            if (_disposed || _queue.Count + _reserved >= _options.MaxQueueLength)
            {
                return false;
            }

            _reserved++;
            return true;
        }
    }

    /// <summary>Gives back a place taken by <see cref="TryReserve"/> for a generation that will not start.</summary>
    public void Release()
    {
        lock (_gate)
        {
            _reserved = Math.Max(0, _reserved - 1);
        }
    }

    /// <summary>
    /// Queues a generation on a place taken by <see cref="TryReserve"/>. Its text goes to <paramref name="buffer"/>;
    /// the task completes with the result (finish reason <c>cancelled</c> once <paramref name="cancellationToken"/> fires).
    /// </summary>
    public Task<GenerationResult> Enqueue(string owner, PreparedGeneration prepared, CompletionBuffer buffer, CancellationToken cancellationToken) =>
        Enqueue(owner, prepared, buffer, observer: null, cancellationToken);

    /// <summary>
    /// As the public overload; <paramref name="observer"/> sees each step's logits for this sequence (for the first choice
    /// when there are several). Each choice (<see cref="PreparedGeneration.Choices"/>) is its own sequence, all on the
    /// one queue place; the task completes once every choice has ended, with their results combined
    /// (<see cref="GenerationResult.Combine"/>).
    /// </summary>
    internal Task<GenerationResult> Enqueue(
        string owner, PreparedGeneration prepared, CompletionBuffer buffer, LogitsObserver? observer, CancellationToken cancellationToken)
    {
        var maxNewTokens = _model.MaxNewTokensWithinContext(prepared.PromptTokens.Length, prepared.MaxNewTokens);
        var sequences = new Sequence[prepared.Choices];
        for (var choice = 0; choice < sequences.Length; choice++)
        {
            // Choice 0 keeps the request's seed; the others derive theirs from it, so they differ yet repeat with it.
            var sampling = choice == 0 ? prepared.Sampling : prepared.Sampling with { Seed = unchecked(prepared.Sampling.Seed + (choice * SeedStride)) };
            sequences[choice] = new Sequence(
                prepared, buffer, new CompletionText(_decode, prepared.Stop), new TokenSampler(sampling), choice == 0 ? observer : null, cancellationToken)
            {
                Choice = choice,
                Decode = _decode,
                // After the stop-sequence hold-back, before the buffer: nothing unguarded reaches a reader or the result.
                Guard = prepared.OutputGuard.IsActive ? new OutputRedactor(prepared.OutputGuard, _metrics is { } metrics ? (rule, action) => metrics.RecordGuardHit("output", rule, action) : null) : null,
                MaxNewTokens = maxNewTokens,
                Timing = _metrics is null ? null : new SequenceTiming(_metrics, _name, prepared.Operation, _time),
                // The loop thread has no ambient activity: the spans hang under the grain call that queued the sequence.
                Trace = InferenceTracing.Source.HasListeners() ? new SequenceTrace(Activity.Current?.Context ?? default, _name, prepared, _time) : null,
            };
        }

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _reserved = Math.Max(0, _reserved - 1);
            foreach (var sequence in sequences)
            {
                _queue.Enqueue(owner, sequence);
            }
        }

        foreach (var sequence in sequences)
        {
            sequence.Registration = cancellationToken.Register(static state => ((BatchingEngine)state!).Wake(), this);
        }

        Wake();
        return sequences.Length == 1 ? sequences[0].Completion.Task : CombineAsync(sequences);
    }

    /// <summary>An odd 64-bit constant (the golden ratio's): choice seeds spread over both halves the sampler folds.</summary>
    private const long SeedStride = unchecked((long)0x9E3779B97F4A7C15);

    private static async Task<GenerationResult> CombineAsync(Sequence[] sequences) =>
        GenerationResult.Combine(await Task.WhenAll(sequences.Select(s => s.Completion.Task)));

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        _stopping.Cancel();
        _batch.Terminate();
        Wake();
        try
        {
            _loop.Wait();
        }
        catch (AggregateException)
        {
            // The loop logs its own failures.
        }

        List<Sequence> queued;
        lock (_gate)
        {
            queued = _queue.RemoveAll(_ => true);
        }

        foreach (var sequence in queued.Concat(_rows).Concat(_paused))
        {
            sequence.Fail(new ObjectDisposedException(nameof(BatchingEngine)));
        }

        _batch.Dispose();
        _stopping.Dispose();
    }

    private void Wake()
    {
        TaskCompletionSource wake;
        lock (_gate)
        {
            wake = _wake;
            _wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        wake.TrySetResult();
    }

    private void Loop()
    {
        // The thread inherited whatever activity was current when the engine was built; its spans take their parents explicitly.
        Activity.Current = null;
        var stopping = _stopping.Token;
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                Task wake;
                lock (_gate)
                {
                    wake = _wake.Task;
                }

                Rebatch(stopping);
                if (_rows.Count == 0)
                {
                    // Idle: wait for a request, a cancellation, a set-aside sequence's reader, or the first set-aside
                    // sequence's time to run out. A reader that caught up between the check above and taking its change
                    // task is seen by the re-check.
                    Task[] changes = [wake, .. _paused.Select(p => p.Buffer.Changed)];
                    if (!_paused.Any(p => !p.Buffer.IsFull))
                    {
                        using var timer = new CancellationTokenSource();
                        if (NextSetAsideDeadline() is { } due)
                        {
                            changes = [.. changes, Task.Delay(due, _time, timer.Token)];
                        }

                        Task.WaitAny(changes, stopping);
                        timer.Cancel();
                    }

                    continue;
                }

                Step();
            }
        }
        catch (Exception) when (stopping.IsCancellationRequested)
        {
            // Shutting down: a terminated step or an aborted wait.
        }
        catch (Exception exception)
        {
            LogLoopFailed(_logger, exception);
            throw;
        }
    }

    /// <summary>Lets sequences leave and join; repacks the cache only when the rows changed.</summary>
    private void Rebatch(CancellationToken stopping)
    {
        var staying = new List<Sequence>();
        var leaving = false;
        foreach (var row in _rows)
        {
            if (row.Done)
            {
                leaving = true;
            }
            else if (row.CancellationToken.IsCancellationRequested)
            {
                row.Cancel();
                leaving = true;
            }
            else if (_time.GetElapsedTime(row.SlotTakenAt) >= MaxGeneration)
            {
                LogMaxGenerationReached(_logger, _options.MaxGenerationSeconds, row.Produced);
                row.Stop(FinishReasons.Length);
                leaving = true;
            }
            else if (row.Buffer.IsFull)
            {
                // A slow reader: set aside with its cache, so it neither stalls the batch nor loses its place.
                row.Cache = _batch.Unpack(_rows.IndexOf(row));
                row.SetAsideAt = _time.GetTimestamp();
                _paused.Add(row);
                leaving = true;
            }
            else
            {
                staying.Add(row);
            }
        }

        var joining = new List<Sequence>();
        foreach (var paused in _paused.ToList())
        {
            if (paused.CancellationToken.IsCancellationRequested)
            {
                paused.Cancel();
                _paused.Remove(paused);
            }
            else if (_time.GetElapsedTime(paused.SlotTakenAt) >= MaxGeneration)
            {
                LogMaxGenerationReached(_logger, _options.MaxGenerationSeconds, paused.Produced);
                paused.Stop(FinishReasons.Length);
                _paused.Remove(paused);
            }
            else if (!paused.Buffer.IsFull)
            {
                _paused.Remove(paused);
                joining.Add(paused);
            }
            else if (_time.GetElapsedTime(paused.SetAsideAt) >= SetAsideTimeout)
            {
                // Its reader has read nothing for the whole timeout (gone, or holding slots on purpose): the slot,
                // and with the settlement the user's concurrency lease, go to others.
                LogSetAsideTimedOut(_logger, _options.SetAsideTimeoutSeconds, paused.Produced);
                paused.Stop(FinishReasons.Length);
                _paused.Remove(paused);
            }
        }

        Volatile.Write(ref _setAside, _paused.Count);

        List<Sequence> cancelled;
        lock (_gate)
        {
            cancelled = _queue.RemoveAll(s => s.CancellationToken.IsCancellationRequested);
        }

        foreach (var sequence in cancelled)
        {
            sequence.Trace?.LeftQueue(cancelled: true);
            sequence.Cancel();
        }

        var free = _options.MaxBatchSize - staying.Count - joining.Count - _paused.Count;
        if (free > 0 && staying.Count == 0 && joining.Count == 0 && _options.MaxWaitMilliseconds > 0 && QueueDepth > 0)
        {
            // An idle engine waits briefly so that requests arriving together start together.
            Task.Delay(TimeSpan.FromMilliseconds(_options.MaxWaitMilliseconds), _time, stopping).Wait(stopping);
        }

        var arrivals = new List<Sequence>();
        while (arrivals.Count < free && TryDequeue(out var next))
        {
            next.Trace?.LeftQueue(cancelled: false);
            if (next.MaxNewTokens == 0)
            {
                next.Finish();
            }
            else
            {
                arrivals.Add(next);
            }
        }

        foreach (var group in PrefillGroups(arrivals))
        {
            joining.AddRange(Prefill(group));
        }

        if (!leaving && joining.Count == 0)
        {
            return;
        }

        var caches = new List<SequenceCache>();
        foreach (var row in staying)
        {
            caches.Add(_batch.Unpack(_rows.IndexOf(row)));
        }

        foreach (var joiner in joining)
        {
            caches.Add(joiner.Cache!);
            joiner.Cache = null;
        }

        _batch.Pack(caches);
        _rows.Clear();
        _rows.AddRange(staying);
        _rows.AddRange(joining);
    }

    /// <summary>How long until the first set-aside sequence reaches its set-aside timeout or the maximum duration; null when none is set aside.</summary>
    private TimeSpan? NextSetAsideDeadline()
    {
        TimeSpan? next = null;
        foreach (var paused in _paused)
        {
            var left = Math.Min(
                (SetAsideTimeout - _time.GetElapsedTime(paused.SetAsideAt)).Ticks,
                (MaxGeneration - _time.GetElapsedTime(paused.SlotTakenAt)).Ticks);
            var due = TimeSpan.FromTicks(Math.Max(0, left));
            next = next is { } earlier && earlier < due ? earlier : due;
        }

        return next;
    }

    private bool TryDequeue(out Sequence sequence)
    {
        lock (_gate)
        {
            return _queue.TryDequeue(out sequence);
        }
    }

    /// <summary>
    /// Splits joiners into groups prefilled together: prompts of similar length, so that the padding of a group at most
    /// doubles the tokens it computes.
    /// </summary>
    private static IEnumerable<List<Sequence>> PrefillGroups(List<Sequence> arrivals)
    {
        var group = new List<Sequence>();
        long tokens = 0;
        foreach (var sequence in arrivals.OrderBy(s => s.Prepared.PromptTokens.Length))
        {
            var length = sequence.Prepared.PromptTokens.Length;
            if (group.Count > 0 && (long)length * (group.Count + 1) > 2 * (tokens + length))
            {
                yield return group;
                group = [];
                tokens = 0;
            }

            group.Add(sequence);
            tokens += length;
        }

        if (group.Count > 0)
        {
            yield return group;
        }
    }

    /// <summary>Prefills joiners together, apart from the batch, and takes each one's first token; returns those that go on.</summary>
    private List<Sequence> Prefill(List<Sequence> group)
    {
        var continuing = new List<Sequence>();
        try
        {
            var prefillStarted = _time.GetUtcNow();
            foreach (var sequence in group)
            {
                sequence.Trace?.Prefilling(prefillStarted, group.Count);
            }

            var prefilled = _batch.Prefill([.. group.Select(s => (IReadOnlyList<int>)s.Prepared.PromptTokens)]);
            for (var i = 0; i < group.Count; i++)
            {
                var (sequence, (cache, logits)) = (group[i], prefilled[i]);
                sequence.Cache = cache;
                sequence.SlotTakenAt = _time.GetTimestamp();
                Interlocked.Increment(ref _active);
                sequence.Freed = () => Interlocked.Decrement(ref _active);
                sequence.Observer?.Invoke(0, logits);
                var finished = sequence.Take(logits, _model.EosTokenId);
                sequence.Trace?.Prefilled();
                if (!finished)
                {
                    continuing.Add(sequence);
                }
            }
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            LogStepFailed(_logger, exception, group.Count);
            foreach (var sequence in group.Where(s => !s.Done))
            {
                sequence.Fail(exception);
            }

            return [];
        }

        return continuing;
    }

    private void Step()
    {
        var tokens = new long[_rows.Count];
        for (var i = 0; i < tokens.Length; i++)
        {
            tokens[i] = _rows[i].NextToken;
        }

        ReadOnlySpan<float> logits;
        try
        {
            logits = _batch.Step(tokens);
        }
        catch (Exception exception) when (!_stopping.IsCancellationRequested)
        {
            LogStepFailed(_logger, exception, _rows.Count);
            foreach (var row in _rows)
            {
                row.Fail(exception);
            }

            _rows.Clear();
            _batch.Pack([]);
            return;
        }

        var vocab = _model.VocabSize;
        for (var i = 0; i < _rows.Count; i++)
        {
            var row = _rows[i];
            var own = logits.Slice(i * vocab, vocab);
            row.Observer?.Invoke(row.Produced, own);
            row.Take(own, _model.EosTokenId);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "A decode step for {Rows} sequences failed")]
    private static partial void LogStepFailed(ILogger logger, Exception exception, int rows);

    [LoggerMessage(Level = LogLevel.Information, Message = "A sequence reached the maximum generation duration of {Seconds} s after {Tokens} tokens; it ends with what it has")]
    private static partial void LogMaxGenerationReached(ILogger logger, int seconds, int tokens);

    [LoggerMessage(Level = LogLevel.Information, Message = "A sequence set aside for its slow reader was not read for {Seconds} s after {Tokens} tokens; it ends with what it has")]
    private static partial void LogSetAsideTimedOut(ILogger logger, int seconds, int tokens);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The batching loop stopped")]
    private static partial void LogLoopFailed(ILogger logger, Exception exception);

    private sealed class Sequence(
        PreparedGeneration prepared, CompletionBuffer buffer, CompletionText text, TokenSampler sampler, LogitsObserver? observer, CancellationToken cancellationToken)
    {
        public PreparedGeneration Prepared { get; } = prepared;

        public CompletionBuffer Buffer { get; } = buffer;

        public TokenSampler Sampler { get; } = sampler;

        public LogitsObserver? Observer { get; } = observer;

        public CancellationToken CancellationToken { get; } = cancellationToken;

        public TaskCompletionSource<GenerationResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public CancellationTokenRegistration Registration { get; set; }

        public required int MaxNewTokens { get; init; }

        /// <summary>Which of the request's choices this sequence is (OpenAI's <c>index</c>).</summary>
        public int Choice { get; init; }

        /// <summary>Turns token ids into text: the alternatives of a token's log probability.</summary>
        public required Func<IReadOnlyList<int>, string> Decode { get; init; }

        // The log probabilities of tokens whose text CompletionText still holds back, and those handed out so far.
        private readonly Queue<SampledLogprobs> _unsent = new();
        private readonly List<TokenLogprob> _logprobs = [];

        // With a guard: entries whose text the guard has not consumed yet, and how much unguarded text the released ones cover.
        private readonly Queue<TokenLogprob> _unguarded = new();
        private long _unguardedReleased;

        /// <summary>Records time to first token, inter-token latency and token counts; null without metrics.</summary>
        public SequenceTiming? Timing { get; init; }

        /// <summary>Records the sequence's spans; null when nothing listens to <see cref="InferenceTracing.SourceName"/>.</summary>
        public SequenceTrace? Trace { get; init; }

        public int Produced { get; private set; }

        /// <summary>The output guard; null when it is off.</summary>
        public OutputRedactor? Guard { get; init; }

        /// <summary>The guarded text released so far; used only with a guard.</summary>
        private readonly StringBuilder _guarded = new();

        /// <summary>The completion as released: what the reader got.</summary>
        private string Text => Guard is null ? text.Text : _guarded.ToString();

        public long NextToken { get; private set; }

        /// <summary>The cache while outside the batch (joining or set aside); null while a batch row holds it.</summary>
        public SequenceCache? Cache { get; set; }

        public bool Done { get; private set; }

        /// <summary>When the sequence took its batch slot (a <see cref="TimeProvider"/> timestamp): the maximum duration counts from here.</summary>
        public long SlotTakenAt { get; set; }

        /// <summary>When the sequence was last set aside for its slow reader (a <see cref="TimeProvider"/> timestamp).</summary>
        public long SetAsideAt { get; set; }

        /// <summary>Gives back the batch slot once the sequence ends; set when it takes one.</summary>
        public Action? Freed { get; set; }

        /// <summary>Samples the next token from this step's logits and takes it; true when the sequence has finished.</summary>
        public bool Take(ReadOnlySpan<float> logits, int eosTokenId)
        {
            var token = Sampler.Next(logits, Prepared.Logprobs ?? -1, out var logprobs);
            if (token == eosTokenId)
            {
                Finish();
                return true;
            }

            Produced++;
            Timing?.Token(Produced);
            if (logprobs is not null)
            {
                _unsent.Enqueue(logprobs);
            }

            Write(text.Add(token));
            if (Guard is { Blocked: true })
            {
                Stop(FinishReasons.ContentFilter);
                return true;
            }

            if (text.Stopped || Produced >= MaxNewTokens)
            {
                Finish();
                return true;
            }

            NextToken = token;
            return false;
        }

        public void Finish()
        {
            var finishReason = Produced < Prepared.MaxNewTokens || text.Stopped ? FinishReasons.Stop : FinishReasons.Length;
            Stop(finishReason);
        }

        /// <summary>Ends the sequence early with what it has (a limit on its time was reached), reported as <paramref name="finishReason"/>.</summary>
        public void Stop(string finishReason)
        {
            Write(text.Finish());
            if (Guard is { } guard)
            {
                Release(guard.Finish(), final: true);
                if (guard.Blocked)
                {
                    // Every token generated still counts: only the text is cut.
                    finishReason = FinishReasons.ContentFilter;
                }
            }

            End(Result(finishReason));
        }

        /// <summary>What was generated before the cancellation still counts as usage.</summary>
        public void Cancel() => End(Result(FinishReasons.Cancelled));

        private GenerationResult Result(string finishReason) => new(
            Text, new TokenUsage(Prepared.PromptTokens.Length, Produced), finishReason, Prepared.Logprobs is null ? null : [.. _logprobs]);

        /// <summary>
        /// Sends a released piece of text on, through the guard when there is one, with the log probabilities of the
        /// tokens that wrote it: only text that is sent has entries, so text held back for a possible stop sequence, or
        /// cut by one, has none.
        /// </summary>
        private void Write(string piece)
        {
            TokenLogprob[]? entries = null;
            if (Prepared.Logprobs is not null)
            {
                var texts = text.TakeTokenTexts();
                entries = new TokenLogprob[texts.Count];
                for (var i = 0; i < texts.Count; i++)
                {
                    var sampled = _unsent.Dequeue();
                    entries[i] = new TokenLogprob(texts[i], sampled.Logprob, [.. sampled.Top.Select(t => new TopLogprob(Decode([t.Token]), t.Logprob))]);
                }
            }

            if (Guard is null)
            {
                _logprobs.AddRange(entries ?? []);
                Send(piece, entries);
                return;
            }

            foreach (var entry in entries ?? [])
            {
                _unguarded.Enqueue(entry);
            }

            Release(Guard.Push(piece), final: false);
        }

        /// <summary>
        /// Sends what the guard released, with the entries of the text it has consumed, guarded too: an entry's text is
        /// the guarded text of its own span (a redaction's replacement goes with the entry where the redacted text began),
        /// and an entry that touches a redaction loses its alternatives, which could spell what was redacted.
        /// </summary>
        private void Release(string piece, bool final)
        {
            _guarded.Append(piece);
            TokenLogprob[]? entries = null;
            if (Prepared.Logprobs is not null)
            {
                var consumed = Guard!.Consumed;
                var released = new List<TokenLogprob>();
                while (_unguarded.TryPeek(out var entry) && (_unguardedReleased + entry.Token.Length <= consumed || (final && _unguardedReleased < consumed)))
                {
                    _unguarded.Dequeue();
                    var start = _unguardedReleased;
                    _unguardedReleased += entry.Token.Length;
                    released.Add(Guarded(entry, start, Math.Min(_unguardedReleased, consumed)));
                }

                if (final)
                {
                    // What the guard never consumed (after a block) has no entries.
                    _unguarded.Clear();
                }

                entries = [.. released];
                _logprobs.AddRange(entries);
            }

            Send(piece, entries);
        }

        /// <summary><paramref name="entry"/> for the unguarded text from <paramref name="start"/> to <paramref name="end"/>, as guarded.</summary>
        private TokenLogprob Guarded(TokenLogprob entry, long start, long end)
        {
            var spans = Guard!.Spans.Where(span => span.Start < Math.Max(end, start + 1) && span.End > start).ToList();
            if (spans.Count == 0 && end - start == entry.Token.Length)
            {
                return entry;
            }

            var token = new StringBuilder();
            var at = start;
            foreach (var span in spans)
            {
                if (span.Start > at)
                {
                    token.Append(entry.Token, (int)(at - start), (int)(span.Start - at));
                }

                if (span.Start >= start)
                {
                    token.Append(span.Replacement);
                }

                at = Math.Max(at, Math.Min(end, span.End));
            }

            if (at < end)
            {
                token.Append(entry.Token, (int)(at - start), (int)(end - at));
            }

            return entry with { Token = token.ToString(), Top = spans.Count > 0 ? [] : entry.Top };
        }

        private void Send(string piece, TokenLogprob[]? entries)
        {
            if (piece.Length > 0 || entries is { Length: > 0 })
            {
                Buffer.Write(piece, Choice, entries);
            }
        }

        public void Fail(Exception exception)
        {
            if (!Done)
            {
                Timing?.Failed(exception);
                Trace?.End(Produced, finishReason: null, exception);
            }

            Done = true;
            Cache = null;
            Registration.Dispose();
            Freed?.Invoke();
            Freed = null;
            Completion.TrySetException(exception);
        }

        private void End(GenerationResult result)
        {
            if (Guard?.Summary() is { } hits)
            {
                result = result with { OutputGuardHits = hits };
            }

            Timing?.End(result.Usage);
            Trace?.End(Produced, result.FinishReason, exception: null);
            Done = true;
            Cache = null;
            Registration.Dispose();
            Freed?.Invoke();
            Freed = null;
            Completion.TrySetResult(result);
        }
    }

    /// <summary>One sequence's latencies, from the moment it was queued: what a client waits for.</summary>
    private sealed class SequenceTiming(BastionMetrics metrics, string model, string operation, TimeProvider time)
    {
        private readonly long _queued = time.GetTimestamp();
        private long _previous = time.GetTimestamp();
        private long? _first;

        public void Token(int produced)
        {
            var now = time.GetTimestamp();
            var elapsed = time.GetElapsedTime(_previous, now);
            if (produced == 1)
            {
                _first = now;
                metrics.RecordTimeToFirstToken(model, operation, elapsed);
            }
            else
            {
                metrics.RecordInterTokenLatency(model, elapsed);
            }

            _previous = now;
        }

        public void End(TokenUsage usage)
        {
            var now = time.GetTimestamp();
            metrics.RecordTokens(model, operation, usage.PromptTokens, usage.CompletionTokens);
            metrics.RecordGeneration(
                model, operation, time.GetElapsedTime(_queued, now), _first is { } first ? time.GetElapsedTime(first, now) : null, usage.CompletionTokens);
        }

        public void Failed(Exception exception) =>
            metrics.RecordGeneration(model, operation, time.GetElapsedTime(_queued), null, 0, exception.GetType().FullName ?? exception.GetType().Name);
    }

    /// <summary>
    /// One sequence's spans (<see cref="InferenceTracing"/>), recorded when each phase ends with the times it began and
    /// ended, so that the loop thread never carries an ambient activity. Each phase is a child of the queueing call.
    /// </summary>
    private sealed class SequenceTrace(ActivityContext parent, string model, PreparedGeneration prepared, TimeProvider time)
    {
        private readonly DateTimeOffset _queued = time.GetUtcNow();
        private DateTimeOffset? _prefillStarted;
        private DateTimeOffset? _decodeStarted;
        private int _groupSize;

        public void LeftQueue(bool cancelled)
        {
            var tags = Common();
            if (cancelled)
            {
                tags.Add("gen_ai.response.finish_reasons", new[] { FinishReasons.Cancelled });
            }

            Record(InferenceTracing.QueueWaitSpan, _queued, time.GetUtcNow(), tags, null);
        }

        public void Prefilling(DateTimeOffset started, int groupSize) => (_prefillStarted, _groupSize) = (started, groupSize);

        public void Prefilled()
        {
            if (_prefillStarted is not { } started)
            {
                return;
            }

            var now = time.GetUtcNow();
            var tags = Common();
            tags.Add("gen_ai.usage.input_tokens", prepared.PromptTokens.Length);
            tags.Add("bastion.inference.prefill_group_size", _groupSize);
            Record(InferenceTracing.PrefillSpan, started, now, tags, null);
            _decodeStarted = now;
        }

        public void End(int produced, string? finishReason, Exception? exception)
        {
            if (_decodeStarted is not { } started)
            {
                if (exception is not null && _prefillStarted is { } prefill)
                {
                    // The prefill itself failed.
                    Record(InferenceTracing.PrefillSpan, prefill, time.GetUtcNow(), Common(), exception);
                }

                return;
            }

            var tags = Common();
            tags.Add("gen_ai.usage.input_tokens", prepared.PromptTokens.Length);
            tags.Add("gen_ai.usage.output_tokens", produced);
            if (finishReason is not null)
            {
                tags.Add("gen_ai.response.finish_reasons", new[] { finishReason });
            }

            Record(InferenceTracing.DecodeSpan, started, time.GetUtcNow(), tags, exception);
        }

        private TagList Common() => new([
            new("gen_ai.operation.name", prepared.Operation),
            new("gen_ai.request.model", model),
            new("gen_ai.request.max_tokens", prepared.MaxNewTokens)]);

        private void Record(string name, DateTimeOffset start, DateTimeOffset end, TagList tags, Exception? exception)
        {
            // Starting and stopping an activity moves Activity.Current; a sequence failed by Dispose runs on a caller's thread.
            var previous = Activity.Current;
            try
            {
                using var activity = InferenceTracing.Source.CreateActivity(name, ActivityKind.Internal, parent, tags);
                if (activity is null)
                {
                    return;
                }

                activity.SetStartTime(start.UtcDateTime);
                activity.Start();
                if (exception is not null)
                {
                    // The type only: an exception's message is not known to be free of request data.
                    activity.SetStatus(ActivityStatusCode.Error);
                    activity.SetTag("error.type", exception.GetType().FullName);
                }

                activity.SetEndTime(end.UtcDateTime);
                activity.Stop();
            }
            finally
            {
                Activity.Current = previous;
            }
        }
    }
}
