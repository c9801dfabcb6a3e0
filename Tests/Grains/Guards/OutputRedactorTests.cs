using Bastion.Generation;
using Bastion.Guards;

namespace Bastion.Tests.Grains.Guards;

/// <summary>
/// The output guard's detectors and its streaming redactor: every expected output below is written by hand (the
/// checksums worked out on paper or taken from the issuers' published examples), and each input is also fed in every
/// two-piece split and in random multi-piece splits, which must give exactly the same output.
/// </summary>
public sealed class OutputRedactorTests
{
    // Credential-shaped inputs are put together at run time, so that no key-shaped text sits in the repository.
    private static readonly string BastionKey = string.Join('_', "bst", "0123456789abcdef01234567", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ");
    private static readonly string SignedJwt = Jwt("""{"alg":"HS256","typ":"JWT"}""", """{"sub":"1234567890"}""");
    private static readonly string UnsignedJwt = Jwt("""{"typ":"JWT"}""", """{"sub":"1"}""");

    /// <summary>Input, then the redacted output with every detector on.</summary>
    public static TheoryData<string, string> Redactions => new()
    {
        // E-mail addresses.
        { "Mail me at jane.doe@example.com.", "Mail me at [REDACTED:email]." },
        { "a.b+tag@mail.co.uk wrote", "[REDACTED:email] wrote" },
        { "user@localhost and @handle", "user@localhost and @handle" },

        // Payment cards: Luhn-valid 13 to 19 digits, grouped or not.
        { "Card 4111 1111 1111 1111 expires 12/27", "Card [REDACTED:payment-card] expires 12/27" },
        { "MC 5500-0000-0000-0004, Amex 378282246310005.", "MC [REDACTED:payment-card], Amex [REDACTED:payment-card]." },
        { "card 4111111111111111 2024", "card [REDACTED:payment-card] 2024" },
        { "Card 4111 1111 1111 1112 fails Luhn", "Card 4111 1111 1111 1112 fails Luhn" },
        { "order 4111111111111112", "order 4111111111111112" },
        { "twelve digits 411111111111", "twelve digits 411111111111" },

        // IBANs: mod 97.
        { "Pay to NL91ABNA0417164300 today", "Pay to [REDACTED:iban] today" },
        { "IBAN GB82 WEST 1234 5698 7654 32 ok", "IBAN [REDACTED:iban] ok" },
        { "DE89 3704 0044 0532 0130 00", "[REDACTED:iban]" },
        { "Pay to NL92ABNA0417164300 today", "Pay to NL92ABNA0417164300 today" },
        { "GB82 WEST 1234 5698 7654 33", "GB82 WEST 1234 5698 7654 33" },

        // National ids: Dutch BSN (11-test), Spanish DNI and NIE (letter mod 23), UK NHS number (mod 11).
        { "BSN 111222333.", "BSN [REDACTED:nl-bsn]." },
        { "BSN 111222334.", "BSN 111222334." },
        { "DNI 12345678Z, NIE X1234567L", "DNI [REDACTED:es-dni], NIE [REDACTED:es-dni]" },
        { "DNI 12345678A", "DNI 12345678A" },
        { "NHS 943 476 5919 and 9434765919", "NHS [REDACTED:uk-nhs] and [REDACTED:uk-nhs]" },
        { "NHS 943 476 5918", "NHS 943 476 5918" },

        // Phone numbers: international with +, or national formats with separators.
        { "Call +31 6 12345678 now", "Call [REDACTED:phone] now" },
        { "US +1 (555) 123-4567, UK +44 20 7946 0958", "US [REDACTED:phone], UK [REDACTED:phone]" },
        { "Ring 020 7946 0958.", "Ring [REDACTED:phone]." },
        { "(555) 123-4567 or 555-123-4567 or 06-12345678", "[REDACTED:phone] or [REDACTED:phone] or [REDACTED:phone]" },
        { "In 2024 we sold 1,000,000 units", "In 2024 we sold 1,000,000 units" },
        { "Dates 2024-01-15 and 15-01-2024, 1999-2000", "Dates 2024-01-15 and 15-01-2024, 1999-2000" },
        { "version 10.0.19045 build 12345678", "version 10.0.19045 build 12345678" },
        { "2 + 2 = 4, +5 degrees", "2 + 2 = 4, +5 degrees" },

        // Secrets.
        { $"key {BastionKey} here", "key [REDACTED:bastion-api-key] here" },
        { "bst_xyz is a prefix", "bst_xyz is a prefix" },
        { "OPENAI_API_KEY=sk-" + "proj-Ab3dEf6hIj9kLm2nOp5qRs8t", "OPENAI_API_KEY=[REDACTED:openai-api-key]" },
        { "use sk-learn-compatible-estimators here", "use sk-learn-compatible-estimators here" },
        { "aws AKIA" + "IOSFODNN7EXAMPLE", "aws [REDACTED:aws-access-key]" },
        { "AKIA1234 is too short", "AKIA1234 is too short" },
        { "token ghp_" + "abcdefghijklmnopqrstuvwxyz0123456789.", "token [REDACTED:github-token]." },
        { "slack xoxb-" + "1234567890-abcdefghij", "slack [REDACTED:slack-token]" },
        { $"Bearer {SignedJwt}.", "Bearer [REDACTED:jwt]." },
        { $"no alg: {UnsignedJwt}", $"no alg: {UnsignedJwt}" },

        // PEM private keys: the whole block; an unclosed block to the end of the text.
        { "before\n" + Armor("BEGIN", "RSA ") + "\nMIIBOgIBAAJBAK\n" + Armor("END", "RSA ") + "\nafter", "before\n[REDACTED:private-key]\nafter" },
        { "x " + Armor("BEGIN", "") + "\nMIIEvQIBADANBg\nkqhkiG9w0BAQ", "x [REDACTED:private-key]" },
        { "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----", "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----" },

        // Plain prose passes unchanged.
        { "The quick brown fox jumps over the lazy dog - twice.", "The quick brown fox jumps over the lazy dog - twice." },
    };

    /// <summary>Input, then the blocked output: the text before the first match.</summary>
    public static TheoryData<string, string> Blocks => new()
    {
        { "Mail me at jane.doe@example.com, or call +31 6 12345678.", "Mail me at " },
        { "Nothing to see here.", "Nothing to see here." },
        { "a\n" + Armor("BEGIN", "EC ") + "\nMHcCAQEE", "a\n" },
    };

    [Theory]
    [MemberData(nameof(Redactions))]
    public void Redact_WholeText_MatchesTheTable(string input, string expected) =>
        Assert.Equal(expected, Run(OutputGuardPolicy.Default, [input]));

    [Theory]
    [MemberData(nameof(Redactions))]
    public void Redact_EverySplitPoint_SameAsWhole(string input, string expected)
    {
        for (var split = 0; split <= input.Length; split++)
        {
            Assert.True(
                expected == Run(OutputGuardPolicy.Default, [input[..split], input[split..]]),
                $"split at {split}: '{input[..split]}' | '{input[split..]}'");
        }
    }

    [Theory]
    [MemberData(nameof(Redactions))]
    public void Redact_RandomMultiSplits_SameAsWhole(string input, string expected)
    {
        var random = new Random(input.Length);
        for (var trial = 0; trial < 200; trial++)
        {
            var pieces = RandomPieces(input, random);
            Assert.True(expected == Run(OutputGuardPolicy.Default, pieces), $"pieces: {string.Join(" | ", pieces)}");
        }
    }

    [Fact]
    public void Redact_AllTheTableAsOneText_EverySplitSameAsWhole()
    {
        // The unclosed private key last: it runs to the end of the text.
        var rows = Redactions.OrderBy(row => ((string)row[1]).EndsWith("[REDACTED:private-key]", StringComparison.Ordinal)).ToList();
        var input = string.Join(" ", rows.Select(row => (string)row[0]));
        var expected = string.Join(" ", rows.Select(row => (string)row[1]));
        Assert.Equal(expected, Run(OutputGuardPolicy.Default, [input]));
        for (var split = 0; split <= input.Length; split++)
        {
            Assert.True(expected == Run(OutputGuardPolicy.Default, [input[..split], input[split..]]), $"split at {split}");
        }

        var random = new Random(14);
        for (var trial = 0; trial < 100; trial++)
        {
            Assert.Equal(expected, Run(OutputGuardPolicy.Default, RandomPieces(input, random)));
        }
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void Block_EndsBeforeTheFirstMatch_ForEverySplit(string input, string expected)
    {
        var policy = OutputGuardPolicy.Default with { Mode = OutputGuardMode.Block };
        for (var split = 0; split <= input.Length; split++)
        {
            var redactor = new OutputRedactor(policy);
            var output = redactor.Push(input[..split]) + redactor.Push(input[split..]) + redactor.Finish();
            Assert.Equal(expected, output);
            Assert.Equal(expected != input, redactor.Blocked);
        }
    }

    [Fact]
    public void Push_HoldsBackOnlyTheTailAMatchCouldStillNeed()
    {
        var redactor = new OutputRedactor(OutputGuardPolicy.Default);

        // Nothing in a sentence ending with a space can still begin a match.
        Assert.Equal("The answer is simple. ", redactor.Push("The answer is simple. "));
        // A card number may still be growing: held back from its first digit, the text before it released.
        Assert.Equal("Card ", redactor.Push("Card 4111 1111"));
        Assert.Equal("[REDACTED:payment-card] ", redactor.Push(" 1111 1111 expires"));
        // The last word could still become an e-mail address.
        Assert.Equal("expires", redactor.Finish());
    }

    [Fact]
    public void Push_UnclosedPrivateKey_HeldBackUntilItsEnd()
    {
        var redactor = new OutputRedactor(OutputGuardPolicy.Default);

        Assert.Equal("Here:\n", redactor.Push("Here:\n" + Armor("BEGIN", "OPENSSH ") + "\n"));
        Assert.Equal(string.Empty, redactor.Push("b3BlbnNzaC1rZXktdjEAAAAA "));
        Assert.Equal(string.Empty, redactor.Push("more key material "));
        Assert.Equal("[REDACTED:private-key] done.", redactor.Push(Armor("END", "OPENSSH ") + " done.") + redactor.Finish());
    }

    [Fact]
    public void Summary_CountsHitsPerRule_AndReportsEachToTheCallback()
    {
        var reported = new List<(string Rule, string Action)>();
        var redactor = new OutputRedactor(OutputGuardPolicy.Default, (rule, action) => reported.Add((rule, action)));

        redactor.Push("a@example.com, b@example.org, 4111 1111 1111 1111");
        redactor.Finish();

        Assert.Equal([new GuardHit("email", 2), new GuardHit("payment-card", 1)], redactor.Summary()!);
        Assert.Equal([("email", "redact"), ("email", "redact"), ("payment-card", "redact")], reported);
    }

    [Fact]
    public void Off_PassesEverythingThrough()
    {
        var redactor = new OutputRedactor(OutputGuardPolicy.Off);

        Assert.Equal("jane@example.com 4111 1111 1111 1111", redactor.Push("jane@example.com 4111 1111 1111 1111") + redactor.Finish());
        Assert.Null(redactor.Summary());
    }

    [Fact]
    public void Options_OnlyNamedDetectors_AreInForce()
    {
        var policy = new OutputGuardOptions { Detectors = ["email"] }.ToPolicy();

        Assert.Equal("[REDACTED:email] 4111 1111 1111 1111", Run(policy, ["jane@example.com 4111 1111 1111 1111"]));
    }

    [Fact]
    public void Options_UnknownDetectorOrMode_IsAProblemNamingTheSetting()
    {
        var problems = new OutputGuardOptions { Mode = (OutputGuardMode)7, Detectors = ["email", "credit-card"] }.Problems().ToList();

        Assert.Equal(2, problems.Count);
        Assert.Contains("Bastion:Guards:Output:Mode", problems[0], StringComparison.Ordinal);
        Assert.Contains("Bastion:Guards:Output:Detectors", problems[1], StringComparison.Ordinal);
        Assert.Contains("'credit-card'", problems[1], StringComparison.Ordinal);
    }

    private static string Run(OutputGuardPolicy policy, IEnumerable<string> pieces)
    {
        var redactor = new OutputRedactor(policy);
        return string.Concat(pieces.Select(redactor.Push)) + redactor.Finish();
    }

    private static List<string> RandomPieces(string input, Random random)
    {
        var pieces = new List<string>();
        for (var at = 0; at < input.Length;)
        {
            var length = Math.Min(input.Length - at, random.Next(1, 8));
            pieces.Add(input.Substring(at, length));
            at += length;
        }

        return pieces;
    }

    /// <summary>A PEM armour line of a private key: <paramref name="edge"/> is BEGIN or END, <paramref name="kind"/> "RSA ", "EC ", "".</summary>
    private static string Armor(string edge, string kind) => $"-----{edge} {kind}PRIVATE" + " KEY-----";

    /// <summary>An HS256-shaped token: base64url header and payload, and a made-up signature.</summary>
    private static string Jwt(string header, string payload) => string.Join('.', Base64Url(header), Base64Url(payload), Base64Url("signature"));

    private static string Base64Url(string text) =>
        Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(text)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
