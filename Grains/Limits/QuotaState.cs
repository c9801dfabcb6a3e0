namespace Bastion.Limits;

/// <summary>The persisted usage of one quota. A new instance has used nothing.</summary>
[GenerateSerializer, Alias("bastion.quota-state")]
public sealed class QuotaState
{
    /// <summary>Start of the period <see cref="Used"/> belongs to (UTC); never moves backwards.</summary>
    [Id(0)] public DateTimeOffset PeriodStart { get; set; }

    /// <summary>Units consumed in that period.</summary>
    [Id(1)] public long Used { get; set; }
}
