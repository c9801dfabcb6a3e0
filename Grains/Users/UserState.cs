using Bastion.Anomaly;
using Bastion.Limits;

namespace Bastion.Users;

/// <summary>The persisted state of one user. No user id, prompt or secret is ever stored here.</summary>
[GenerateSerializer, Alias("bastion.user-state")]
public sealed class UserState
{
    [Id(0)] public bool Exists { get; set; }
    [Id(1)] public List<string> Roles { get; set; } = [];
    [Id(2)] public Dictionary<string, StoredApiKey> ApiKeys { get; set; } = new(StringComparer.Ordinal);
    [Id(3)] public bool Suspended { get; set; }
    [Id(4)] public long RevocationGeneration { get; set; }
    [Id(5)] public long PromptTokens { get; set; }
    [Id(6)] public long CompletionTokens { get; set; }
    [Id(7)] public long Requests { get; set; }

    /// <summary>Limit counters and the generations admitted but not yet settled (so suspension can cancel them).</summary>
    [Id(8)] public AdmissionState Admission { get; set; } = new();

    /// <summary>An admin's per-user overrides of the role's limits.</summary>
    [Id(9)] public UserLimits? LimitOverrides { get; set; }

    /// <summary>External tokens issued at or before this time are refused (set by revoke-tokens).</summary>
    [Id(10)] public DateTimeOffset ExternalTokensRevokedAt { get; set; }

    /// <summary>Anomaly counters, the token baseline, hashed client networks and a running throttle (docs/anomaly-detection.md).</summary>
    [Id(11)] public AnomalyState Anomaly { get; set; } = new();
}

/// <summary>A stored API key: the keyed hash of its secret and its metadata.</summary>
[GenerateSerializer, Alias("bastion.stored-api-key")]
public sealed class StoredApiKey
{
    [Id(0)] public byte[] SecretHash { get; set; } = [];
    [Id(1)] public int HashKeyVersion { get; set; }
    [Id(2)] public string Label { get; set; } = "";
    [Id(3)] public DateTimeOffset CreatedAt { get; set; }
    [Id(4)] public DateTimeOffset? ExpiresAt { get; set; }
    [Id(5)] public bool Revoked { get; set; }
}
