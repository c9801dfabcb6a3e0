namespace Bastion.Generation;

/// <summary>
/// A queue served round-robin across owners: each dequeue takes the oldest item of the next owner in turn,
/// so one owner with many waiting items cannot starve the others. Not thread-safe.
/// </summary>
public sealed class FairQueue<T>
{
    private readonly Dictionary<string, Queue<T>> _byOwner = new(StringComparer.Ordinal);
    private readonly LinkedList<string> _turns = new();

    public int Count { get; private set; }

    public void Enqueue(string owner, T item)
    {
        if (!_byOwner.TryGetValue(owner, out var items))
        {
            items = new Queue<T>();
            _byOwner[owner] = items;
            _turns.AddLast(owner);
        }

        items.Enqueue(item);
        Count++;
    }

    public bool TryDequeue(out T item)
    {
        if (_turns.First is not { } turn)
        {
            item = default!;
            return false;
        }

        var owner = turn.Value;
        var items = _byOwner[owner];
        item = items.Dequeue();
        Count--;
        _turns.RemoveFirst();
        if (items.Count > 0)
        {
            _turns.AddLast(owner);
        }
        else
        {
            _byOwner.Remove(owner);
        }

        return true;
    }

    /// <summary>Removes and returns every item that matches <paramref name="predicate"/>, keeping the others' order.</summary>
    public List<T> RemoveAll(Func<T, bool> predicate)
    {
        var removed = new List<T>();
        foreach (var owner in _turns.ToList())
        {
            var items = _byOwner[owner];
            var kept = new Queue<T>();
            foreach (var item in items)
            {
                if (predicate(item))
                {
                    removed.Add(item);
                }
                else
                {
                    kept.Enqueue(item);
                }
            }

            if (kept.Count == 0)
            {
                _byOwner.Remove(owner);
                _turns.Remove(owner);
            }
            else
            {
                _byOwner[owner] = kept;
            }
        }

        Count -= removed.Count;
        return removed;
    }
}
