using System.Text;

namespace Bastion.Generation;

/// <summary>
/// Renders chat messages into one prompt: each message as <c>&lt;|role|&gt;</c>, a newline, its content and a
/// newline, then <c>&lt;|assistant|&gt;</c> and a newline for the model to continue. Roles are
/// <c>system</c>, <c>user</c> and <c>assistant</c>.
/// </summary>
public static class ChatTemplate
{
    /// <summary>The roles a message may have.</summary>
    public static IReadOnlySet<string> Roles { get; } = new HashSet<string>(["system", "user", "assistant"], StringComparer.Ordinal);

    /// <summary>The prompt for <paramref name="messages"/> (role, content) in order.</summary>
    public static string Render(IEnumerable<(string Role, string Content)> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var prompt = new StringBuilder();
        foreach (var (role, content) in messages)
        {
            prompt.Append("<|").Append(role).Append("|>\n").Append(content).Append('\n');
        }

        return prompt.Append("<|assistant|>\n").ToString();
    }
}
