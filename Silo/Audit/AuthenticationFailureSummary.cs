using System.Collections.Concurrent;
using System.Globalization;

namespace Bastion.Audit;

/// <summary>
/// Failed authentications go into the audit trail as one summary record per silo per
/// <see cref="AuditOptions.FailureSummaryInterval"/>, not one record per request: a flood of bad credentials costs a
/// counter increment each, and the trail gets how many failed, how many were refused while blocked, and which API key
/// ids were blocked (key ids are not secrets; they tell an operator which key is under attack).
/// </summary>
public sealed class AuthenticationFailureSummary(IAuditTrail audit, AuditOptions options, TimeProvider time) : IHostedService, IDisposable
{
    /// <summary>The action of a summary record.</summary>
    public const string Action = "auth.failures";

    private const int MaxKeysListed = 20;

    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<string, byte> _blockedKeys = new(StringComparer.Ordinal);
    private long _failures;
    private long _refused;
    private long _blockedAddresses;
    private Task? _loop;

    /// <summary>A request ended in 401.</summary>
    public void Failed() => Interlocked.Increment(ref _failures);

    /// <summary>A request was refused (429) because its address or key was blocked.</summary>
    public void Refused() => Interlocked.Increment(ref _refused);

    /// <summary>This silo learned that a client address went over its limit.</summary>
    public void AddressBlocked() => Interlocked.Increment(ref _blockedAddresses);

    /// <summary>This silo learned that API key <paramref name="keyId"/> went over its limit.</summary>
    public void KeyBlocked(string keyId)
    {
        if (_blockedKeys.Count < MaxKeysListed)
        {
            _blockedKeys.TryAdd(keyId, 0);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _loop ??= Task.Run(LoopAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_loop is { } loop)
        {
            await loop.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (!cancellationToken.IsCancellationRequested)
        {
            await FlushAsync();
        }
    }

    /// <summary>Writes what was counted since the last summary, if anything.</summary>
    public async Task FlushAsync()
    {
        var failures = Interlocked.Exchange(ref _failures, 0);
        var refused = Interlocked.Exchange(ref _refused, 0);
        var addresses = Interlocked.Exchange(ref _blockedAddresses, 0);
        var keys = _blockedKeys.Keys.Order(StringComparer.Ordinal).ToList();
        foreach (var key in keys)
        {
            _blockedKeys.TryRemove(key, out _);
        }

        if (failures == 0 && refused == 0 && addresses == 0 && keys.Count == 0)
        {
            return;
        }

        var detail = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["failures"] = failures.ToString(CultureInfo.InvariantCulture),
            ["refused"] = refused.ToString(CultureInfo.InvariantCulture),
            ["blocked_addresses"] = addresses.ToString(CultureInfo.InvariantCulture),
            ["interval_seconds"] = ((long)options.FailureSummaryInterval.TotalSeconds).ToString(CultureInfo.InvariantCulture),
        };
        if (keys.Count > 0)
        {
            detail["blocked_keys"] = string.Join(',', keys);
        }

        await audit.RecordAsync(new AuditRecord(time.GetUtcNow(), Action, null, null, "summary", detail));
    }

    public void Dispose() => _stopping.Dispose();

    private async Task LoopAsync()
    {
        using var timer = new PeriodicTimer(options.FailureSummaryInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token))
            {
                try
                {
                    await FlushAsync();
                }
                catch (AuditUnavailableException)
                {
                    // Logged by the trail; the counts of this interval are lost, the next interval starts afresh.
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }
}
