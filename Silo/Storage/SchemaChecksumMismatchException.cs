namespace Bastion.Storage;

/// <summary>An already applied migration script was edited after it ran; the schema can no longer be trusted to match it.</summary>
public sealed class SchemaChecksumMismatchException : Exception
{
    public SchemaChecksumMismatchException()
    {
    }

    public SchemaChecksumMismatchException(string message)
        : base(message)
    {
    }

    public SchemaChecksumMismatchException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
