namespace Bastion.Security;

/// <summary>
/// The key provider cannot vouch for its keys (the vault has not been read at all, or not for longer
/// than <c>MaxStaleness</c>). Whatever needed a key fails closed: the caller gets a 503, never plaintext.
/// </summary>
[GenerateSerializer]
public sealed class KeysUnavailableException : Exception
{
    public KeysUnavailableException()
        : base("The keys are unavailable: the key vault has not been read recently enough.")
    {
    }

    public KeysUnavailableException(string message)
        : base(message)
    {
    }

    public KeysUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Whether <paramref name="exception"/> or one it wraps is a <see cref="KeysUnavailableException"/>.</summary>
    public static bool IsIn(Exception? exception)
    {
        for (var current = exception; current is not null; current = current.InnerException)
        {
            if (current is KeysUnavailableException || (current is AggregateException aggregate && aggregate.InnerExceptions.Any(IsIn)))
            {
                return true;
            }
        }

        return false;
    }
}
