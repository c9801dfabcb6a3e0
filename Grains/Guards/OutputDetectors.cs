using System.Buffers;
using System.Buffers.Text;
using System.Text.RegularExpressions;

namespace Bastion.Guards;

/// <summary>
/// The output guard's detectors (docs/guards.md, "Output guard"), in priority order: where two matches start at the
/// same place and are as long, the earlier detector names the hit. Numbers are only taken where a checksum or a
/// shape that plain numbers, years and dates do not have says they are what they look like.
/// </summary>
public static partial class OutputDetectors
{
    public const string Email = "email";
    public const string Phone = "phone";
    public const string PaymentCard = "payment-card";
    public const string Iban = "iban";
    public const string DutchBsn = "nl-bsn";
    public const string SpanishDni = "es-dni";
    public const string UkNhsNumber = "uk-nhs";
    public const string BastionApiKey = "bastion-api-key";
    public const string OpenAiApiKey = "openai-api-key";
    public const string AwsAccessKey = "aws-access-key";
    public const string GitHubToken = "github-token";
    public const string SlackToken = "slack-token";
    public const string Jwt = "jwt";
    public const string PrivateKey = "private-key";

    private const string PemHeaderStart = "-----BEGIN ";

    /// <summary>The longest PEM header the expressions accept: "-----BEGIN ", 40 label characters, "PRIVATE KEY-----".</summary>
    private const int PemHeaderMax = 11 + 40 + 16;

    private static readonly SearchValues<string> Digits = SearchValues.Create(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"], StringComparison.Ordinal);
    private static readonly SearchValues<char> DigitCharacters = SearchValues.Create("0123456789");
    private static readonly SearchValues<char> TokenCharacters = SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");
    private static readonly SearchValues<char> PemLabelCharacters = SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -");

    /// <summary>Every detector, in priority order.</summary>
    public static IReadOnlyList<OutputDetector> All { get; } =
    [
        Detector(PrivateKey, PemBlock(), ["-----BEGIN "], hold: HoldPem),
        Detector(BastionApiKey, BastionKeyPattern(), ["bst_"], TokenCharacters, 4 + 24 + 1 + 43 + 1),
        Detector(OpenAiApiKey, OpenAiKeyPattern(), ["sk-"], TokenCharacters, 3 + 8 + 200 + 1, MixedCase(3)),
        Detector(AwsAccessKey, AwsKeyPattern(), ["AKIA", "ASIA"], TokenCharacters, 20 + 1),
        Detector(GitHubToken, GitHubPattern(), ["gh", "github_pat_"], TokenCharacters, 11 + 255 + 1),
        Detector(SlackToken, SlackPattern(), ["xox"], TokenCharacters, 5 + 250 + 1),
        Detector(Jwt, JwtPattern(), ["eyJ"], SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-."), 1005 + 4004 + 1001 + 1, JwtHeaderNamesAlgorithm),
        Detector(Email, EmailPattern(), ["@"], SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-@"), 64 + 1 + (9 * 64) + 25 + 1,
            starts: SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")),
        Detector(PaymentCard, CardPattern(), Digits, SearchValues.Create("0123456789 -"), 19 + 18 + 1, LongestLuhnValid, starts: DigitCharacters),
        Detector(Iban, IbanPattern(), Digits, SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "), 4 + (8 * 5) + 1,
            candidate => OutputChecksums.IsIbanValid(WithoutSeparators(candidate)) ? candidate.Length : 0, starts: SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZ")),
        Detector(SpanishDni, DniPattern(), Digits, SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), 9 + 1,
            candidate => OutputChecksums.IsDniOrNieValid(candidate) ? candidate.Length : 0, starts: SearchValues.Create("0123456789XYZ")),
        Detector(UkNhsNumber, NhsPattern(), Digits, SearchValues.Create("0123456789 -.,"), 12 + 2,
            candidate => OutputChecksums.IsNhsNumberValid(WithoutSeparators(candidate)) ? candidate.Length : 0, starts: DigitCharacters),
        Detector(DutchBsn, BsnPattern(), Digits, SearchValues.Create("0123456789.,"), 9 + 2,
            candidate => OutputChecksums.IsBsnValid(candidate) ? candidate.Length : 0, starts: DigitCharacters),
        Detector(Phone, PhonePattern(), Digits, SearchValues.Create("0123456789 .()-+"), 48, PhoneDigitCount, starts: SearchValues.Create("0123456789+(")),
    ];

    /// <summary>The detectors named by <paramref name="rules"/>, in priority order; every name must be known.</summary>
    public static IReadOnlyList<OutputDetector> Named(IEnumerable<string> rules)
    {
        var wanted = rules.ToHashSet(StringComparer.Ordinal);
        return [.. All.Where(d => wanted.Contains(d.Rule))];
    }

    private static OutputDetector Detector(
        string rule, Regex pattern, string[] anchors, SearchValues<char>? alphabet = null, int maxLength = 0, CandidateCheck? check = null,
        Func<string, int, int>? hold = null, SearchValues<char>? starts = null) =>
        Detector(rule, pattern, SearchValues.Create(anchors, StringComparison.Ordinal), alphabet, maxLength, check, hold, starts ?? SearchValues.Create([.. anchors.Select(a => a[0]).Distinct()]));

    private static OutputDetector Detector(
        string rule, Regex pattern, SearchValues<string> anchors, SearchValues<char>? alphabet = null, int maxLength = 0, CandidateCheck? check = null,
        Func<string, int, int>? hold = null, SearchValues<char>? starts = null) =>
        new() { Rule = rule, Pattern = pattern, Anchors = anchors, Alphabet = alphabet, MaxLength = maxLength, Check = check, Hold = hold, Starts = starts };

    /// <summary>
    /// A card number: the longest prefix, ending at a digit group's end, with 13 to 19 digits that passes Luhn; so a
    /// card followed by another number still counts, and a number that fails Luhn does not.
    /// </summary>
    private static int LongestLuhnValid(ReadOnlySpan<char> candidate)
    {
        for (var end = candidate.Length; end > 0; end--)
        {
            if (end < candidate.Length && char.IsAsciiDigit(candidate[end]))
            {
                continue;
            }

            if (char.IsAsciiDigit(candidate[end - 1]) && OutputChecksums.IsLuhnValid(WithoutSeparators(candidate[..end])))
            {
                return end;
            }
        }

        return 0;
    }

    /// <summary>International numbers (with +) have 8 to 15 digits (E.164); national ones 10 or 11.</summary>
    private static int PhoneDigitCount(ReadOnlySpan<char> candidate)
    {
        var digits = 0;
        foreach (var c in candidate)
        {
            digits += char.IsAsciiDigit(c) ? 1 : 0;
        }

        return (candidate[0] == '+' ? digits is >= 8 and <= 15 : digits is 10 or 11) ? candidate.Length : 0;
    }

    /// <summary>Random keys mix upper case, lower case and digits after their prefix; words joined by dashes (sk-learn-…) do not.</summary>
    private static CandidateCheck MixedCase(int prefix) => candidate =>
    {
        var secret = candidate[prefix..];
        return secret.IndexOfAnyInRange('A', 'Z') >= 0 && secret.IndexOfAnyInRange('a', 'z') >= 0 && secret.IndexOfAnyInRange('0', '9') >= 0 ? candidate.Length : 0;
    };

    /// <summary>A JWT's header is base64url JSON naming its algorithm.</summary>
    private static int JwtHeaderNamesAlgorithm(ReadOnlySpan<char> candidate)
    {
        var header = candidate[..candidate.IndexOf('.')];
        Span<byte> json = stackalloc byte[Base64Url.GetMaxDecodedLength(header.Length)];
        return Base64Url.TryDecodeFromChars(header, json, out var written) && json[..written].IndexOf("\"alg\""u8) >= 0 ? candidate.Length : 0;
    }

    private static string WithoutSeparators(ReadOnlySpan<char> text)
    {
        Span<char> kept = stackalloc char[text.Length];
        var length = 0;
        foreach (var c in text)
        {
            if (c is not (' ' or '-' or '.'))
            {
                kept[length++] = c;
            }
        }

        return new string(kept[..length]);
    }

    /// <summary>
    /// An unclosed PEM block may still grow up to the end of the stream, so everything from its header is held back;
    /// so is a tail that could still become a header.
    /// </summary>
    private static int HoldPem(string text, int start)
    {
        for (var header = PemHeader().Match(text, start); header.Success;)
        {
            var footer = PemFooter().Match(text, header.Index + header.Length);
            if (!footer.Success)
            {
                return header.Index;
            }

            header = PemHeader().Match(text, footer.Index + footer.Length);
        }

        for (var at = Math.Max(start, text.Length - PemHeaderMax); at < text.Length; at++)
        {
            var tail = text.AsSpan(at);
            var couldBeHeader = tail.Length <= PemHeaderStart.Length
                ? PemHeaderStart.AsSpan().StartsWith(tail, StringComparison.Ordinal)
                : tail.StartsWith(PemHeaderStart, StringComparison.Ordinal) && tail[PemHeaderStart.Length..].IndexOfAnyExcept(PemLabelCharacters) < 0;
            if (couldBeHeader)
            {
                return at;
            }
        }

        return text.Length;
    }

    [GeneratedRegex(@"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----(?:[\s\S]*?-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|[\s\S]*\z)", RegexOptions.CultureInvariant)]
    private static partial Regex PemBlock();

    [GeneratedRegex(@"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----", RegexOptions.CultureInvariant)]
    private static partial Regex PemHeader();

    [GeneratedRegex(@"-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----", RegexOptions.CultureInvariant)]
    private static partial Regex PemFooter();

    // Bastion's own keys (Silo/Security/ApiKeys.cs): bst_ + 24 hex digits of key id + _ + 43 base64url characters.
    [GeneratedRegex(@"(?<![A-Za-z0-9_-])bst_[0-9a-f]{24}_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])", RegexOptions.CultureInvariant)]
    private static partial Regex BastionKeyPattern();

    [GeneratedRegex(@"(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,200}(?![A-Za-z0-9_-])", RegexOptions.CultureInvariant)]
    private static partial Regex OpenAiKeyPattern();

    [GeneratedRegex(@"(?<![A-Za-z0-9_-])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9_-])", RegexOptions.CultureInvariant)]
    private static partial Regex AwsKeyPattern();

    [GeneratedRegex(@"(?<![A-Za-z0-9_-])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_-])", RegexOptions.CultureInvariant)]
    private static partial Regex GitHubPattern();

    [GeneratedRegex(@"(?<![A-Za-z0-9_-])xox[abprs]-[A-Za-z0-9-]{10,250}(?![A-Za-z0-9_-])", RegexOptions.CultureInvariant)]
    private static partial Regex SlackPattern();

    [GeneratedRegex(@"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{2,1000}\.eyJ[A-Za-z0-9_-]{1,4000}\.[A-Za-z0-9_-]{0,1000}(?![A-Za-z0-9_-]|\.[A-Za-z0-9_-])", RegexOptions.CultureInvariant)]
    private static partial Regex JwtPattern();

    [GeneratedRegex(@"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}(?![A-Za-z0-9-]|\.[A-Za-z0-9])", RegexOptions.CultureInvariant)]
    private static partial Regex EmailPattern();

    [GeneratedRegex(@"(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9])", RegexOptions.CultureInvariant)]
    private static partial Regex CardPattern();

    [GeneratedRegex(@"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])", RegexOptions.CultureInvariant)]
    private static partial Regex IbanPattern();

    [GeneratedRegex(@"(?<![A-Za-z0-9])[0-9XYZ][0-9]{7}[A-Z](?![A-Za-z0-9])", RegexOptions.CultureInvariant)]
    private static partial Regex DniPattern();

    [GeneratedRegex(@"(?<![A-Za-z0-9]|[0-9][.,])[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}(?![A-Za-z0-9]|[.,][0-9])", RegexOptions.CultureInvariant)]
    private static partial Regex NhsPattern();

    [GeneratedRegex(@"(?<![A-Za-z0-9]|[0-9][.,])[0-9]{9}(?![A-Za-z0-9]|[.,][0-9])", RegexOptions.CultureInvariant)]
    private static partial Regex BsnPattern();

    // International: + and 8 to 15 digits (E.164) with spaces, dots, dashes or brackets. National: (555) 123-4567,
    // 555-123-4567, or a trunk 0 and groups (020 7946 0958, 06-12345678) with 10 or 11 digits; never a bare digit run.
    [GeneratedRegex(
        @"(?<![A-Za-z0-9_+])(?:\+[1-9][0-9 ().-]{6,22}[0-9]|\([0-9]{3}\) ?[0-9]{3}[-. ][0-9]{4}|[0-9]{3}[-.][0-9]{3}[-.][0-9]{4}|0[0-9]{1,4}(?:[ -][0-9]{2,8}){1,4})(?![A-Za-z0-9_]|[-.][0-9])",
        RegexOptions.CultureInvariant)]
    private static partial Regex PhonePattern();
}
