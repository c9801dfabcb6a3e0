namespace Bastion.Access;

/// <summary>Holds the emergency switches durably; see <see cref="IEmergencyGrain"/>.</summary>
[GrainType("bastion.emergency")]
public sealed class EmergencyGrain(
    [PersistentState("emergency", StorageNames.Bastion)] IPersistentState<EmergencyState> state) : Grain, IEmergencyGrain
{
    public Task<EmergencySwitches> GetAsync() => Task.FromResult(state.State.Switches);

    public async Task<EmergencySwitches> SetAsync(EmergencySwitches switches)
    {
        state.State.Switches = switches;
        await state.WriteStateAsync();
        return switches;
    }
}

/// <summary>The persisted switches.</summary>
[GenerateSerializer, Alias("bastion.emergency-state")]
public sealed class EmergencyState
{
    [Id(0)] public EmergencySwitches Switches { get; set; } = EmergencySwitches.Off;
}

/// <summary>
/// A silo's view of the emergency switches: read from <see cref="IEmergencyGrain"/> at most once per <see cref="MaxAge"/>,
/// so that every silo honours a switch within that time of it being set, and a set through this silo at once.
/// A read that fails fails the request that needed it (nothing is assumed to be off).
/// </summary>
public sealed class EmergencySwitchboard(IGrainFactory grains, TimeProvider time)
{
    /// <summary>How old a silo's copy of the switches may be.</summary>
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(1);

    private volatile Snapshot? _snapshot;

    /// <summary>The switches, at most <see cref="MaxAge"/> old.</summary>
    public async ValueTask<EmergencySwitches> GetAsync()
    {
        if (_snapshot is { } snapshot && time.GetElapsedTime(snapshot.ReadAt) < MaxAge)
        {
            return snapshot.Switches;
        }

        var readAt = time.GetTimestamp();
        var switches = await grains.GetGrain<IEmergencyGrain>(IEmergencyGrain.Key).GetAsync();
        _snapshot = new Snapshot(switches, readAt);
        return switches;
    }

    /// <summary>Sets the switches for the whole cluster; this silo honours them at once, the others within <see cref="MaxAge"/>.</summary>
    public async Task<EmergencySwitches> SetAsync(EmergencySwitches switches)
    {
        var readAt = time.GetTimestamp();
        var set = await grains.GetGrain<IEmergencyGrain>(IEmergencyGrain.Key).SetAsync(switches);
        _snapshot = new Snapshot(set, readAt);
        return set;
    }

    private sealed record Snapshot(EmergencySwitches Switches, long ReadAt);
}
