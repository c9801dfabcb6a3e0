using Bastion.Inference;

namespace Bastion.Tests.Grains.Inference;

public sealed class ModelShapeTests
{
    [Fact]
    public void Presets_HaveGpt2VocabularyAndContext()
    {
        Assert.Equal(16, ModelShape.Tiny.HeadSize);
        Assert.Equal(64, ModelShape.Gpt2Small.HeadSize);
        Assert.All(new[] { ModelShape.Tiny, ModelShape.Gpt2Small }, shape =>
        {
            Assert.Equal(50257, shape.VocabSize);
            Assert.Equal(1024, shape.ContextLength);
        });
    }

    [Fact]
    public void Build_WidthNotDivisibleByHeads_IsRejected() =>
        Assert.Throws<ArgumentException>(() => Gpt2ModelBuilder.Build(ModelShape.Tiny with { Heads = 3 }));
}
