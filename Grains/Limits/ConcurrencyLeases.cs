namespace Bastion.Limits;

/// <summary>
/// Counts concurrent generations with leases that expire, so a settlement that never arrives (a crashed worker,
/// a lost message) frees its slot after the lease duration instead of blocking the user forever.
/// </summary>
public static class ConcurrencyLeases
{
    /// <summary>
    /// Takes a slot for <paramref name="leaseId"/> until <paramref name="now"/> + <paramref name="leaseDuration"/>,
    /// after purging expired leases. Acquiring a lease that is already held renews it (a retried call takes no second
    /// slot).
    /// </summary>
    public static bool TryAcquire(ConcurrencyState state, int limit, Guid leaseId, DateTimeOffset now, TimeSpan leaseDuration)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(leaseDuration, TimeSpan.Zero);

        var expiry = now + leaseDuration;
        Purge(state, now, expiry);
        if (state.Leases.ContainsKey(leaseId) || state.Leases.Count < limit)
        {
            state.Leases[leaseId] = expiry;
            return true;
        }

        return false;
    }

    /// <summary>
    /// Extends a lease still in force to <paramref name="now"/> + <paramref name="leaseDuration"/>, for a generation that is
    /// still running; false when it is not held or has expired (an expired lease is never revived: its slot may have gone
    /// to another generation).
    /// </summary>
    public static bool Renew(ConcurrencyState state, Guid leaseId, DateTimeOffset now, TimeSpan leaseDuration)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(leaseDuration, TimeSpan.Zero);

        if (!state.Leases.TryGetValue(leaseId, out var expiry) || expiry <= now)
        {
            return false;
        }

        state.Leases[leaseId] = now + leaseDuration;
        return true;
    }

    /// <summary>Frees the lease's slot; false when it was not held (already released or expired and purged).</summary>
    public static bool Release(ConcurrencyState state, Guid leaseId)
    {
        ArgumentNullException.ThrowIfNull(state);
        return state.Leases.Remove(leaseId);
    }

    /// <summary>Leases still in force at <paramref name="now"/>.</summary>
    public static int Active(ConcurrencyState state, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(state);
        return state.Leases.Values.Count(expiry => expiry > now);
    }

    private static void Purge(ConcurrencyState state, DateTimeOffset now, DateTimeOffset latestExpiry)
    {
        foreach (var (id, expiry) in state.Leases.ToList())
        {
            if (expiry <= now)
            {
                state.Leases.Remove(id);
            }
            else if (expiry > latestExpiry)
            {
                // Granted before the clock jumped back: no lease may outlive one full duration from the present.
                state.Leases[id] = latestExpiry;
            }
        }
    }
}
