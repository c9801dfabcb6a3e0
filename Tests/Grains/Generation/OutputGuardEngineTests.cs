using Bastion.Generation;
using Bastion.Guards;
using Bastion.Inference;
using Bastion.Tests.Grains.Inference;

namespace Bastion.Tests.Grains.Generation;

/// <summary>
/// The output guard in the batching engine: the tiny model decodes for real, and a scripted decoder turns its n-th
/// token into the n-th piece of a hand-written completion, so the text the guard sees is known.
/// </summary>
[Collection(TinyModelCollection.Name)]
public sealed class OutputGuardEngineTests(TinyModelFixture fixture)
{
    private static readonly int[] Prompt = [15496, 995];

    [Fact]
    public async Task Redact_AcrossTokens_StreamAndResultRedactedAndUsageExact()
    {
        var (result, streamed) = await GenerateAsync(OutputGuardPolicy.Default, ["Contact ", "jane", ".doe@", "example", ".com", " today"]);

        Assert.Equal("Contact [REDACTED:email] today", result.Text);
        Assert.Equal(result.Text, streamed);
        Assert.Equal(FinishReasons.Length, result.FinishReason);
        Assert.Equal(new TokenUsage(2, 6), result.Usage);
        Assert.Equal([new GuardHit("email", 1)], result.OutputGuardHits!);
    }

    [Fact]
    public async Task Block_EndsWithContentFilterBeforeTheMatch_EveryTokenCounted()
    {
        var policy = OutputGuardPolicy.Default with { Mode = OutputGuardMode.Block };

        // The card is settled only once " ok" shows it has ended: at the sixth token, of eight allowed.
        var (result, streamed) = await GenerateAsync(policy, ["Card ", "4111 ", "1111 ", "1111 ", "1111", " ok", " more", " more"]);

        Assert.Equal("Card ", result.Text);
        Assert.Equal(result.Text, streamed);
        Assert.Equal(FinishReasons.ContentFilter, result.FinishReason);
        Assert.Equal(new TokenUsage(2, 6), result.Usage);
        Assert.Equal([new GuardHit("payment-card", 1)], result.OutputGuardHits!);
    }

    [Fact]
    public async Task Block_MatchSettledOnlyAtTheEnd_StillContentFilter()
    {
        var policy = OutputGuardPolicy.Default with { Mode = OutputGuardMode.Block };

        var (result, streamed) = await GenerateAsync(policy, ["Write to ", "jane@example", ".com"]);

        Assert.Equal("Write to ", result.Text);
        Assert.Equal(result.Text, streamed);
        Assert.Equal(FinishReasons.ContentFilter, result.FinishReason);
        Assert.Equal(new TokenUsage(2, 3), result.Usage);
    }

    [Fact]
    public async Task Off_TextUnchanged_NoHits()
    {
        var (result, streamed) = await GenerateAsync(OutputGuardPolicy.Off, ["Contact ", "jane", ".doe@", "example", ".com", " today"]);

        Assert.Equal("Contact jane.doe@example.com today", result.Text);
        Assert.Equal(result.Text, streamed);
        Assert.Equal(FinishReasons.Length, result.FinishReason);
        Assert.Null(result.OutputGuardHits);
    }

    /// <summary>
    /// Log probabilities follow the guarded text: each entry holds the guarded text of its own token (the replacement
    /// with the token where the redacted text began, nothing with the others), so no entry spells what was redacted.
    /// </summary>
    [Theory]
    [InlineData(OutputGuardMode.Redact, new[] { "Contact ", "jane", ".doe@", "example", ".com", " today" }, new[] { "Contact ", "[REDACTED:email]", "", "", "", " today" })]
    [InlineData(OutputGuardMode.Block, new[] { "Write to ", "jane@example", ".com" }, new[] { "Write to " })]
    [InlineData(OutputGuardMode.Block, new[] { "Card ", "4111 ", "1111 ", "1111 ", "1111", " ok", " more" }, new[] { "Card " })]
    [InlineData(OutputGuardMode.Off, new[] { "Contact ", "jane@example.com" }, new[] { "Contact ", "jane@example.com" })]
    public async Task Logprobs_FollowTheGuardedText(OutputGuardMode mode, string[] script, string[] expected)
    {
        var (result, streamed, entries) = await GenerateWithEntriesAsync(OutputGuardPolicy.Default with { Mode = mode }, script, logprobs: 0);

        Assert.Equal(expected, entries.Select(entry => entry.Token));
        Assert.Equal(expected, result.Logprobs!.Select(entry => entry.Token));
        Assert.Equal(result.Text, string.Concat(expected));
        Assert.Equal(result.Text, streamed);
    }

    private async Task<(GenerationResult Result, string Streamed)> GenerateAsync(OutputGuardPolicy policy, string[] script)
    {
        var (result, streamed, _) = await GenerateWithEntriesAsync(policy, script, logprobs: null);
        return (result, streamed);
    }

    private async Task<(GenerationResult Result, string Streamed, TokenLogprob[] Entries)> GenerateWithEntriesAsync(OutputGuardPolicy policy, string[] script, int? logprobs)
    {
        // The guard and the stop-sequence hold-back decode each token once, in order, when no piece ends in U+FFFD.
        var next = 0;
        using var model = DecoderModel.Load(fixture.ModelBytes, TinyModelFixture.RuntimeOptions, eosTokenId: -1);
        using var engine = new BatchingEngine(model, _ => script[next++], new BatchingOptions(), TimeProvider.System);
        Assert.True(engine.TryReserve());
        var buffer = new CompletionBuffer(ModelCatalog.BufferCapacity);
        buffer.RemoveBound();
        var prepared = new PreparedGeneration("m", Prompt, script.Length, SamplingOptions.Greedy, [], Logprobs: logprobs) { OutputGuard = policy };

        var result = await engine.Enqueue("owner", prepared, buffer, CancellationToken.None);

        var chunk = await buffer.ReadAsync(0, 1000, CancellationToken.None);
        return (result, string.Concat(chunk.Pieces), [.. (chunk.Logprobs ?? []).SelectMany(entries => entries ?? [])]);
    }
}
