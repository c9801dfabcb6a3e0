namespace Bastion.Storage;

/// <summary>
/// The data key was destroyed by an erasure (the key store holds an erasure record for its scope): the state it
/// sealed is gone for good, and the storage reads it as no state at all, so the erasure can finish and nothing
/// can bring the state back.
/// </summary>
public sealed class DataKeyErasedException : DataKeyUnavailableException
{
    public DataKeyErasedException()
    {
    }

    public DataKeyErasedException(string message)
        : base(message)
    {
    }

    public DataKeyErasedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
