using Bastion.Inference;

namespace Bastion.Tests.Grains.Inference;

[Collection(TinyModelCollection.Name)]
public sealed class OnnxSessionFactoryTests(TinyModelFixture fixture)
{
    [Fact]
    public void Create_Cpu_RunsOnCpu()
    {
        using var session = Factory(ExecutionProviderKind.Cpu).Create(fixture.ModelBytes);

        Assert.Equal(ExecutionProviderKind.Cpu, session.Provider);
    }

    [Fact]
    public void Create_Auto_UsesCudaWhereItLoadsOtherwiseCpu()
    {
        using var session = Factory(ExecutionProviderKind.Auto).Create(fixture.ModelBytes);

        Assert.Equal(CudaLoads() ? ExecutionProviderKind.Cuda : ExecutionProviderKind.Cpu, session.Provider);
    }

    [Fact]
    public void Create_CudaWhereItCannotLoad_FailsNamingTheSetting()
    {
        if (CudaLoads())
        {
            return; // Nothing to refuse on a CUDA host.
        }

        var error = Assert.Throws<InvalidOperationException>(() => Factory(ExecutionProviderKind.Cuda).Create(fixture.ModelBytes));
        Assert.Contains("Bastion:Inference:ExecutionProvider", error.Message, StringComparison.Ordinal);
    }

    private static OnnxSessionFactory Factory(ExecutionProviderKind provider) =>
        new(new InferenceRuntimeOptions { ExecutionProvider = provider, IntraOpThreads = 1 });

    private static bool CudaLoads()
    {
        try
        {
            using var options = new Microsoft.ML.OnnxRuntime.SessionOptions();
            options.AppendExecutionProvider_CUDA();
            return true;
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
        {
            return false;
        }
    }
}
