using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Bastion.Access;
using Bastion.Audit;
using Bastion.Diagnostics;
using Bastion.Hosting;

namespace Bastion.Api;

/// <summary>The API key id a request presented (bearer or body), once the edge has found it to be an issued id.</summary>
/// <param name="KeyId">The key id.</param>
public sealed record PresentedApiKey(string KeyId);

/// <summary>Thrown by the edge when a presented API key id is blocked by <see cref="AuthenticationFailureLimiter"/>.</summary>
/// <param name="until">When the block ends.</param>
public sealed class AuthenticationBlockedException(DateTimeOffset until) : Exception("Too many failed authentications for this API key.")
{
    public DateTimeOffset Until { get; } = until;
}

/// <summary>
/// Limits failed authentications before authentication, for the whole cluster: every 401 counts against the
/// client address (IPv6 by /64) and against the issued API key id it presented, in
/// <see cref="IAuthenticationFailureGrain"/>s. A partition over its limit is refused with 429 until its minute
/// ends, before any credential is checked. Each silo learns of a block from the answer to its own next failure
/// and then refuses locally, so a flood costs one grain call per failure and none once blocked.
/// </summary>
public sealed partial class AuthenticationFailureLimiter(
    IGrainFactory grains,
    HttpOptions options,
    TimeProvider time,
    BastionMetrics metrics,
    AuthenticationFailureSummary summary,
    ILogger<AuthenticationFailureLimiter> logger)
{
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    private readonly ConcurrentDictionary<string, DateTimeOffset> _blocked = new(StringComparer.Ordinal);

    /// <summary>The middleware: refuses blocked addresses and keys, and counts the failures of everything else.</summary>
    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        // Hashing the address waits until there is something to compare it with: nothing is blocked, or the request failed.
        if (!_blocked.IsEmpty && BlockedUntil(AddressPartition(context.Connection.RemoteIpAddress)) is { } until)
        {
            await RefuseAsync(context, until);
            return;
        }

        try
        {
            await next(context);
        }
        catch (AuthenticationBlockedException blocked) when (!context.Response.HasStarted)
        {
            await RefuseAsync(context, blocked.Until);
            return;
        }

        if (context.Response.StatusCode == StatusCodes.Status401Unauthorized)
        {
            summary.Failed();
            await RecordAsync(AddressPartition(context.Connection.RemoteIpAddress), options.AuthenticationFailuresPerMinutePerAddress);
            if (context.Features.Get<PresentedApiKey>() is { } key)
            {
                await RecordAsync(KeyPartition(key.KeyId), options.AuthenticationFailuresPerMinutePerKey);
            }
        }
    }

    /// <summary>Throws <see cref="AuthenticationBlockedException"/> when <paramref name="keyId"/> is blocked.</summary>
    public void ThrowIfBlocked(string keyId)
    {
        if (BlockedUntil(KeyPartition(keyId)) is { } until)
        {
            throw new AuthenticationBlockedException(until);
        }
    }

    /// <summary>The partition of a client address: IPv4 as is, IPv6 by its /64, hashed so no grain id holds an address.</summary>
    internal static string AddressPartition(IPAddress? address)
    {
        if (address is null)
        {
            return "a:unknown";
        }

        var bytes = (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).GetAddressBytes();
        var network = bytes.Length == 16 ? bytes.AsSpan(0, 8) : bytes.AsSpan();
        return "a:" + Convert.ToHexStringLower(SHA256.HashData(network), 0, 16);
    }

    private static string KeyPartition(string keyId) => "k:" + keyId;

    private DateTimeOffset? BlockedUntil(string partition)
    {
        if (!_blocked.TryGetValue(partition, out var until))
        {
            return null;
        }

        if (until > time.GetUtcNow())
        {
            return until;
        }

        _blocked.TryRemove(KeyValuePair.Create(partition, until));
        return null;
    }

    private async Task RecordAsync(string partition, int limit)
    {
        if (BlockedUntil(partition) is not null)
        {
            return;
        }

        try
        {
            if (await grains.GetGrain<IAuthenticationFailureGrain>(partition).RecordAsync(limit, Window) is { } until)
            {
                _blocked[partition] = until;
                if (partition.StartsWith("k:", StringComparison.Ordinal))
                {
                    summary.KeyBlocked(partition[2..]);
                }
                else
                {
                    summary.AddressBlocked();
                }

                LogBlocked(logger, partition.StartsWith("k:", StringComparison.Ordinal) ? "API key" : "client address", limit);
            }
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // The request has had its 401; a count lost to a failing silo must not turn it into a 500.
            LogNotCounted(logger, exception);
        }
    }

    private async Task RefuseAsync(HttpContext context, DateTimeOffset until)
    {
        metrics.RecordRateLimitRefusal("authentication-failures");
        summary.Refused();
        var seconds = Math.Max(1, (long)Math.Ceiling((until - time.GetUtcNow()).TotalSeconds));
        context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        await Problems.RateLimited("Too many failed authentications; retry after the Retry-After interval.").ExecuteAsync(context);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Blocked a {Partition} for the rest of its minute after {Limit} failed authentications")]
    private static partial void LogBlocked(ILogger logger, string partition, int limit);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A failed authentication could not be counted")]
    private static partial void LogNotCounted(ILogger logger, Exception exception);
}
