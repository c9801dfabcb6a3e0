using System.Globalization;
using System.Text.RegularExpressions;
using Npgsql;

namespace Bastion.Storage;

/// <summary>
/// Applies the embedded migrations of a <see cref="SchemaMigrationSet"/> (the state database's by
/// default, or the key store's) as the schema owner and checks, as the runtime role, that a database is current.
/// </summary>
public static partial class SchemaMigrator
{
    /// <summary>The command that brings a database up to date; quoted in every "schema behind" error.</summary>
    public const string MigrateCommand = "dotnet run --project Silo -- migrate";

    /// <summary>The table that records applied migrations.</summary>
    public const string HistoryTable = "bastion_schema_history";

    /// <summary>The schema of the data-key store (wrapped DEKs), in the key-store database.</summary>
    public const string KeyStoreSchema = "bastion_keys";

    // Arbitrary constant shared by every migrator of this schema ("bastion" in ASCII).
    private const long AdvisoryLockKey = 0x62617374696f6e;

    // Written by the runtime silos as plain configuration, so it only ever gets read.
    private static readonly string[] ReadOnlyTables = ["orleansquery", HistoryTable];

    // The audit trail: appended and read, never changed or deleted by a serving silo.
    private static readonly string[] AppendOnlyTables = ["bastion_audit", "bastion_audit_seals"];

    /// <summary>The version this build expects: the highest embedded migration.</summary>
    public static int ExpectedVersion => SchemaMigrationSet.State.ExpectedVersion;

    /// <summary>Migrates the state database; see <see cref="MigrateAsync(SchemaMigrationSet, string, string, CancellationToken)"/>.</summary>
    public static Task<IReadOnlyList<SchemaMigration>> MigrateAsync(string ownerConnectionString, string runtimeRole, CancellationToken cancellationToken) =>
        MigrateAsync(SchemaMigrationSet.State, ownerConnectionString, runtimeRole, cancellationToken);

    /// <summary>Checks the state database; see <see cref="EnsureCurrentAsync(SchemaMigrationSet, string, CancellationToken)"/>.</summary>
    public static Task EnsureCurrentAsync(string runtimeConnectionString, CancellationToken cancellationToken) =>
        EnsureCurrentAsync(SchemaMigrationSet.State, runtimeConnectionString, cancellationToken);

    /// <summary>
    /// Applies pending migrations in order, each in its own transaction, under a PostgreSQL
    /// advisory lock (concurrent callers wait, then find nothing to do), and grants
    /// <paramref name="runtimeRole"/> exactly what serving needs. Idempotent.
    /// </summary>
    /// <returns>The migrations applied by this call (empty when the database was current).</returns>
    /// <exception cref="SchemaChecksumMismatchException">An applied script differs from the embedded one.</exception>
    public static async Task<IReadOnlyList<SchemaMigration>> MigrateAsync(
        SchemaMigrationSet set, string ownerConnectionString, string runtimeRole, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentException.ThrowIfNullOrWhiteSpace(ownerConnectionString);
        if (!RoleNamePattern().IsMatch(runtimeRole))
        {
            throw new ArgumentException("The runtime role must be a plain lower-case PostgreSQL identifier.", nameof(runtimeRole));
        }

        await using var connection = new NpgsqlConnection(ownerConnectionString);
        await connection.OpenAsync(cancellationToken);
        await ExecuteAsync(connection, null, $"SELECT pg_advisory_lock({AdvisoryLockKey})", cancellationToken);
        try
        {
            await ExecuteAsync(
                connection,
                null,
                $"""
                CREATE TABLE IF NOT EXISTS {HistoryTable}
                (
                    version    integer     NOT NULL PRIMARY KEY,
                    name       text        NOT NULL,
                    sha256     char(64)    NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                cancellationToken);

            var applied = await ReadHistoryAsync(connection, cancellationToken);
            var appliedNow = new List<SchemaMigration>();
            foreach (var migration in set.Migrations)
            {
                if (applied.TryGetValue(migration.Version, out var recorded))
                {
                    if (!string.Equals(recorded.Sha256, migration.Sha256, StringComparison.Ordinal))
                    {
                        throw new SchemaChecksumMismatchException(
                            $"Migration {migration.Version:D4}_{migration.Name} was changed after it was applied " +
                            $"(applied sha256 {recorded.Sha256}, embedded {migration.Sha256}). Applied migrations are immutable: " +
                            "revert the edit and add a new migration instead.");
                    }

                    continue;
                }

                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await ExecuteAsync(connection, transaction, migration.Script, cancellationToken);
                await using (var record = new NpgsqlCommand($"INSERT INTO {HistoryTable} (version, name, sha256) VALUES (@version, @name, @sha256)", connection, transaction))
                {
                    record.Parameters.AddWithValue("version", migration.Version);
                    record.Parameters.AddWithValue("name", migration.Name);
                    record.Parameters.AddWithValue("sha256", migration.Sha256);
                    await record.ExecuteNonQueryAsync(cancellationToken);
                }

                await transaction.CommitAsync(cancellationToken);
                appliedNow.Add(migration);
            }

            await GrantRuntimeRoleAsync(connection, set, runtimeRole, cancellationToken);
            return appliedNow;
        }
        finally
        {
            // Closing the session releases the lock too; unlocking keeps a pooled session clean.
            await ExecuteAsync(connection, null, $"SELECT pg_advisory_unlock({AdvisoryLockKey})", CancellationToken.None);
        }
    }

    /// <summary>
    /// Throws <see cref="SchemaBehindException"/> unless every embedded migration has been applied.
    /// Runs with the runtime role's (read-only) rights.
    /// </summary>
    public static async Task EnsureCurrentAsync(SchemaMigrationSet set, string runtimeConnectionString, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentException.ThrowIfNullOrWhiteSpace(runtimeConnectionString);
        await using var connection = new NpgsqlConnection(runtimeConnectionString);
        await connection.OpenAsync(cancellationToken);

        await using (var exists = new NpgsqlCommand("SELECT to_regclass(@table) IS NOT NULL", connection))
        {
            exists.Parameters.AddWithValue("table", HistoryTable);
            if (!(bool)(await exists.ExecuteScalarAsync(cancellationToken))!)
            {
                throw new SchemaBehindException(
                    $"The {set.Name} database has no Bastion schema ({HistoryTable} is missing); this build expects {set.Name} schema version {set.ExpectedVersion}. " +
                    $"Run `{MigrateCommand}` with the owner's connection string ({set.OwnerSetting}).");
            }
        }

        var applied = await ReadHistoryAsync(connection, cancellationToken);
        // Matched by name too: the two sets number from 1 alike, so a key-store setting that points at
        // the state database (or the reverse) must not pass as current.
        var missing = set.Migrations
            .Where(m => !applied.TryGetValue(m.Version, out var recorded) || !string.Equals(recorded.Name, m.Name, StringComparison.Ordinal))
            .ToList();
        if (missing.Count > 0)
        {
            var appliedVersion = applied.Count == 0 ? 0 : applied.Keys.Max();
            throw new SchemaBehindException(
                $"The {set.Name} database schema is behind: applied version {appliedVersion}, expected {set.ExpectedVersion} " +
                $"(missing {string.Join(", ", missing.Select(m => $"{m.Version:D4}_{m.Name}"))}). " +
                $"Run `{MigrateCommand}` with the owner's connection string ({set.OwnerSetting}).");
        }
    }

    private static async Task GrantRuntimeRoleAsync(NpgsqlConnection connection, SchemaMigrationSet set, string runtimeRole, CancellationToken cancellationToken)
    {
        await using (var roleExists = new NpgsqlCommand("SELECT count(*) FROM pg_roles WHERE rolname = @role", connection))
        {
            roleExists.Parameters.AddWithValue("role", runtimeRole);
            if (Convert.ToInt64(await roleExists.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture) == 0)
            {
                throw new InvalidOperationException($"The runtime role '{runtimeRole}' does not exist; create it (LOGIN, no other attributes) before migrating.");
            }
        }

        var statements = set.HoldsKeys ? KeyStoreGrants(runtimeRole) : await StateGrantsAsync(connection, runtimeRole, cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        foreach (var statement in statements)
        {
            await ExecuteAsync(connection, transaction, statement, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    private static async Task<List<string>> StateGrantsAsync(NpgsqlConnection connection, string runtimeRole, CancellationToken cancellationToken)
    {
        var tables = new List<string>();
        await using (var list = new NpgsqlCommand("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename", connection))
        await using (var reader = await list.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                tables.Add(reader.GetString(0));
            }
        }

        // Reset then grant, so that rights removed from a table in a later version disappear too.
        var statements = new List<string>
        {
            $"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {runtimeRole}",
            $"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {runtimeRole}",
            $"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM {runtimeRole}",
            $"REVOKE CREATE ON SCHEMA public FROM {runtimeRole}",
            $"GRANT USAGE ON SCHEMA public TO {runtimeRole}",
            $"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {runtimeRole}",
            $"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {runtimeRole}",
        };
        foreach (var table in tables)
        {
            var rights = ReadOnlyTables.Contains(table, StringComparer.Ordinal) ? "SELECT"
                : AppendOnlyTables.Contains(table, StringComparer.Ordinal) ? "SELECT, INSERT"
                : "SELECT, INSERT, UPDATE, DELETE";
            statements.Add($"GRANT {rights} ON TABLE \"{table.Replace("\"", "\"\"", StringComparison.Ordinal)}\" TO {runtimeRole}");
        }

        return statements;
    }

    private static List<string> KeyStoreGrants(string runtimeRole) =>
    [
        // Only the key store's own runtime role may even connect: the state database's role (and any
        // other login on the server) gets no session here.
        $"DO $$ BEGIN EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()); " +
        $"EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), '{runtimeRole}'); END $$",
        $"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {runtimeRole}",
        $"REVOKE CREATE ON SCHEMA public FROM {runtimeRole}",
        $"GRANT USAGE ON SCHEMA public TO {runtimeRole}",
        $"GRANT SELECT ON TABLE {HistoryTable} TO {runtimeRole}",

        // Data keys are created, read and destroyed (wrapped bytes nulled), never deleted: the row
        // records that a key existed and when it was destroyed.
        $"REVOKE ALL ON ALL TABLES IN SCHEMA {KeyStoreSchema} FROM {runtimeRole}",
        $"REVOKE CREATE ON SCHEMA {KeyStoreSchema} FROM {runtimeRole}",
        $"GRANT USAGE ON SCHEMA {KeyStoreSchema} TO {runtimeRole}",
        $"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {KeyStoreSchema} TO {runtimeRole}",
    ];

    private static async Task<Dictionary<int, (string Name, string Sha256)>> ReadHistoryAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var history = new Dictionary<int, (string Name, string Sha256)>();
        await using var command = new NpgsqlCommand($"SELECT version, name, sha256 FROM {HistoryTable}", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            history[reader.GetInt32(0)] = (reader.GetString(1), reader.GetString(2));
        }

        return history;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex RoleNamePattern();
}
