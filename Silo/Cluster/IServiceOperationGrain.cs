namespace Bastion.Cluster;

/// <summary>
/// One state-changing admin operation of a service, keyed <c>{service pseudonym}/{idempotency key}</c>: it runs the
/// operation once and answers every repeat (a client's retry after a lost answer) with the first answer, for as
/// long as the activation lives (at least <see cref="ServiceOperationGrain.Memory"/>). Reached only from the gateway
/// facade, which has already checked the service's permission; clients cannot call it.
/// </summary>
[Alias("bastion.service-operation")]
public interface IServiceOperationGrain : IGrainWithStringKey
{
    /// <summary>Runs <paramref name="operation"/> once; a repeat of the same operation returns the same outcome, another one is a conflict.</summary>
    [Alias("run")]
    Task<ServiceOperationOutcome> RunAsync(ServiceOperation operation);
}

/// <summary>What a state-changing admin operation does.</summary>
public enum ServiceOperationKind
{
    /// <summary>Create a user with roles.</summary>
    CreateUser = 1,

    /// <summary>Issue an API key.</summary>
    IssueApiKey = 2,

    /// <summary>Revoke every token issued so far.</summary>
    RevokeTokens = 3,
}

/// <summary>An admin operation and its arguments (its identity for idempotency: a repeat must match exactly).</summary>
[GenerateSerializer, Immutable, Alias("bastion.service-operation-request")]
public sealed record ServiceOperation(
    [property: Id(0)] ServiceOperationKind Kind,
    [property: Id(1)] string UserId,
    [property: Id(2)] IReadOnlyList<string> Roles,
    [property: Id(3)] string Label,
    [property: Id(4)] int? ExpiresInDays)
{
    /// <summary>Whether <paramref name="other"/> asks for the same thing.</summary>
    public bool SameAs(ServiceOperation other) =>
        Kind == other.Kind && UserId == other.UserId && Roles.SequenceEqual(other.Roles) && Label == other.Label && ExpiresInDays == other.ExpiresInDays;
}

/// <summary>How an operation ended: a refusal, or success with the issued key where there is one.</summary>
[GenerateSerializer, Immutable, Alias("bastion.service-operation-outcome")]
public sealed record ServiceOperationOutcome(
    [property: Id(0)] ServiceRefusal? Refusal,
    [property: Id(1)] string? Message,
    [property: Id(2)] Cluster.IssuedApiKey? Key)
{
    /// <summary>Never print the key.</summary>
    public override string ToString() => $"ServiceOperationOutcome {{ Refusal = {Refusal}, Key = {Key} }}";
}
