using Bastion.Generation;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace Bastion.Hosting;

/// <summary>Ready only while PostgreSQL answers as the runtime role.</summary>
internal sealed class DatabaseHealthCheck(BastionDatabase database) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var connection = new NpgsqlConnection(database.RuntimeConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            await command.ExecuteScalarAsync(cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (Exception exception) when (exception is NpgsqlException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy("database unreachable");
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
