namespace Bastion.Storage;

/// <summary>A PostgreSQL command-line tool (initdb, pg_ctl) failed.</summary>
public sealed class PostgresCommandException : Exception
{
    public PostgresCommandException()
    {
    }

    public PostgresCommandException(string message)
        : base(message)
    {
    }

    public PostgresCommandException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
