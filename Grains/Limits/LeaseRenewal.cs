namespace Bastion.Limits;

/// <summary>
/// Keeps a running generation's concurrency lease in force: renews it every third of the lease duration while the run
/// lasts, and never after. A generation that ended, or whose worker died, stops renewing, so its lease lapses within
/// one lease duration even when its settlement is lost; and one that cannot get a renewal through within a lease
/// duration stops, since its slot may by then have gone to another generation of the same user.
/// </summary>
public static class LeaseRenewal
{
    /// <summary>How often a lease of <paramref name="leaseDuration"/> is renewed: thrice per duration, so two lost renewals are survived.</summary>
    public static TimeSpan IntervalFor(TimeSpan leaseDuration) => leaseDuration / 3;

    /// <summary>
    /// Calls <paramref name="renew"/> every <see cref="IntervalFor"/> of <paramref name="leaseDuration"/> until
    /// <paramref name="run"/> completes. When a renewal is refused (false), or none succeeds for a whole lease duration,
    /// calls <paramref name="lost"/> and stops renewing.
    /// </summary>
    public static async Task RenewWhileRunningAsync(Task run, TimeSpan leaseDuration, Func<Task<bool>> renew, Action lost, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(renew);
        ArgumentNullException.ThrowIfNull(lost);
        ArgumentNullException.ThrowIfNull(time);

        var interval = IntervalFor(leaseDuration);
        var lastRenewed = time.GetTimestamp();
        while (true)
        {
            using (var timer = new CancellationTokenSource())
            {
                var tick = Task.Delay(interval, time, timer.Token);
                await Task.WhenAny(run, tick);
                await timer.CancelAsync();
            }

            if (run.IsCompleted)
            {
                return;
            }

            bool renewed;
            try
            {
                renewed = await renew();
            }
            catch (Exception) when (time.GetElapsedTime(lastRenewed) < leaseDuration)
            {
                // The user's grain is unreachable for now (its silo died and it is moving): the lease still holds.
                continue;
            }
            catch (Exception)
            {
                renewed = false;
            }

            if (!renewed)
            {
                if (!run.IsCompleted)
                {
                    lost();
                }

                return;
            }

            lastRenewed = time.GetTimestamp();
        }
    }
}
