namespace Bastion.Users;

/// <summary>Maps one API key id to its owner's pseudonym.</summary>
[GrainType("bastion.api-key-route")]
public sealed class ApiKeyRouteGrain(
    [PersistentState("api-key-route", StorageNames.Bastion)] IPersistentState<ApiKeyRouteState> state) : Grain, IApiKeyRouteGrain
{
    public async Task<bool> BindAsync(string ownerPseudonym)
    {
        if (state.State.OwnerPseudonym is { } owner)
        {
            return owner == ownerPseudonym;
        }

        state.State.OwnerPseudonym = ownerPseudonym;
        await state.WriteStateAsync();
        return true;
    }

    public Task UnbindAsync() => state.ClearStateAsync();

    public Task<string?> GetOwnerAsync() => Task.FromResult(state.State.OwnerPseudonym);
}

/// <summary>The persisted owner of an API key id.</summary>
[GenerateSerializer, Alias("bastion.api-key-route-state")]
public sealed class ApiKeyRouteState
{
    [Id(0)] public string? OwnerPseudonym { get; set; }
}
