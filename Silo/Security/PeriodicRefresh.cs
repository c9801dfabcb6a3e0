namespace Bastion.Security;

/// <summary>
/// The background loop of everything read from Key Vault: refresh every interval from <see cref="Start"/> until
/// <see cref="StopAsync"/>. A failed refresh is reported and the loop goes on: one that died silently would never
/// take up a rotation or renewal once the vault is back.
/// </summary>
/// <param name="interval">Time between refreshes.</param>
/// <param name="time">The clock the interval runs on.</param>
/// <param name="refresh">One refresh.</param>
/// <param name="failed">Reports a failed refresh.</param>
internal sealed class PeriodicRefresh(TimeSpan interval, TimeProvider time, Func<CancellationToken, Task> refresh, Action<Exception> failed) : IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private Task _loop = Task.CompletedTask;

    /// <summary>Starts the loop; the first refresh is one interval from now.</summary>
    public void Start() => _loop = RunAsync(_stopping.Token);

    /// <summary>Stops the loop and waits for a refresh under way to end.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await _loop.WaitAsync(cancellationToken);
    }

    public void Dispose() => _stopping.Dispose();

    private async Task RunAsync(CancellationToken cancellationToken)
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
