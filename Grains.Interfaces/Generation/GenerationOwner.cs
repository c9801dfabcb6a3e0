namespace Bastion.Generation;

/// <summary>
/// Who may read or cancel a generation through the service gateway: the user it runs for and the service that started
/// it. Both are pseudonyms, so the generation holds no user id.
/// </summary>
/// <param name="UserPseudonym">The pseudonym of the user whose grain admitted the generation (a service's own, or the user it acts for).</param>
/// <param name="ServicePseudonym">The pseudonym of the service that started it through the gateway.</param>
[GenerateSerializer, Immutable, Alias("bastion.generation-owner")]
public sealed record GenerationOwner(
    [property: Id(0)] string UserPseudonym,
    [property: Id(1)] string ServicePseudonym);
