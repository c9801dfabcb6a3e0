namespace Bastion.Generation;

/// <summary>A model a worker silo has loaded and serves, as it reports it with its load.</summary>
/// <param name="Name">The name clients ask for.</param>
/// <param name="ContextLength">The most tokens (prompt plus completion) one sequence may hold.</param>
/// <param name="Created">When the worker loaded it.</param>
[GenerateSerializer, Immutable, Alias("bastion.served-model")]
public sealed record ServedModel([property: Id(0)] string Name, [property: Id(1)] int ContextLength, [property: Id(2)] DateTimeOffset Created);
