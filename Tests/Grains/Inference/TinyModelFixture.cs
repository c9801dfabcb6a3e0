using Bastion.Inference;

namespace Bastion.Tests.Grains.Inference;

/// <summary>Builds the tiny model once and loads it the way the CI box runs it: one thread, no spinning.</summary>
public sealed class TinyModelFixture : IDisposable
{
    public TinyModelFixture()
    {
        ModelBytes = Gpt2ModelBuilder.Build(ModelShape.Tiny);
        Model = DecoderModel.Load(ModelBytes, RuntimeOptions);
    }

    public static InferenceRuntimeOptions RuntimeOptions { get; } = new()
    {
        ExecutionProvider = ExecutionProviderKind.Cpu,
        IntraOpThreads = 1,
        AllowSpinning = false,
    };

    public byte[] ModelBytes { get; }

    public DecoderModel Model { get; }

    public void Dispose() => Model.Dispose();
}

[CollectionDefinition(Name)]
public sealed class TinyModelCollection : ICollectionFixture<TinyModelFixture>
{
    public const string Name = "Tiny GPT-2 model";
}
