using System.Runtime.InteropServices;
using Bastion.Inference;
using Microsoft.ML.OnnxRuntime;

namespace Bastion.Tests.Grains.Inference;

public sealed class OnnxExternalDataTests
{
    [Theory]
    [InlineData("GetErrorMessage", OnnxExternalData.GetErrorMessageSlot)]
    [InlineData("ReleaseStatus", OnnxExternalData.ReleaseStatusSlot)]
    [InlineData("AddExternalInitializersFromFilesInMemory", OnnxExternalData.AddExternalInitializersFromFilesInMemorySlot)]
    public void Slots_AreWhereTheManagedBindingKeepsThoseFunctions(string function, int slot)
    {
        // The binding mirrors OrtApi as a struct of pointers; its field offset is the slot in ONNX Runtime's table.
        var table = typeof(SessionOptions).Assembly.GetType("Microsoft.ML.OnnxRuntime.OrtApi", throwOnError: true)!;

        Assert.Equal(slot * IntPtr.Size, (int)Marshal.OffsetOf(table, function));
        Assert.NotEqual(0, OnnxExternalData.Slot(slot));
    }
}
