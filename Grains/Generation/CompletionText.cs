namespace Bastion.Generation;

/// <summary>
/// Turns a growing list of completion tokens into text pieces that are safe to send: a piece never ends
/// inside a multi-byte character (the decoder shows those as U+FFFD until the character completes) nor
/// with text that could be the start of a stop sequence. Once the text contains a stop sequence it is cut
/// before it and <see cref="Stopped"/> turns true. The pieces concatenate to <see cref="Text"/>.
/// It also knows which token wrote which text (<see cref="TakeTokenTexts"/>), so that per-token log probabilities
/// travel with exactly the text that was sent.
/// </summary>
public sealed class CompletionText(Func<IReadOnlyList<int>, string> decode, IReadOnlyList<string> stops)
{
    private readonly List<int> _pending = [];
    private string _settled = string.Empty;
    private string _text = string.Empty;
    private int _released;

    // Each token's [Start, End) in the decoded text, known once its character is whole; the tokens before
    // _handedOut already went out through TakeTokenTexts.
    private readonly List<(int Start, int End)> _spans = [];
    private int _handedOut;

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
            SettlePending(decoded.Length);
            _settled = decoded;
        }

        var stopAt = FirstStop(decoded);
        if (stopAt >= 0)
        {
            SettlePending(decoded.Length);
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
    public string Finish()
    {
        SettlePending(_text.Length);
        return Release(_text.Length);
    }

    /// <summary>
    /// The text each token wrote into what has been released since the last call, one entry per token, in order. A
    /// token that only starts a multi-byte character wrote nothing (the character is the completing token's); once a
    /// stop sequence cut the text, a token it cuts through keeps the part before the cut, and the tokens after it are
    /// dropped. So the entries handed out concatenate to the text handed out.
    /// </summary>
    public IReadOnlyList<string> TakeTokenTexts()
    {
        var texts = new List<string>();
        for (; _handedOut < _spans.Count; _handedOut++)
        {
            var (start, end) = _spans[_handedOut];
            if (end <= _released)
            {
                texts.Add(_text[start..end]);
            }
            else if (Stopped && start < _text.Length)
            {
                texts.Add(_text[start.._text.Length]);
            }
            else if (!Stopped)
            {
                break;
            }
        }

        return texts;
    }

    /// <summary>Gives the pending tokens their spans: the whole new text to the last, none to those before it.</summary>
    private void SettlePending(int end)
    {
        var start = _settled.Length;
        for (var i = 0; i < _pending.Count; i++)
        {
            _spans.Add(i == _pending.Count - 1 ? (start, end) : (start, start));
        }

        _pending.Clear();
    }

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
