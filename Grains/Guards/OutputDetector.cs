using System.Buffers;
using System.Text.RegularExpressions;

namespace Bastion.Guards;

/// <summary>Decides whether a regular-expression candidate is the real thing: the length accepted from its start, 0 for none.</summary>
public delegate int CandidateCheck(ReadOnlySpan<char> candidate);

/// <summary>
/// One kind of sensitive text the output guard finds. A match depends only on its own characters and on at most
/// <see cref="OutputRedactor.ContextLength"/> characters around it, which is what lets the redactor find the same
/// matches in a stream of pieces as in the whole text.
/// </summary>
public sealed class OutputDetector
{
    /// <summary>The rule's name in metrics, audit records, configuration and the replacement text.</summary>
    public required string Rule { get; init; }

    /// <summary>The candidates. Bounded repetitions only (except through <see cref="HoldFrom"/>), lookarounds of a few characters.</summary>
    public required Regex Pattern { get; init; }

    /// <summary>A candidate can only be found where one of these strings occurs: a cheap test before the expression runs.</summary>
    public required SearchValues<string> Anchors { get; init; }

    /// <summary>
    /// Every character a candidate may consume, and those a lookahead must see before it looks further: so a
    /// candidate whose outcome more text could change lies within the trailing run of these characters.
    /// </summary>
    public SearchValues<char>? Alphabet { get; init; }

    /// <summary>The characters a candidate can begin with; null for any of <see cref="Alphabet"/>.</summary>
    public SearchValues<char>? Starts { get; init; }

    /// <summary>The most characters a candidate consumes plus those it looks ahead at.</summary>
    public int MaxLength { get; init; }

    /// <summary>Accepts, shortens or rejects a candidate; null accepts every candidate whole.</summary>
    public CandidateCheck? Check { get; init; }

    /// <summary>
    /// Where, in <c>text</c> from index <c>start</c>, a match could still begin or grow once more text arrives; null
    /// takes the trailing run of <see cref="Alphabet"/>, at most <see cref="MaxLength"/> long, from its first character
    /// in <see cref="Starts"/>.
    /// </summary>
    public Func<string, int, int>? Hold { get; init; }

    /// <summary>The earliest index of <paramref name="text"/> (from <paramref name="start"/>) that a match may still need.</summary>
    public int HoldFrom(string text, int start)
    {
        if (Hold is { } hold)
        {
            return hold(text, start);
        }

        var limit = Math.Min(MaxLength, text.Length - start);
        var run = 0;
        while (run < limit && Alphabet!.Contains(text[text.Length - 1 - run]))
        {
            run++;
        }

        // Only from a character that can begin a match: a trailing space or full stop waits for nothing.
        var from = text.Length - run;
        var first = text.AsSpan(from).IndexOfAny(Starts ?? Alphabet!);
        return first < 0 ? text.Length : from + first;
    }
}
