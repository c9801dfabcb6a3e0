namespace Bastion.Generation;

/// <summary>How each worker silo's continuous-batching engines run (<c>Bastion:Inference:Batching</c>).</summary>
public sealed class BatchingOptions
{
    public const string SectionName = "Bastion:Inference:Batching";

    /// <summary>The most sequences one model decodes together (paused slow readers included: each holds its cache).</summary>
    public int MaxBatchSize { get; set; } = 16;

    /// <summary>The most requests waiting for a batch slot; beyond it requests are refused as overloaded.</summary>
    public int MaxQueueLength { get; set; } = 64;

    /// <summary>
    /// How long an idle engine waits, once a first request arrives, for others to join before the first decode
    /// step; 0 starts at once.
    /// </summary>
    public int MaxWaitMilliseconds { get; set; }

    /// <summary>
    /// The longest a generation may hold a batch slot, decoding or set aside; it then ends with what it has
    /// (<c>finish_reason: length</c>), its usage is settled and its slot and concurrency lease are freed.
    /// </summary>
    public int MaxGenerationSeconds { get; set; } = 600;

    /// <summary>
    /// How long a sequence set aside for a slow reader may wait for its reader to catch up; it then ends with what it
    /// has, so a client that opens streams and never reads cannot keep batch slots (or its concurrency leases).
    /// </summary>
    public int SetAsideTimeoutSeconds { get; set; } = 30;

    /// <summary>Each invalid setting, named.</summary>
    public IEnumerable<string> Problems()
    {
        if (MaxBatchSize is < 1 or > 1024)
        {
            yield return $"{SectionName}:{nameof(MaxBatchSize)} must lie in [1, 1024].";
        }

        if (MaxQueueLength is < 0 or > 100_000)
        {
            yield return $"{SectionName}:{nameof(MaxQueueLength)} must lie in [0, 100000].";
        }

        if (MaxWaitMilliseconds is < 0 or > 10_000)
        {
            yield return $"{SectionName}:{nameof(MaxWaitMilliseconds)} must lie in [0, 10000].";
        }

        if (MaxGenerationSeconds is < 1 or > 86_400)
        {
            yield return $"{SectionName}:{nameof(MaxGenerationSeconds)} must lie in [1, 86400].";
        }

        if (SetAsideTimeoutSeconds is < 1 or > 3_600)
        {
            yield return $"{SectionName}:{nameof(SetAsideTimeoutSeconds)} must lie in [1, 3600].";
        }
    }
}
