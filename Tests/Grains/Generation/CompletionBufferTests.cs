using Bastion.Generation;

namespace Bastion.Tests.Grains.Generation;

public sealed class CompletionBufferTests
{
    [Fact]
    public async Task WriteAsync_BeyondCapacity_WaitsUntilTheReaderMovesOn()
    {
        var buffer = new CompletionBuffer(capacity: 2);
        await buffer.WriteAsync("a", CancellationToken.None);
        await buffer.WriteAsync("b", CancellationToken.None);

        var third = buffer.WriteAsync("c", CancellationToken.None).AsTask();
        Assert.False(third.IsCompleted);

        Assert.Equal(["a", "b"], (await buffer.ReadAsync(0, 10, CancellationToken.None)).Pieces);
        Assert.False(third.IsCompleted);
        var next = await buffer.ReadAsync(2, 10, CancellationToken.None);

        await third;
        Assert.Equal(["c"], next.Pieces);
        Assert.False(next.Finished);
    }

    [Fact]
    public async Task ReadAsync_WaitsForPiecesThenReportsTheResultWithTheLast()
    {
        var buffer = new CompletionBuffer(capacity: 4);
        var read = buffer.ReadAsync(0, 10, CancellationToken.None);
        Assert.False(read.IsCompleted);

        await buffer.WriteAsync("x", CancellationToken.None);
        Assert.Equal(["x"], (await read).Pieces);
        var result = new GenerationResult("x", new TokenUsage(1, 1), FinishReasons.Stop);
        buffer.Complete(result);

        var last = await buffer.ReadAsync(1, 10, CancellationToken.None);
        Assert.Empty(last.Pieces);
        Assert.Equal(result, last.Result);
    }

    [Fact]
    public async Task WriteAsync_WhileFull_StopsWhenCancelled()
    {
        var buffer = new CompletionBuffer(capacity: 1);
        await buffer.WriteAsync("a", CancellationToken.None);
        using var cancellation = new CancellationTokenSource();

        var blocked = buffer.WriteAsync("b", cancellation.Token).AsTask();
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => blocked);
    }

    [Fact]
    public async Task RemoveBound_LetsAWholeResultCallerSkipReading()
    {
        var buffer = new CompletionBuffer(capacity: 1);
        await buffer.WriteAsync("a", CancellationToken.None);
        var blocked = buffer.WriteAsync("b", CancellationToken.None).AsTask();

        buffer.RemoveBound();

        await blocked;
    }
}
