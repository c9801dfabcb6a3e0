namespace Bastion.Generation;

/// <summary>
/// Turns a growing list of completion tokens into text pieces that are safe to send: a piece never ends
/// inside a multi-byte character (the decoder shows those as U+FFFD until the character completes) nor
/// with text that could be the start of a stop sequence. Once the text contains a stop sequence it is cut
/// before it and <see cref="Stopped"/> turns true. The pieces concatenate to <see cref="Text"/>.
/// </summary>
public sealed class CompletionText(Func<IReadOnlyList<int>, string> decode, IReadOnlyList<string> stops)
{
    private readonly List<int> _pending = [];
    private string _settled = string.Empty;
    private string _text = string.Empty;
    private int _released;

    /// <summary>True once a stop sequence appeared; no more tokens should be added.</summary>
    public bool Stopped { get; private set; }

    /// <summary>The completion so far: after <see cref="Finish"/>, or once stopped, the final text.</summary>
    public string Text => Stopped ? _text : _text[.._released];

    /// <summary>Adds a token; returns the text that can now be sent (possibly empty).</summary>
    public string Add(int token)
    {
        if (Stopped)
        {
            throw new InvalidOperationException("The completion has already stopped.");
        }

        // Byte-level tokens decode independently once a prefix ends on a whole character, so only the
        // tokens since then are decoded again: each step costs the tail, not the whole completion.
        _pending.Add(token);
        var tail = decode(_pending);
        var decoded = _settled + tail;
        if (!tail.EndsWith('\uFFFD'))
        {
            _settled = decoded;
            _pending.Clear();
        }

        var stopAt = FirstStop(decoded);
        if (stopAt >= 0)
        {
            Stopped = true;
            _text = decoded[..stopAt];
            return Release(_text.Length);
        }

        _text = decoded;
        var safe = decoded.Length;
        while (safe > _released && decoded[safe - 1] == '\uFFFD')
        {
            safe--;
        }

        return Release(safe - LongestStopPrefixAtEnd(decoded.AsSpan(0, safe)));
    }

    /// <summary>The generation ended: returns what was held back.</summary>
    public string Finish() => Release(_text.Length);

    private string Release(int end)
    {
        if (end <= _released)
        {
            return string.Empty;
        }

        var piece = _text[_released..end];
        _released = end;
        return piece;
    }

    private int FirstStop(string text)
    {
        var first = -1;
        foreach (var stop in stops)
        {
            var at = text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (first < 0 || at < first))
            {
                first = at;
            }
        }

        return first;
    }

    private int LongestStopPrefixAtEnd(ReadOnlySpan<char> text)
    {
        var longest = 0;
        foreach (var stop in stops)
        {
            for (var length = Math.Min(stop.Length - 1, text.Length); length > longest; length--)
            {
                if (text.EndsWith(stop.AsSpan(0, length), StringComparison.Ordinal))
                {
                    longest = length;
                    break;
                }
            }
        }

        return longest;
    }
}
