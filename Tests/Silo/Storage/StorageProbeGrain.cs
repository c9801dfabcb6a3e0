namespace Bastion.Tests.Silo.Storage;

[GrainType("bastion-tests-storage-probe")]
public sealed class StorageProbeGrain(
    [PersistentState("storageProbe", StorageProbeGrain.StorageName)] IPersistentState<StorageProbeState> state)
    : Grain, IStorageProbeGrain, IRemindable
{
    public const string StorageName = "Default";

    public async Task SetValueAsync(string value)
    {
        state.State.Value = value;
        await state.WriteStateAsync();
    }

    public Task<string?> GetValueAsync() => Task.FromResult(state.State.Value);

    public Task RegisterReminderAsync(string name, TimeSpan period) =>
        this.RegisterOrUpdateReminder(name, period, period);

    public async Task<bool> HasReminderAsync(string name) =>
        await this.GetReminder(name) is not null;

    public Task ReceiveReminder(string reminderName, TickStatus status) => Task.CompletedTask;
}

[GenerateSerializer]
[Alias("Bastion.Tests.StorageProbeState")]
public sealed class StorageProbeState
{
    [Id(0)]
    public string? Value { get; set; }
}
