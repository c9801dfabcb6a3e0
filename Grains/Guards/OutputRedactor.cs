using System.Text;
using Bastion.Generation;

namespace Bastion.Guards;

/// <summary>
/// Guards a completion as it streams: <see cref="Push"/> takes the next piece of text and returns what is now safe to
/// send, <see cref="Finish"/> the rest. Whatever the pieces, the output is the same as for the whole text at once: a
/// match is acted on only once no later text can change it, and only the tail that a match could still begin in or
/// grow into is held back (for each detector the trailing run of characters a match can hold, at most as long as
/// the longest match; from the header of a PEM private-key block not yet closed). Matches are found per detector,
/// then taken by position, the longer first; each becomes <c>[REDACTED:rule]</c> (redact) or ends the text before
/// it (block). Not thread-safe: one per sequence.
/// </summary>
public sealed class OutputRedactor(OutputGuardPolicy policy, Action<string, string>? onHit = null)
{
    /// <summary>How much already-released text the expressions may look back at (their lookbehinds read at most 2).</summary>
    public const int ContextLength = 8;

    /// <summary>The metric action of a redaction.</summary>
    public const string RedactAction = "redact";

    /// <summary>The metric action of a block.</summary>
    public const string BlockAction = "block";

    private readonly Dictionary<string, int> _hits = new(StringComparer.Ordinal);
    private readonly List<Match> _matches = [];
    private readonly List<GuardedSpan> _spans = [];
    private string _context = string.Empty;
    private string _pending = string.Empty;
    private long _consumed;

    /// <summary>True once a match ended the text (block mode); nothing more is released.</summary>
    public bool Blocked { get; private set; }

    /// <summary>How much of the pushed text (in UTF-16 code units) the released output covers: everything but the held tail.</summary>
    public long Consumed => policy.IsActive ? _consumed : long.MaxValue;

    /// <summary>The stretches of the pushed text that were redacted (or, in block mode, where it was cut), in order.</summary>
    public IReadOnlyList<GuardedSpan> Spans => _spans;

    /// <summary>The text a replacement stands in for, e.g. <c>[REDACTED:email]</c>.</summary>
    public static string Replacement(string rule) => $"[REDACTED:{rule}]";

    /// <summary>Adds the next piece of the completion; returns the text that is now safe to send (possibly empty).</summary>
    public string Push(string piece)
    {
        if (!policy.IsActive)
        {
            return piece;
        }

        if (Blocked || piece.Length == 0)
        {
            return string.Empty;
        }

        _pending = string.Concat(_pending, piece);
        return Release(final: false);
    }

    /// <summary>The completion ended: returns everything still held back, guarded as the end of the text.</summary>
    public string Finish() => !policy.IsActive || Blocked || _pending.Length == 0 ? string.Empty : Release(final: true);

    /// <summary>The hits per rule, in rule order; null when there were none.</summary>
    public GuardHit[]? Summary() =>
        _hits.Count == 0 ? null : [.. _hits.OrderBy(h => h.Key, StringComparer.Ordinal).Select(h => new GuardHit(h.Key, h.Value))];

    private string Release(bool final)
    {
        var text = string.Concat(_context, _pending);
        var start = _context.Length;
        Find(text, start);

        var end = text.Length;
        if (!final)
        {
            foreach (var detector in policy.Detectors)
            {
                end = Math.Min(end, detector.HoldFrom(text, start));
            }

            // A match that reaches into the held tail is not settled yet: it waits, and everything from its start with it.
            foreach (var match in _matches)
            {
                if (match.Start < end && match.End > end)
                {
                    end = match.Start;
                    break;
                }
            }
        }

        var output = new StringBuilder(end - start);
        var at = start;
        foreach (var match in _matches)
        {
            if (match.Start >= end)
            {
                break;
            }

            output.Append(text, at, match.Start - at);
            var block = policy.Mode == OutputGuardMode.Block;
            _spans.Add(new GuardedSpan(_consumed + match.Start - start, _consumed + match.End - start, block ? string.Empty : Replacement(match.Rule)));
            if (block)
            {
                Hit(match.Rule, BlockAction);
                Blocked = true;
                _pending = string.Empty;
                _consumed += match.Start - start;
                return output.ToString();
            }

            Hit(match.Rule, RedactAction);
            output.Append(Replacement(match.Rule));
            at = match.End;
        }

        output.Append(text, at, end - at);
        _consumed += end - start;
        _context = text[Math.Max(0, end - ContextLength)..end];
        _pending = text[end..];
        return output.ToString();
    }

    /// <summary>
    /// Fills <see cref="_matches"/> with the matches from <paramref name="start"/>, by position and without overlaps.
    /// A rejected candidate moves the search on by one character, an accepted one past itself: either way the result
    /// at a position depends only on the text around it, not on where the search began.
    /// </summary>
    private void Find(string text, int start)
    {
        _matches.Clear();
        var span = text.AsSpan(start);
        for (var index = 0; index < policy.Detectors.Count; index++)
        {
            var detector = policy.Detectors[index];
            if (span.IndexOfAny(detector.Anchors) < 0)
            {
                continue;
            }

            for (var at = start; at < text.Length;)
            {
                var candidate = detector.Pattern.Match(text, at);
                if (!candidate.Success)
                {
                    break;
                }

                var length = detector.Check is { } check ? check(candidate.ValueSpan) : candidate.Length;
                if (length > 0)
                {
                    _matches.Add(new Match(candidate.Index, candidate.Index + length, index, detector.Rule));
                    at = candidate.Index + length;
                }
                else
                {
                    at = candidate.Index + 1;
                }
            }
        }

        if (_matches.Count < 2)
        {
            return;
        }

        _matches.Sort(static (a, b) => a.Start != b.Start ? a.Start.CompareTo(b.Start) : a.End != b.End ? b.End.CompareTo(a.End) : a.Priority.CompareTo(b.Priority));
        var kept = 0;
        var covered = 0;
        for (var i = 0; i < _matches.Count; i++)
        {
            var match = _matches[i];
            if (match.Start >= covered)
            {
                _matches[kept++] = match;
                covered = match.End;
            }
        }

        _matches.RemoveRange(kept, _matches.Count - kept);
    }

    private void Hit(string rule, string action)
    {
        _hits[rule] = _hits.GetValueOrDefault(rule) + 1;
        onHit?.Invoke(rule, action);
    }

    private readonly record struct Match(int Start, int End, int Priority, string Rule);
}

/// <summary>A stretch of guarded text, in code units of the text pushed, and what the output has in its place.</summary>
/// <param name="Start">Where it begins.</param>
/// <param name="End">Where it ends (exclusive).</param>
/// <param name="Replacement"><c>[REDACTED:rule]</c>, or empty where block mode cut the text.</param>
public readonly record struct GuardedSpan(long Start, long End, string Replacement);
