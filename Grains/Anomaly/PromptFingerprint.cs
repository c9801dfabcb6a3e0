using System.IO.Hashing;
using System.Numerics;
using System.Text;

namespace Bastion.Anomaly;

/// <summary>
/// What the detector keeps of a prompt: hashes, never text. <see cref="SimHash"/> is a 64-bit SimHash of the
/// normalized text's character 4-grams (close prompts have close hashes); <see cref="Stem"/> hashes the text without
/// its last word and with every run of digits made one placeholder, so "account 0001" and "account 0002" share it.
/// </summary>
/// <param name="SimHash">The SimHash of the normalized text.</param>
/// <param name="Exact">A hash of the normalized text.</param>
/// <param name="Stem">A hash of the stem.</param>
/// <param name="Length">The normalized text's length.</param>
/// <param name="StemLength">The stem's length.</param>
public readonly record struct PromptFingerprint(ulong SimHash, ulong Exact, ulong Stem, int Length, int StemLength)
{
    private const int Shingle = 4;

    /// <summary>The fingerprint of <paramref name="text"/>.</summary>
    public static PromptFingerprint Of(string text)
    {
        var normalized = Normalize(text);
        var stem = StemOf(normalized);
        return new(SimHashOf(normalized), Hash(normalized), Hash(stem), normalized.Length, stem.Length);
    }

    /// <summary>How many bits two SimHashes differ in.</summary>
    public static int Distance(ulong a, ulong b) => BitOperations.PopCount(a ^ b);

    // Case and spacing say nothing about intent; folding them keeps trivial variations together.
    private static string Normalize(string text)
    {
        var builder = new StringBuilder(text.Length);
        var space = false;
        foreach (var c in text.Trim())
        {
            if (char.IsWhiteSpace(c))
            {
                space = true;
                continue;
            }

            if (space)
            {
                builder.Append(' ');
                space = false;
            }

            builder.Append(char.ToLowerInvariant(c));
        }

        return builder.ToString();
    }

    private static string StemOf(string normalized)
    {
        var lastSpace = normalized.LastIndexOf(' ');
        if (lastSpace < 0)
        {
            return "";
        }

        var builder = new StringBuilder(lastSpace);
        for (var i = 0; i < lastSpace; i++)
        {
            if (char.IsAsciiDigit(normalized[i]))
            {
                if (i == 0 || !char.IsAsciiDigit(normalized[i - 1]))
                {
                    builder.Append('#');
                }

                continue;
            }

            builder.Append(normalized[i]);
        }

        return builder.ToString();
    }

    private static ulong SimHashOf(string normalized)
    {
        Span<int> weights = stackalloc int[64];
        var chars = normalized.AsSpan();
        var shingles = Math.Max(1, chars.Length - Shingle + 1);
        for (var i = 0; i < shingles; i++)
        {
            var feature = XxHash64.HashToUInt64(System.Runtime.InteropServices.MemoryMarshal.AsBytes(chars.Slice(i, Math.Min(Shingle, chars.Length - i))));
            for (var bit = 0; bit < 64; bit++)
            {
                weights[bit] += ((feature >> bit) & 1) == 1 ? 1 : -1;
            }
        }

        var hash = 0UL;
        for (var bit = 0; bit < 64; bit++)
        {
            if (weights[bit] > 0)
            {
                hash |= 1UL << bit;
            }
        }

        return hash;
    }

    private static ulong Hash(string text) => XxHash64.HashToUInt64(System.Runtime.InteropServices.MemoryMarshal.AsBytes(text.AsSpan()));
}
