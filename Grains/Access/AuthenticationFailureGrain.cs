namespace Bastion.Access;

/// <summary>One partition's failed authentications in a fixed window; see <see cref="IAuthenticationFailureGrain"/>.</summary>
[GrainType("bastion.authentication-failures")]
public sealed class AuthenticationFailureGrain(TimeProvider time) : Grain, IAuthenticationFailureGrain
{
    private DateTimeOffset _windowEnd;

    private int _failures;

    public Task<DateTimeOffset?> RecordAsync(int limit, TimeSpan window)
    {
        var now = time.GetUtcNow();
        if (now >= _windowEnd)
        {
            _windowEnd = now + window;
            _failures = 0;
        }

        _failures++;
        return Task.FromResult<DateTimeOffset?>(_failures >= limit ? _windowEnd : null);
    }
}
