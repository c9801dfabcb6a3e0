using Bastion.Access;
using Microsoft.Extensions.Logging;

namespace Bastion.Users;

/// <summary>
/// Creates the first admin once per service. A grain activation is unique in the cluster and its
/// write is ETag-checked, so silos starting together cannot both create one.
/// </summary>
[GrainType("bastion.bootstrap")]
public sealed partial class BootstrapGrain(
    [PersistentState("bootstrap", StorageNames.Bastion)] IPersistentState<BootstrapState> state,
    ILogger<BootstrapGrain> logger) : Grain, IBootstrapGrain
{
    public async Task<bool> EnsureAdminAsync(string adminUserId, string adminPseudonym, NewApiKey key)
    {
        if (state.State.Completed)
        {
            return false;
        }

        await GrainFactory.GetGrain<IUserDirectoryGrain>(IUserDirectoryGrain.Key).AddAsync(adminPseudonym, adminUserId, isAdmin: true);
        var admin = GrainFactory.GetGrain<IUserGrain>(adminPseudonym);
        await admin.CreateAsync([Roles.Admin]);
        await admin.AddApiKeyAsync(key);
        await GrainFactory.GetGrain<IApiKeyRouteGrain>(key.KeyId).BindAsync(adminPseudonym);
        state.State.Completed = true;
        state.State.AdminPseudonym = adminPseudonym;
        await state.WriteStateAsync();
        LogBootstrapped(logger, adminPseudonym, key.KeyId, key.ExpiresAt);
        return true;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "AUDIT bootstrap admin {Pseudonym} created with API key {KeyId}, expiring {ExpiresAt}")]
    private static partial void LogBootstrapped(ILogger logger, string pseudonym, string keyId, DateTimeOffset? expiresAt);
}

/// <summary>Whether the bootstrap admin has been created.</summary>
[GenerateSerializer, Alias("bastion.bootstrap-state")]
public sealed class BootstrapState
{
    [Id(0)] public bool Completed { get; set; }
    [Id(1)] public string? AdminPseudonym { get; set; }
}
