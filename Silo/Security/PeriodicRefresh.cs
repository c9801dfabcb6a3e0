namespace Bastion.Security;

/// <summary>The background loop of everything read from Key Vault: refresh every interval until stopped.</summary>
internal static class PeriodicRefresh
{
    /// <summary>
    /// Calls <paramref name="refresh"/> every <paramref name="interval"/> until <paramref name="cancellationToken"/> is
    /// cancelled. A failed refresh is handed to <paramref name="failed"/> and the loop goes on: one that died silently
    /// would never take up a rotation or renewal once the vault is back.
    /// </summary>
    public static async Task RunAsync(
        TimeSpan interval, TimeProvider time, Func<CancellationToken, Task> refresh, Action<Exception> failed, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                try
                {
                    await refresh(cancellationToken);
                }
                catch (Exception exception) when (!cancellationToken.IsCancellationRequested)
                {
                    failed(exception);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }
}
