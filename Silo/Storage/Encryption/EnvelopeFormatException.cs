namespace Bastion.Storage;

/// <summary>
/// A stored envelope that cannot be opened: not an envelope (for example state written before
/// encryption existed), an unknown format version, a truncated header, a wrong key, tampered bytes,
/// or a row moved onto another grain. Nothing is ever returned in its place.
/// </summary>
public sealed class EnvelopeFormatException : Exception
{
    public EnvelopeFormatException()
    {
    }

    public EnvelopeFormatException(string message)
        : base(message)
    {
    }

    public EnvelopeFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
