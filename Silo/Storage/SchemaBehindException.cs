namespace Bastion.Storage;

/// <summary>
/// The database schema is older than this build expects (or was never created). Serving silos
/// refuse to start on it; the owner runs <c>dotnet run --project Silo -- migrate</c>.
/// </summary>
public sealed class SchemaBehindException : Exception
{
    public SchemaBehindException()
    {
    }

    public SchemaBehindException(string message)
        : base(message)
    {
    }

    public SchemaBehindException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
