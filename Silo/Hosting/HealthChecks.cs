using Bastion.Generation;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace Bastion.Hosting;

/// <summary>
/// Ready only while both databases answer as their runtime roles: the state database, and the key
/// store without which no grain state can be opened.
/// </summary>
internal sealed class DatabaseHealthCheck(BastionDatabase database) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!await AnswersAsync(database.RuntimeConnectionString, cancellationToken))
        {
            return HealthCheckResult.Unhealthy("database unreachable");
        }

        return await AnswersAsync(database.KeyStoreConnectionString, cancellationToken)
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Unhealthy("key store unreachable");
    }

    private static async Task<bool> AnswersAsync(string connectionString, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            await command.ExecuteScalarAsync(cancellationToken);
            return true;
        }
        catch (Exception exception) when (exception is NpgsqlException or TimeoutException)
        {
            return false;
        }
    }
}

/// <summary>Ready only once a worker silo has loaded its models (an API-only silo loads none).</summary>
internal sealed class ModelHealthCheck(ModelCatalog models) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(models.IsReady
            ? HealthCheckResult.Healthy(data: models.Models.ToDictionary(m => m.Name, m => (object)m.ExecutionProvider.ToString()))
            : HealthCheckResult.Unhealthy("models not loaded"));
}
