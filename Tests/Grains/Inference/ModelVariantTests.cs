using Bastion.Inference;

namespace Bastion.Tests.Grains.Inference;

/// <summary>
/// Decoders other than GPT-2's exact shape load and decode correctly: grouped-query attention (fewer
/// key/value heads than query heads, as Llama and Qwen exports have) and models without <c>position_ids</c>.
/// </summary>
public sealed class ModelVariantTests
{
    private static readonly int[] Prompt = [15496, 995, 11, 428, 318];
    private static readonly ModelShape Small = new(50257, 128, 64, 2, 4);

    [Fact]
    public void GroupedQueryAttention_ReadsKeyValueHeadsAndMatchesTheFullSequenceReference()
    {
        var bytes = Gpt2ModelBuilder.Build(Small with { KeyValueHeads = 2 });
        using var model = DecoderModel.Load(bytes, TinyModelFixture.RuntimeOptions);

        var cached = model.GenerateGreedy(Prompt, 12, CancellationToken.None).ToList();

        Assert.Equal(2, model.Heads);
        Assert.Equal(16, model.HeadSize);
        Assert.Equal(FullSequenceReference.Run(bytes, Prompt, 12).Tokens, cached);
    }

    [Fact]
    public void GroupedQueryAttention_WithAsManyKeyValueHeadsAsQueryHeads_IsExactlyGpt2()
    {
        Assert.Equal(Gpt2ModelBuilder.Build(Small), Gpt2ModelBuilder.Build(Small with { KeyValueHeads = 4 }));
    }

    [Fact]
    public void WithoutPositionIds_PositionsFollowTheMaskAndDecodeAsWithThem()
    {
        var withoutIds = Gpt2ModelBuilder.Build(Small with { PositionIdsInput = false });
        using var model = DecoderModel.Load(withoutIds, TinyModelFixture.RuntimeOptions);
        using var withIds = DecoderModel.Load(Gpt2ModelBuilder.Build(Small), TinyModelFixture.RuntimeOptions);

        var cached = model.GenerateGreedy(Prompt, 12, CancellationToken.None).ToList();

        Assert.False(model.HasPositionIds);
        Assert.Equal(FullSequenceReference.Run(withoutIds, Prompt, 12).Tokens, cached);
        Assert.Equal(withIds.GenerateGreedy(Prompt, 12, CancellationToken.None), cached);
    }

    [Fact]
    public void Validate_KeyValueHeadsNotDividingHeads_IsRefused() =>
        Assert.Throws<ArgumentException>(() => Gpt2ModelBuilder.Build(Small with { KeyValueHeads = 3 }));
}
