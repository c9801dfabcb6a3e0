using System.Net.ServerSentEvents;
using System.Text.Json;
using Bastion.Api;
using Bastion.Generation;
using Microsoft.AspNetCore.Http;

namespace Bastion.Tests.Silo.Api;

/// <summary>
/// The SSE read loop of <c>/v1/completions</c>, against a scripted generation: a read that fails ends the stream with an
/// error event and cancels the generation, which would otherwise keep its batch slot and the user's concurrency lease.
/// </summary>
public sealed class CompletionsStreamTests
{
    private static readonly GenerationResult Done = new("Hello world", new TokenUsage(2, 2), FinishReasons.Stop);

    public static TheoryData<string> Failures => ["timeout", "failed"];

    [Theory]
    [MemberData(nameof(Failures))]
    public async Task ReadFails_EndsWithAnErrorEvent_AndCancelsTheGeneration(string failure)
    {
        Exception thrown = failure == "timeout" ? new TimeoutException() : new InvalidOperationException("The generation failed.");
        var generation = new ScriptedGeneration(new GenerationChunk(["Hello"], null), thrown);

        var events = await StreamAsync(generation);

        Assert.Equal(["message", "error", "message"], events.Select(e => e.EventType));
        Assert.Equal("[DONE]", events[^1].Data);
        using var problem = JsonDocument.Parse(events[1].Data);
        Assert.Equal(failure == "timeout" ? 503 : 500, problem.RootElement.GetProperty("status").GetInt32());
        Assert.Equal(1, generation.Cancelled);
    }

    [Fact]
    public async Task ReadFails_AndTheCancelCannotReachTheWorker_StillEndsTheStream()
    {
        var generation = new ScriptedGeneration(new TimeoutException()) { CancelFailure = new TimeoutException() };

        var events = await StreamAsync(generation);

        Assert.Equal(["error", "message"], events.Select(e => e.EventType));
        Assert.Equal(1, generation.Cancelled);
    }

    [Fact]
    public async Task ReadToTheEnd_FinishesWithoutCancelling()
    {
        var generation = new ScriptedGeneration(new GenerationChunk(["Hello"], null), new GenerationChunk([" world"], Done));

        var events = await StreamAsync(generation);

        Assert.Equal(4, events.Count);
        Assert.Equal("[DONE]", events[^1].Data);
        Assert.Equal(0, generation.Cancelled);
    }

    private static async Task<List<SseItem<string>>> StreamAsync(ScriptedGeneration generation)
    {
        var events = new List<SseItem<string>>();
        var header = new CompletionsApi.ResponseHeader("cmpl-" + Guid.NewGuid().ToString("N"), 0, "m");
        await foreach (var item in CompletionsApi.StreamAsync(new DefaultHttpContext(), generation, new CompletionsApi.CompletionShape(), header, false, CancellationToken.None))
        {
            events.Add(item);
        }

        return events;
    }

    /// <summary>A generation whose reads answer from a script: a chunk, or an exception thrown by that read.</summary>
    private sealed class ScriptedGeneration(params object[] reads) : IGenerationGrain
    {
        private int _next;

        public int Cancelled { get; private set; }

        public Exception? CancelFailure { get; init; }

        public Task<GenerationChunk> ReadAsync(int fromIndex, int max, CancellationToken cancellationToken = default) => reads[_next++] switch
        {
            GenerationChunk chunk => Task.FromResult(chunk),
            Exception exception => Task.FromException<GenerationChunk>(exception),
            _ => throw new InvalidOperationException("Unscripted read."),
        };

        public Task CancelAsync()
        {
            Cancelled++;
            return CancelFailure is null ? Task.CompletedTask : Task.FromException(CancelFailure);
        }

        public Task<int> PrepareAsync(string ownerPseudonym, string[] ownerRoles, GenerationRequest request) => throw new NotSupportedException();

        public Task StartAsync() => throw new NotSupportedException();

        public Task AbandonAsync() => throw new NotSupportedException();

        public Task<GenerationResult> GetResultAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task BindServiceAsync(string servicePseudonym) => throw new NotSupportedException();

        public Task<GenerationChunk?> ReadOwnedAsync(GenerationOwner owner, int fromIndex, int max, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<bool> CancelOwnedAsync(GenerationOwner owner) => throw new NotSupportedException();
    }
}
