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

    /// <summary>Every character a candidate may consume or look ahead at, after its first.</summary>
    public SearchValues<char>? Alphabet { get; init; }

    /// <summary>The most characters a candidate consumes plus those it looks ahead at.</summary>
    public int MaxLength { get; init; }

    /// <summary>Accepts, shortens or rejects a candidate; null accepts every candidate whole.</summary>
    public CandidateCheck? Check { get; init; }

    /// <summary>
    /// Where, in <c>text</c> from index <c>start</c>, a match could still begin or grow once more text arrives; null
    /// takes the trailing run of <see cref="Alphabet"/>, at most <see cref="MaxLength"/> long.
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

        return text.Length - run;
    }
}
