namespace Bastion.Limits;

/// <summary>
/// Admits a request against every limit of a user at once, or none: each dimension is checked first
/// and only then are all of them charged, so a refusal by one never consumes another. Pure: the user
/// grain persists the state (ETag-checked) before the grant counts.
/// </summary>
public static class Admission
{
    /// <summary>
    /// How many settled generations are remembered. A settlement is repeated only when the silo of the user's grain
    /// died after storing it and before replying; until the grain is active again no other settlement can be stored,
    /// so only the user's other settlements in flight at that moment can come between the two.
    /// </summary>
    public const int SettledMemory = 32;

    /// <summary>
    /// Admits generation <paramref name="generationId"/> reserving <paramref name="tokens"/>, or reports the
    /// first exhausted limit. On admission the status of the request limit is returned.
    /// </summary>
    public static (bool Admitted, LimitStatus? Status) TryAdmit(
        AdmissionState state, UserLimits limits, Guid generationId, long tokens, DateTimeOffset now, TimeSpan leaseDuration)
    {
        ExpireReservations(state, now, leaseDuration);
        state.Requests = Align(state.Requests, state.RequestsPolicy, limits.Requests);
        state.RequestsPolicy = limits.Requests;
        var tokenCounters = Align(state.Tokens, state.TokensPolicy, limits.Tokens);
        if (!ReferenceEquals(tokenCounters, state.Tokens))
        {
            state.TokensEpoch++;
        }

        state.Tokens = tokenCounters;
        state.TokensPolicy = limits.Tokens;

        if (Refusal(state, limits, tokens, now) is { } refused)
        {
            return (false, refused);
        }

        LimitStatus? requests = null;
        if (limits.Requests is { } requestPolicy)
        {
            requests = Status(LimitKind.Requests, requestPolicy, RateLimiter.TryAcquire(requestPolicy, state.Requests, 1, now));
        }

        if (limits.Tokens is { } tokenPolicy)
        {
            RateLimiter.TryAcquire(tokenPolicy, state.Tokens, tokens, now);
        }

        if (limits.Concurrency is { } concurrency)
        {
            ConcurrencyLeases.TryAcquire(state.Concurrency, concurrency, generationId, now, leaseDuration);
        }

        if (limits.DailyTokens is { } daily)
        {
            UsageQuota.TryConsume(QuotaPeriod.Day, daily, state.DailyTokens, tokens, now);
        }

        if (limits.MonthlyTokens is { } monthly)
        {
            UsageQuota.TryConsume(QuotaPeriod.Month, monthly, state.MonthlyTokens, tokens, now);
        }

        state.Reservations[generationId] = new Reservation(tokens, now, TokensEpoch: state.TokensEpoch);
        return (true, requests);
    }

    /// <summary>
    /// Closes a generation: frees its concurrency slot and refunds the tokens it reserved but did not
    /// use. A generation whose lease already expired refunds nothing (its slot was freed back then).
    /// </summary>
    /// <returns>False when <paramref name="generationId"/> was settled before (a caller retrying after a lost reply): nothing changes, and its usage must not be counted again.</returns>
    public static bool Settle(AdmissionState state, UserLimits limits, Guid generationId, long usedTokens, DateTimeOffset now)
    {
        if (state.Settled.Contains(generationId))
        {
            return false;
        }

        state.Settled.Add(generationId);
        if (state.Settled.Count > SettledMemory)
        {
            state.Settled.RemoveAt(0);
        }

        if (!state.Reservations.Remove(generationId, out var reservation))
        {
            return true;
        }

        ConcurrencyLeases.Release(state.Concurrency, generationId);
        var unused = reservation.Tokens - usedTokens;
        if (unused <= 0)
        {
            return true;
        }

        // Only into the counters the reservation was charged to: not after the policy changed, nor once counting restarted.
        if (limits.Tokens is { } tokenPolicy && tokenPolicy == state.TokensPolicy && reservation.TokensEpoch == state.TokensEpoch)
        {
            RateLimiter.Refund(tokenPolicy, state.Tokens, unused, reservation.GrantedAt, now);
        }

        UsageQuota.Refund(QuotaPeriod.Day, state.DailyTokens, unused, reservation.GrantedAt, now);
        UsageQuota.Refund(QuotaPeriod.Month, state.MonthlyTokens, unused, reservation.GrantedAt, now);
        return true;
    }

    /// <summary>
    /// Renews the reservation and concurrency lease of a generation that reports itself still running, for another
    /// <paramref name="leaseDuration"/>. Only a generation still open can renew: one settled, or whose lease lapsed because
    /// its renewals stopped (its worker died), gets false and must stop, for its slot may already be someone else's.
    /// </summary>
    public static bool Renew(AdmissionState state, Guid generationId, DateTimeOffset now, TimeSpan leaseDuration)
    {
        ExpireReservations(state, now, leaseDuration);
        if (!state.Reservations.TryGetValue(generationId, out var reservation))
        {
            return false;
        }

        if (state.Concurrency.Leases.ContainsKey(generationId) && !ConcurrencyLeases.Renew(state.Concurrency, generationId, now, leaseDuration))
        {
            // The lease ran out although the reservation had not (the clock jumped): the slot is no longer held.
            state.Reservations.Remove(generationId);
            ConcurrencyLeases.Release(state.Concurrency, generationId);
            return false;
        }

        state.Reservations[generationId] = reservation with { RenewedAt = now };
        return true;
    }

    /// <summary>The generations still open (admitted, unsettled, lease unexpired).</summary>
    public static IReadOnlyList<Guid> Open(AdmissionState state) => [.. state.Reservations.Keys];

    private static LimitStatus? Refusal(AdmissionState state, UserLimits limits, long tokens, DateTimeOffset now)
    {
        if (limits.Requests is { } requestPolicy && RateLimiter.Peek(requestPolicy, state.Requests, 1, now) is { Granted: false } requests)
        {
            return Status(LimitKind.Requests, requestPolicy, requests);
        }

        if (limits.Tokens is { } tokenPolicy && RateLimiter.Peek(tokenPolicy, state.Tokens, tokens, now) is { Granted: false } tokenDecision)
        {
            return Status(LimitKind.Tokens, tokenPolicy, tokenDecision);
        }

        if (limits.Concurrency is { } concurrency && ConcurrencyLeases.Active(state.Concurrency, now) >= concurrency)
        {
            // A slot frees when a generation settles; there is no schedule to promise, so suggest a short wait.
            return new LimitStatus(LimitKind.Concurrency, concurrency, null, 0, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), concurrency == 0);
        }

        if (limits.DailyTokens is { } daily && UsageQuota.Peek(QuotaPeriod.Day, daily, state.DailyTokens, tokens, now) is { Granted: false } day)
        {
            return new LimitStatus(LimitKind.DailyTokens, daily, TimeSpan.FromDays(1), day.Remaining, day.ResetAfter, day.RetryAfter, day.NeverFits);
        }

        if (limits.MonthlyTokens is { } monthly && UsageQuota.Peek(QuotaPeriod.Month, monthly, state.MonthlyTokens, tokens, now) is { Granted: false } month)
        {
            var period = UsageQuota.PeriodStart(QuotaPeriod.Month, now);
            return new LimitStatus(LimitKind.MonthlyTokens, monthly, UsageQuota.NextPeriodStart(QuotaPeriod.Month, period) - period,
                month.Remaining, month.ResetAfter, month.RetryAfter, month.NeverFits);
        }

        return null;
    }

    private static LimitStatus Status(LimitKind kind, LimitPolicy policy, LimitDecision decision) =>
        new(kind, policy.Limit, policy.Window, decision.Remaining, decision.ResetAfter, decision.RetryAfter, decision.NeverFits);

    // Counters mean different things under different algorithms or windows, so such a change
    // starts afresh; a new limit alone keeps counting, and the new limit applies at once.
    private static LimiterState Align(LimiterState state, LimitPolicy? previous, LimitPolicy? current) =>
        previous is null || (current is not null && previous.Algorithm == current.Algorithm && previous.Window == current.Window)
            ? state
            : new LimiterState();

    private static void ExpireReservations(AdmissionState state, DateTimeOffset now, TimeSpan leaseDuration)
    {
        foreach (var (id, reservation) in state.Reservations.ToList())
        {
            if (reservation.LastSeen + leaseDuration <= now)
            {
                state.Reservations.Remove(id);
                ConcurrencyLeases.Release(state.Concurrency, id);
            }
        }
    }
}
