using System.Diagnostics;
using System.Globalization;
using Bastion.Guards;
using Bastion.Inference;

namespace Bastion.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project Benchmarks -- guard [--tokens N] [--trials N]</c>: the output guard's cost per token
/// beside the decode time per token of the GPT-2-small shape (batch 1, CPU, one intra-op thread), measured in turns in
/// one run. The guard is fed the GPT-2 token pieces of realistic completions, one with personal data and secrets, one without.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class GuardComparison
{
    private const string Plain =
        "The quarterly report shows that revenue grew by 12 percent in 2024, driven by strong demand in Europe and Asia. " +
        "Operating costs rose more slowly, so the margin improved to 18.5 percent. The board expects growth to continue next year, " +
        "although supply chains remain a risk. Customers rated the new release 4.6 out of 5, and support tickets fell by a third. ";

    private const string Sensitive =
        "Sure. The customer is Jane Doe (jane.doe@example.com, +31 6 12345678), BSN 111222333, paying with card 4111 1111 1111 1111 " +
        "into NL91ABNA0417164300. Her NHS number is 943 476 5919. The deployment uses AKIA" + "IOSFODNN7EXAMPLE and the token " +
        "ghp_" + "abcdefghijklmnopqrstuvwxyz0123456789; call (555) 123-4567 if the build fails. Revenue grew by 12 percent in 2024. ";

    public static Task<int> RunAsync(string[] args)
    {
        var tokens = Argument(args, "--tokens", 32);
        var trials = Argument(args, "--trials", 5);
        var directory = Path.Combine("/tmp", "bastion-bench-models", "gpt2-small");
        if (!File.Exists(Path.Combine(directory, Gpt2ModelBuilder.ModelFileName)))
        {
            Console.WriteLine($"[gpt2-small] building the model in {directory} …");
            Gpt2ModelBuilder.WriteModelDirectory(directory, ModelShape.Gpt2Small);
        }

        var runtime = new InferenceRuntimeOptions { ExecutionProvider = ExecutionProviderKind.Cpu, IntraOpThreads = 1 };
        using var decoder = DecoderModel.Load(Path.Combine(directory, Gpt2ModelBuilder.ModelFileName), runtime, eosTokenId: -1);
        var tokenizer = TextTokenizer.CreateGpt2();
        var prompt = tokenizer.EncodeToIds("The quarterly report");
        var plain = Pieces(tokenizer, Plain);
        var sensitive = Pieces(tokenizer, Sensitive);

        // Warm-up of both sides, then trials taking turns, so drift in the machine's speed falls on both alike.
        Decode(decoder, prompt, 4);
        Guard(plain, 20);
        Guard(sensitive, 20);
        var decodeTimes = new List<double>();
        var plainTimes = new List<double>();
        var sensitiveTimes = new List<double>();
        for (var trial = 0; trial < trials; trial++)
        {
            decodeTimes.Add(Decode(decoder, prompt, tokens));
            plainTimes.Add(Guard(plain, 200));
            sensitiveTimes.Add(Guard(sensitive, 200));
        }

        var decode = Median(decodeTimes);
        var withoutPii = Median(plainTimes);
        var withPii = Median(sensitiveTimes);
        Console.WriteLine($"output guard vs decode, GPT-2-small shape, CPU, 1 intra-op thread, {Environment.ProcessorCount} cores; medians of {trials} trials");
        Console.WriteLine();
        Console.WriteLine("| per token | µs | share of decode |");
        Console.WriteLine("|---|---:|---:|");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| decode (batch 1, {tokens} tokens per trial) | {decode:F0} | 100 % |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| guard, prose without PII ({plain.Count} pieces) | {withoutPii:F2} | {withoutPii / decode:P3} |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| guard, text with PII and secrets ({sensitive.Count} pieces) | {withPii:F2} | {withPii / decode:P3} |"));
        return Task.FromResult(0);
    }

    /// <summary>Microseconds per decoded token.</summary>
    private static double Decode(DecoderModel decoder, int[] prompt, int tokens)
    {
        var started = Stopwatch.GetTimestamp();
        var produced = decoder.GenerateGreedy(prompt, tokens, CancellationToken.None).Count();
        return Stopwatch.GetElapsedTime(started).TotalMicroseconds / produced;
    }

    /// <summary>Microseconds per token piece pushed through a fresh redactor (all detectors, redact).</summary>
    private static double Guard(List<string> pieces, int rounds)
    {
        var characters = 0L;
        var started = Stopwatch.GetTimestamp();
        for (var round = 0; round < rounds; round++)
        {
            var redactor = new OutputRedactor(OutputGuardPolicy.Default);
            foreach (var piece in pieces)
            {
                characters += redactor.Push(piece).Length;
            }

            characters += redactor.Finish().Length;
        }

        GC.KeepAlive(characters);
        return Stopwatch.GetElapsedTime(started).TotalMicroseconds / ((double)rounds * pieces.Count);
    }

    private static List<string> Pieces(TextTokenizer tokenizer, string text) => [.. tokenizer.EncodeToIds(text).Select(id => tokenizer.Decode([id]))];

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    private static int Argument(string[] args, string name, int fallback)
    {
        var at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
