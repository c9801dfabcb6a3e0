using Bastion.Access;
using Bastion.Limits;

namespace Bastion.Generation;

/// <summary>The user grain's answer to a submitted request.</summary>
/// <param name="Decision">The access decision.</param>
/// <param name="GenerationId">The generation to read the result from, when admitted.</param>
/// <param name="Limit">The exhausted limit when refused for one; the request limit's standing when admitted.</param>
[GenerateSerializer, Immutable, Alias("bastion.submission")]
public sealed record Submission(
    [property: Id(0)] AccessDecision Decision,
    [property: Id(1)] Guid? GenerationId,
    [property: Id(2)] LimitStatus? Limit = null);
