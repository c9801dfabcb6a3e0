namespace Bastion.Guards;

/// <summary>
/// One input check that reads the request's text: the built-in prompt-injection heuristics, and the place for a
/// classifier model later. Registered as a service; the input guard runs every one, in the mode the caller's policy
/// sets for its <see cref="Name"/>.
/// </summary>
public interface IInputClassifier
{
    /// <summary>The check's name, as policies name it (<c>injection</c>).</summary>
    string Name { get; }

    /// <summary>The rules <paramref name="text"/> matched; empty when it looks harmless. Never keeps the text.</summary>
    IReadOnlyList<string> Classify(string text);
}
