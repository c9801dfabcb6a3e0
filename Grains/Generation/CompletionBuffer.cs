namespace Bastion.Generation;

/// <summary>
/// The bounded buffer between a generation's run loop and its reader. The writer waits while more than
/// <c>capacity</c> pieces are unacknowledged (a reader acknowledges every piece before the index it reads
/// from), so a slow reader holds back decoding instead of piling up text. Thread-safe: the run loop writes
/// from the thread pool while grain calls read.
/// </summary>
public sealed class CompletionBuffer(int capacity)
{
    private readonly Lock _gate = new();
    private readonly List<string> _pieces = [];

    // Parallel to _pieces; each stays null until a piece of a later choice, or one with log probabilities, arrives.
    private List<int>? _choices;
    private List<TokenLogprob[]?>? _logprobs;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _acknowledged;
    private bool _unbounded;
    private GenerationResult? _result;
    private Exception? _failure;

    /// <summary>Appends a piece, first waiting while the buffer is full.</summary>
    public async ValueTask WriteAsync(string piece, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (_unbounded || _pieces.Count - _acknowledged < capacity)
                {
                    _pieces.Add(piece);
                    Signal();
                    return;
                }

                changed = _changed.Task;
            }

            await changed.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Appends a piece without waiting, for the batching engine: it checks <see cref="IsFull"/> after each
    /// step and sets a full sequence aside, so the bound is exceeded by at most one step's pieces.
    /// </summary>
    public void Write(string piece) => Write(piece, choice: 0, logprobs: null);

    /// <summary>
    /// <see cref="Write(string)"/> for the piece of one choice of several, and the log probabilities of the tokens
    /// that wrote it (when the request asked for them).
    /// </summary>
    public void Write(string piece, int choice, TokenLogprob[]? logprobs)
    {
        lock (_gate)
        {
            if (choice != 0 && _choices is null)
            {
                _choices = [.. Enumerable.Repeat(0, _pieces.Count)];
            }

            if (logprobs is not null && _logprobs is null)
            {
                _logprobs = [.. Enumerable.Repeat<TokenLogprob[]?>(null, _pieces.Count)];
            }

            _pieces.Add(piece);
            _choices?.Add(choice);
            _logprobs?.Add(logprobs);
            Signal();
        }
    }

    /// <summary>True while <c>capacity</c> or more pieces are unacknowledged (never once the bound is lifted).</summary>
    public bool IsFull
    {
        get
        {
            lock (_gate)
            {
                return !_unbounded && _pieces.Count - _acknowledged >= capacity;
            }
        }
    }

    /// <summary>Completes at the buffer's next change (a read acknowledged pieces, the bound was lifted, ...).</summary>
    public Task Changed
    {
        get
        {
            lock (_gate)
            {
                return _changed.Task;
            }
        }
    }

    /// <summary>Lifts the bound: for a caller that takes the whole result at once and reads no pieces.</summary>
    public void RemoveBound()
    {
        lock (_gate)
        {
            _unbounded = true;
            Signal();
        }
    }

    /// <summary>The generation ended with <paramref name="result"/>.</summary>
    public void Complete(GenerationResult result)
    {
        lock (_gate)
        {
            _result = result;
            Signal();
        }
    }

    /// <summary>The generation failed; readers get <paramref name="failure"/> once they have read every piece.</summary>
    public void Fail(Exception failure)
    {
        lock (_gate)
        {
            _failure = failure;
            Signal();
        }
    }

    /// <summary>Waits for pieces from <paramref name="fromIndex"/> on, or the end, and returns up to <paramref name="max"/> of them.</summary>
    public async Task<GenerationChunk> ReadAsync(int fromIndex, int max, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fromIndex);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(max);
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (fromIndex > _pieces.Count)
                {
                    throw new ArgumentOutOfRangeException(nameof(fromIndex), fromIndex, "Pieces can only be read in order.");
                }

                if (fromIndex > _acknowledged)
                {
                    _acknowledged = fromIndex;
                    Signal();
                }

                var available = _pieces.Count - fromIndex;
                if (available > 0)
                {
                    var count = Math.Min(available, max);
                    var pieces = _pieces.GetRange(fromIndex, count).ToArray();
                    return new GenerationChunk(
                        pieces, count == available ? _result : null, _choices?.GetRange(fromIndex, count).ToArray(), _logprobs?.GetRange(fromIndex, count).ToArray());
                }

                if (_failure is GenerationRejectedException rejected)
                {
                    // Written for the caller (for example: the worker stopped, retry), so it travels as it is.
                    throw new GenerationRejectedException(rejected.Code, rejected.Message);
                }

                if (_failure is not null)
                {
                    throw new InvalidOperationException("The generation failed.");
                }

                if (_result is not null)
                {
                    return new GenerationChunk([], _result);
                }

                changed = _changed.Task;
            }

            await changed.WaitAsync(cancellationToken);
        }
    }

    private void Signal()
    {
        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }
}
