namespace Bastion.Access;

/// <summary>
/// Counts failed authentications for one partition — a client address or an API key id — for the whole cluster,
/// so an attacker who spreads guesses over every API silo meets one limit. Its key names the partition; it holds
/// its count in memory only.
/// </summary>
[Alias("bastion.authentication-failures")]
public interface IAuthenticationFailureGrain : IGrainWithStringKey
{
    /// <summary>
    /// Counts one failure in the current window (a fixed window of <paramref name="window"/> that opens with its
    /// first failure). Returns when the partition's block ends once <paramref name="limit"/> failures are reached,
    /// otherwise null.
    /// </summary>
    [Alias("record")]
    Task<DateTimeOffset?> RecordAsync(int limit, TimeSpan window);
}
