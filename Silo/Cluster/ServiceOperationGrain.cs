using Bastion.Access;
using Bastion.Security;
using Bastion.Users;

namespace Bastion.Cluster;

/// <summary>
/// Runs one admin operation once (see <see cref="IServiceOperationGrain"/>). The answer, an issued API key included,
/// stays in this activation's memory only — never in storage — and the activation is kept for <see cref="Memory"/>.
/// </summary>
[GrainType("bastion.service-operation")]
public sealed class ServiceOperationGrain(Pseudonymizer pseudonyms, ApiKeys apiKeys, TimeProvider time) : Grain, IServiceOperationGrain
{
    /// <summary>How long a finished operation's answer is remembered (a retry later than this runs it again).</summary>
    public static readonly TimeSpan Memory = TimeSpan.FromMinutes(10);

    private ServiceOperation? _operation;
    private ServiceOperationOutcome? _outcome;

    public async Task<ServiceOperationOutcome> RunAsync(ServiceOperation operation)
    {
        if (_operation is not null)
        {
            return _operation.SameAs(operation)
                ? _outcome!
                : new ServiceOperationOutcome(ServiceRefusal.Conflict, "This idempotency key was used for another operation.", null);
        }

        _operation = operation;
        _outcome = await ExecuteAsync(operation);
        DelayDeactivation(Memory);
        return _outcome;
    }

    private async Task<ServiceOperationOutcome> ExecuteAsync(ServiceOperation operation)
    {
        var pseudonym = pseudonyms.Pseudonymize(operation.UserId);
        var user = GrainFactory.GetGrain<IUserGrain>(pseudonym);
        switch (operation.Kind)
        {
            case ServiceOperationKind.CreateUser:
                if (!await GrainFactory.GetGrain<IUserDirectoryGrain>(IUserDirectoryGrain.Key).AddAsync(pseudonym, operation.UserId, operation.Roles.Contains(Roles.Admin)))
                {
                    return new(ServiceRefusal.Conflict, "A user with this id already exists.", null);
                }

                await user.CreateAsync(operation.Roles);
                return new(null, null, null);

            case ServiceOperationKind.IssueApiKey:
                var now = time.GetUtcNow();
                var expiresAt = operation.ExpiresInDays is { } days ? now.AddDays(days) : (DateTimeOffset?)null;
                var (keyId, apiKey, hash, version) = apiKeys.Generate();
                if (!await user.AddApiKeyAsync(new NewApiKey(keyId, hash, version, operation.Label, now, expiresAt)))
                {
                    return new(ServiceRefusal.NotFound, "No user with this id exists.", null);
                }

                // Key ids are 96 random bits, so a bind conflict means a bug, not bad luck.
                if (!await GrainFactory.GetGrain<IApiKeyRouteGrain>(keyId).BindAsync(pseudonym))
                {
                    throw new InvalidOperationException("A freshly generated API key id was already bound.");
                }

                return new(null, null, new IssuedApiKey(keyId, apiKey, now, expiresAt));

            case ServiceOperationKind.RevokeTokens:
                return await user.RevokeTokensAsync() ? new(null, null, null) : new(ServiceRefusal.NotFound, "No user with this id exists.", null);

            default:
                return new(ServiceRefusal.InvalidRequest, "Unknown operation.", null);
        }
    }
}
