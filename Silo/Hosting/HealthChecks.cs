using Bastion.Generation;
using Bastion.Inference;
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

/// <summary>
/// Ready only once a worker silo has loaded its models (an API-only silo loads none). Its details (admins only)
/// name each model's execution provider and the ONNX Runtime threading the silo runs with.
/// </summary>
internal sealed class ModelHealthCheck(ModelCatalog models, InferenceRuntimeOptions runtime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!models.IsReady)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("models not loaded"));
        }

        var data = models.Models.ToDictionary(m => m.Name, m => (object)m.ExecutionProvider.ToString());
        data["runtime.execution_provider"] = runtime.ExecutionProvider.ToString();
        data["runtime.intra_op_threads"] = runtime.IntraOpThreads == 0 ? "auto" : runtime.IntraOpThreads;
        data["runtime.allow_spinning"] = runtime.AllowSpinning ? "true" : "false";
        return Task.FromResult(HealthCheckResult.Healthy(data: data));
    }
}
