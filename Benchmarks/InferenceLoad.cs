using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Bastion.Generation;
using Bastion.Hosting;
using Bastion.Inference;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.ML.OnnxRuntime;

namespace Bastion.Benchmarks;

/// <summary>
/// The inference load tool: <c>dotnet run -c Release --project Benchmarks -- inference [tiny|small|all] [--tokens N] [--threads N]</c>.
/// For each model, in one run on one machine: a raw ONNX Runtime decode loop at batch 1 and batch 16, then the whole
/// service path (HTTPS → user grain → generation grain → batching engine → SSE stream) at concurrency 1 and 16 on a
/// real Development silo, with the same session settings. Prints tokens per second, the service's share of the raw
/// loop, time to first token and inter-token latency (p50/p99).
/// </summary>
/// <remarks>
/// Every side generates greedily from the same prompt tokens and stops at end-of-text or the token limit, so each
/// makes the same tokens; the service's count comes from the <c>usage</c> it reports.
/// </remarks>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class InferenceLoad
{
    private const string Prompt = "The quick brown fox jumps over the lazy dog because";
    private const int Batch = 16;

    public static async Task<int> RunAsync(string[] args)
    {
        var which = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal)) ?? "all";
        var tokens = IntArgument(args, "--tokens", 64);
        var threads = IntArgument(args, "--threads", 1);
        var shapes = which switch
        {
            "tiny" => new[] { ("tiny", ModelShape.Tiny) },
            "small" => [("gpt2-small", ModelShape.Gpt2Small)],
            "all" => [("gpt2-small", ModelShape.Gpt2Small), ("tiny", ModelShape.Tiny)],
            _ => throw new ArgumentException($"Unknown model '{which}': tiny, small or all."),
        };

        Console.WriteLine($"inference load: {tokens} new tokens per request, {threads} intra-op thread(s), {Environment.ProcessorCount} cores");
        foreach (var (name, shape) in shapes)
        {
            await RunModelAsync(name, shape, tokens, threads);
        }

        return 0;
    }

    private static async Task RunModelAsync(string name, ModelShape shape, int tokens, int threads)
    {
        var directory = Path.Combine("/tmp", "bastion-bench-models", name);
        if (!File.Exists(Path.Combine(directory, Gpt2ModelBuilder.ModelFileName)))
        {
            Console.WriteLine($"[{name}] building the model in {directory} …");
            Gpt2ModelBuilder.WriteModelDirectory(directory, shape);
        }
        else if (!File.Exists(Path.Combine(directory, GenerationDefaults.FileName)))
        {
            ModelDirectory.WriteDefaultFiles(directory);
        }

        var modelPath = Path.Combine(directory, Gpt2ModelBuilder.ModelFileName);
        var promptTokens = Bastion.Inference.TextTokenizer.CreateGpt2().EncodeToIds(Prompt);
        var runtime = new InferenceRuntimeOptions { ExecutionProvider = ExecutionProviderKind.Cpu, IntraOpThreads = threads };

        // Trials per concurrency: enough for a stable figure, few enough that the GPT-2-small run stays in minutes.
        var trials = shape.Width >= 512 ? 6 : 40;

        Console.WriteLine($"[{name}] starting the silo, the raw session and the engine …");
        await using var silo = await BenchmarkSilo.StartAsync("inference", ServiceSettings(name, directory, threads));
        using var http = CreateClient(silo);
        using var session = new OnnxSessionFactory(runtime).Create(modelPath);
        using var decoder = DecoderModel.Load(modelPath, runtime);
        using var engine = new BatchingEngine(decoder, _ => string.Empty, new BatchingOptions { MaxBatchSize = Batch }, TimeProvider.System);

        // Warm-up of every side, then trial after trial with the three sides taking turns (their order rotating), so
        // that drift in the machine's speed during the run falls on all three alike.
        RawLoop(session.Session, shape, promptTokens, 1, 4, new Side());
        await EngineLoadAsync(engine, promptTokens, 4, 1, new Side());
        await ServiceLoadAsync(http, name, 4, 1, new Side());
        var results = new Dictionary<int, (Side Raw, Side Engine, Side Service)>();
        foreach (var concurrency in new[] { 1, Batch })
        {
            Console.WriteLine($"[{name}] concurrency {concurrency}: {trials} trials …");
            var (raw, alone, service) = (new Side(), new Side(), new Side());
            Func<Task>[] sides =
            [
                () => Task.Run(() => RawLoop(session.Session, shape, promptTokens, concurrency, tokens, raw)),
                () => EngineLoadAsync(engine, promptTokens, tokens, concurrency, alone),
                () => ServiceLoadAsync(http, name, tokens, concurrency, service),
            ];
            for (var trial = 0; trial < trials; trial++)
            {
                for (var turn = 0; turn < sides.Length; turn++)
                {
                    await sides[(trial + turn) % sides.Length]();
                }
            }

            results[concurrency] = (raw, alone, service);
        }

        Console.WriteLine();
        Console.WriteLine($"## {name} (width {shape.Width}, {shape.Layers} layers, {shape.Heads} heads)");
        Console.WriteLine();
        Console.WriteLine("| | raw ONNX Runtime tok/s | batching engine alone tok/s | service tok/s | service / raw | TTFT p50 / p99 ms | inter-token p50 / p99 ms |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var (concurrency, (raw, alone, service)) in results)
        {
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"| concurrency {concurrency} (raw batch {concurrency}) | {raw.TokensPerSecond:F1} | {alone.TokensPerSecond:F1} | {service.TokensPerSecond:F1} | {service.TokensPerSecond / raw.TokensPerSecond:P1} | {Percentile(service.Ttft, 0.5):F1} / {Percentile(service.Ttft, 0.99):F1} | {Percentile(service.Gaps, 0.5):F2} / {Percentile(service.Gaps, 0.99):F2} |"));
        }

        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"raw step latency p50: batch 1 {Percentile(results[1].Raw.Gaps, 0.5):F2} ms, batch {Batch} {Percentile(results[Batch].Raw.Gaps, 0.5):F2} ms; {(double)results[1].Raw.Tokens / trials:F0} tokens per sequence before end-of-text or max_tokens"));
        Console.WriteLine();
    }

    private static Dictionary<string, string?> ServiceSettings(string name, string directory, int threads)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Bastion:Inference:IntraOpThreads"] = threads.ToString(CultureInfo.InvariantCulture),
            ["Bastion:Inference:Models:0:Name"] = name,
            ["Bastion:Inference:Models:0:Directory"] = directory,
            ["Bastion:Inference:Models:0:Sha256"] = ModelDigest(directory),
        };

        // The benchmark measures inference, not the admin's default limits.
        foreach (var (key, value) in new Dictionary<string, string>
        {
            ["Requests:Algorithm"] = "TokenBucket", ["Requests:Limit"] = "1000000", ["Requests:Window"] = "00:01:00",
            ["Tokens:Algorithm"] = "TokenBucket", ["Tokens:Limit"] = "100000000", ["Tokens:Window"] = "00:01:00",
            ["Concurrency"] = "256", ["DailyTokens"] = "1000000000", ["MonthlyTokens"] = "1000000000",
        })
        {
            settings[$"Bastion:Limits:Roles:admin:{key}"] = value;
        }

        return settings;
    }

    private static string ModelDigest(string directory) => ModelDirectory.Read(directory).Digest;

    /// <summary>
    /// Greedy decoding of <paramref name="batch"/> copies of the prompt: prefill, then one step per token with each
    /// step's presents fed straight back as the next pasts, until end-of-text or <paramref name="tokens"/>.
    /// </summary>
    private static void RawLoop(InferenceSession session, ModelShape shape, int[] prompt, int batch, int tokens, Side side)
    {
        var inputs = session.InputMetadata;
        var hasPositions = inputs.ContainsKey("position_ids");
        var heads = inputs["past_key_values.0.key"].Dimensions[1];
        var headSize = inputs["past_key_values.0.key"].Dimensions[3];
        var inputNames = new List<string> { "input_ids", "attention_mask" };
        if (hasPositions)
        {
            inputNames.Add("position_ids");
        }

        var outputNames = new List<string> { "logits" };
        for (var layer = 0; layer < shape.Layers; layer++)
        {
            inputNames.Add($"past_key_values.{layer}.key");
            inputNames.Add($"past_key_values.{layer}.value");
            outputNames.Add($"present.{layer}.key");
            outputNames.Add($"present.{layer}.value");
        }

        var pastOffset = hasPositions ? 3 : 2;
        var steps = new List<double>();
        long generated = 0;
        var total = Stopwatch.StartNew();
        using var runOptions = new RunOptions();
        var values = new OrtValue[inputNames.Count];
        for (var i = pastOffset; i < values.Length; i++)
        {
            values[i] = OrtValue.CreateTensorValueFromMemory(Array.Empty<float>(), [batch, heads, 0, headSize]);
        }

        var stepTokens = new long[batch * prompt.Length];
        for (var row = 0; row < batch; row++)
        {
            for (var i = 0; i < prompt.Length; i++)
            {
                stepTokens[(row * prompt.Length) + i] = prompt[i];
            }
        }

        var stepLength = prompt.Length;
        var past = 0;
        IDisposableReadOnlyCollection<OrtValue>? previous = null;
        for (var produced = 0; produced < tokens; produced++)
        {
            var started = Stopwatch.GetTimestamp();
            var mask = new long[batch * (past + stepLength)];
            Array.Fill(mask, 1L);
            var positions = new long[batch * stepLength];
            for (var i = 0; i < positions.Length; i++)
            {
                positions[i] = past + (i % stepLength);
            }

            using var ids = OrtValue.CreateTensorValueFromMemory(stepTokens, [batch, stepLength]);
            using var attention = OrtValue.CreateTensorValueFromMemory(mask, [batch, past + stepLength]);
            using var positionIds = OrtValue.CreateTensorValueFromMemory(positions, [batch, stepLength]);
            values[0] = ids;
            values[1] = attention;
            if (hasPositions)
            {
                values[2] = positionIds;
            }

            var outputs = session.Run(runOptions, inputNames, values, outputNames);
            if (previous is null)
            {
                for (var i = pastOffset; i < values.Length; i++)
                {
                    values[i].Dispose();
                }
            }

            previous?.Dispose();
            previous = outputs;
            past += stepLength;

            var logits = outputs[0].GetTensorDataAsSpan<float>();
            var vocab = shape.VocabSize;
            var next = new long[batch];
            for (var row = 0; row < batch; row++)
            {
                var last = logits.Slice((((row * stepLength) + stepLength - 1) * vocab), vocab);
                next[row] = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(last);
            }

            for (var i = pastOffset; i < values.Length; i++)
            {
                values[i] = outputs[i - pastOffset + 1];
            }

            steps.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);

            // Every row decodes the same prompt greedily, so all reach end-of-text together; the service stops there too.
            if (next[0] == DecoderModel.DefaultEosTokenId)
            {
                break;
            }

            generated += batch;
            stepTokens = next;
            stepLength = 1;
        }

        previous?.Dispose();

        side.Add(generated, total.Elapsed.TotalSeconds, [], steps);
    }

    /// <summary>
    /// The service's batching engine without the silo around it: <paramref name="concurrency"/> callers queue
    /// generations back to back, as the service's generation grains do, with no HTTP, grain or stream in between.
    /// </summary>
    private static async Task EngineLoadAsync(BatchingEngine engine, int[] prompt, int tokens, int concurrency, Side side)
    {
        var total = Stopwatch.StartNew();
        var results = await Task.WhenAll(Enumerable.Range(0, concurrency).Select(client =>
        {
            var buffer = new CompletionBuffer(64);
            buffer.RemoveBound();
            if (!engine.TryReserve())
            {
                throw new InvalidOperationException("The engine's queue is full.");
            }

            var prepared = new PreparedGeneration("bench", prompt, tokens, SamplingOptions.Greedy, []);
            return engine.Enqueue($"client-{client}", prepared, buffer, CancellationToken.None);
        }));
        side.Add(results.Sum(r => r.Usage.CompletionTokens), total.Elapsed.TotalSeconds, [], []);
    }

    private static HttpClient CreateClient(BenchmarkSilo silo)
    {
        var edge = silo.Services.GetRequiredService<EdgeEndpoints>();
        var ca = X509Certificate2.CreateFromPem(File.ReadAllText(edge.CaFile));
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = 64,
            SslOptions =
            {
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                {
                    if (certificate is null)
                    {
                        return false;
                    }

                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(ca);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    return chain.Build(new X509Certificate2(certificate));
                },
            },
        };
        var adminKey = File.ReadAllText(silo.Services.GetRequiredService<BootstrapAdmin>().KeyFile).Trim();
        var http = new HttpClient(handler) { BaseAddress = new Uri(edge.Url!), Timeout = TimeSpan.FromMinutes(10) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", adminKey);
        return http;
    }

    private static async Task ServiceLoadAsync(HttpClient http, string model, int tokens, int concurrency, Side side)
    {
        var total = Stopwatch.StartNew();
        var streams = await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => StreamOneAsync(http, model, tokens)));
        side.Add(streams.Sum(s => s.CompletionTokens), total.Elapsed.TotalSeconds, [.. streams.Select(s => s.Ttft)], [.. streams.SelectMany(s => s.Gaps)]);
    }

    private static async Task<StreamResult> StreamOneAsync(HttpClient http, string model, int tokens)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model"] = model,
            ["prompt"] = Prompt,
            ["max_tokens"] = tokens,
            ["temperature"] = 0,
            ["stream"] = true,
            ["stream_options"] = new Dictionary<string, bool> { ["include_usage"] = true },
        });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        var started = Stopwatch.GetTimestamp();
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"The service answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        double? first = null;
        var last = 0L;
        var gaps = new List<double>();
        var completion = 0;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]")
            {
                continue;
            }

            var now = Stopwatch.GetTimestamp();
            using var chunk = JsonDocument.Parse(line.AsMemory(6));
            if (chunk.RootElement.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
            {
                completion = usage.GetProperty("completion_tokens").GetInt32();
            }

            var choices = chunk.RootElement.GetProperty("choices");
            if (choices.GetArrayLength() == 0 || choices[0].GetProperty("text").GetString() is not { Length: > 0 })
            {
                continue;
            }

            if (first is null)
            {
                first = Stopwatch.GetElapsedTime(started, now).TotalMilliseconds;
            }
            else
            {
                gaps.Add(Stopwatch.GetElapsedTime(last, now).TotalMilliseconds);
            }

            last = now;
        }

        return new StreamResult(first ?? double.NaN, gaps, completion);
    }

    private static double Percentile(List<double> values, double quantile)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(quantile * sorted.Length) - 1)];
    }

    private static int IntArgument(string[] args, string name, int fallback)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>One side's totals over its trials: tokens, seconds, and (where measured) first-token times and gaps in ms.</summary>
    private sealed class Side
    {
        public long Tokens { get; private set; }

        public double Seconds { get; private set; }

        public List<double> Ttft { get; } = [];

        public List<double> Gaps { get; } = [];

        public double TokensPerSecond => Tokens / Seconds;

        public void Add(long tokens, double seconds, IEnumerable<double> ttft, IEnumerable<double> gaps)
        {
            Tokens += tokens;
            Seconds += seconds;
            Ttft.AddRange(ttft);
            Gaps.AddRange(gaps);
        }
    }

    private sealed record StreamResult(double Ttft, List<double> Gaps, int CompletionTokens);
}
