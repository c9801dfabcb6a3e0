namespace Bastion.Storage;

/// <summary>
/// A data key that an envelope names cannot be had: it is not in the key store (wrong scope, or a
/// payload copied from elsewhere), it was destroyed (erasure), or the KEK that wraps it is unknown.
/// </summary>
public class DataKeyUnavailableException : Exception
{
    public DataKeyUnavailableException()
    {
    }

    public DataKeyUnavailableException(string message)
        : base(message)
    {
    }

    public DataKeyUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
