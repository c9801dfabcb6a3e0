namespace Bastion.Limits;

/// <summary>A user's persisted limit counters and their open reservations.</summary>
[GenerateSerializer, Alias("bastion.admission-state")]
public sealed class AdmissionState
{
    [Id(0)] public LimiterState Requests { get; set; } = new();

    /// <summary>The policy <see cref="Requests"/> counts under; a change of algorithm or window starts it afresh.</summary>
    [Id(1)] public LimitPolicy? RequestsPolicy { get; set; }

    [Id(2)] public LimiterState Tokens { get; set; } = new();
    [Id(3)] public LimitPolicy? TokensPolicy { get; set; }
    [Id(4)] public QuotaState DailyTokens { get; set; } = new();
    [Id(5)] public QuotaState MonthlyTokens { get; set; } = new();
    [Id(6)] public ConcurrencyState Concurrency { get; set; } = new();

    /// <summary>Admitted generations not yet settled: what each reserved, and when.</summary>
    [Id(7)] public Dictionary<Guid, Reservation> Reservations { get; set; } = [];

    /// <summary>The last generations settled (at most <see cref="Admission.SettledMemory"/>), newest last, so that a settlement repeated after its reply was lost counts once.</summary>
    [Id(8)] public List<Guid> Settled { get; set; } = [];

    /// <summary>How often <see cref="Tokens"/> started afresh: a reservation refunds only into the counters it was charged to.</summary>
    [Id(9)] public int TokensEpoch { get; set; }
}

/// <summary>
/// Tokens reserved for one generation at admission, when its running generation last renewed it, and the
/// <see cref="AdmissionState.TokensEpoch"/> it was charged in.
/// </summary>
[GenerateSerializer, Immutable, Alias("bastion.reservation")]
public sealed record Reservation(
    [property: Id(0)] long Tokens, [property: Id(1)] DateTimeOffset GrantedAt, [property: Id(2)] DateTimeOffset? RenewedAt = null, [property: Id(3)] int TokensEpoch = 0)
{
    /// <summary>The reservation (and its concurrency lease) lapses one lease duration after this, unless renewed again.</summary>
    public DateTimeOffset LastSeen => RenewedAt ?? GrantedAt;
}
