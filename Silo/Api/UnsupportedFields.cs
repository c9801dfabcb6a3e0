using System.Collections.Frozen;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bastion.Api;

/// <summary>
/// The OpenAI request fields Bastion does not implement, refused with a 400 that names the field rather than ignored:
/// a client that asked for tools, a JSON format or biased logits must not take an answer made without them for one made
/// with them. A field sent as <c>null</c> (as SDKs do) or at its do-nothing value is accepted. Fields that change nothing
/// about the answer (<c>user</c>, <c>metadata</c>, <c>store</c>, <c>service_tier</c>, …) and fields Bastion does not know
/// are accepted and ignored, so that a newer SDK keeps working (docs/openai-compatibility.md).
/// </summary>
public static class UnsupportedFields
{
    /// <summary>Refused unless null (or the do-nothing value <see cref="IsHarmless"/> names).</summary>
    public static FrozenSet<string> Refused { get; } = FrozenSet.Create(
        StringComparer.Ordinal,
        "tools", "tool_choice", "functions", "function_call", "parallel_tool_calls", "response_format", "logit_bias", "best_of", "suffix", "echo",
        "audio", "modalities", "prediction", "reasoning_effort", "web_search_options");

    /// <summary>The first refused field <paramref name="extra"/> holds, as a 400 naming it; null when there is none.</summary>
    public static ProblemHttpResult? Check(Dictionary<string, JsonElement>? extra)
    {
        if (extra is null)
        {
            return null;
        }

        foreach (var (name, value) in extra)
        {
            if (Refused.Contains(name) && !IsHarmless(name, value))
            {
                return Problems.InvalidRequest($"The field '{name}' is not supported by this server.", name);
            }
        }

        return null;
    }

    /// <summary>Null, or the value that asks for what Bastion does anyway: no echo, one candidate, text only, no bias.</summary>
    private static bool IsHarmless(string name, JsonElement value) => value.ValueKind == JsonValueKind.Null || name switch
    {
        "echo" => value.ValueKind == JsonValueKind.False,
        "best_of" => value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var bestOf) && bestOf == 1,
        "logit_bias" => value.ValueKind == JsonValueKind.Object && !value.EnumerateObject().Any(),
        "modalities" => value.ValueKind == JsonValueKind.Array && value.EnumerateArray().All(m => m.ValueKind == JsonValueKind.String && m.GetString() == "text"),
        _ => false,
    };
}
