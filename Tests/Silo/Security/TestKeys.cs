using System.Security.Cryptography;
using Bastion.Security;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Tests.Silo.Security;

/// <summary>Fixed keys for token tests, made once because RSA generation is slow on two cores.</summary>
internal static class TestKeys
{
    public const string EcKid = "es-current";
    public const string RsaKid = "rs-1";

    public static ECDsa Ec { get; } = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public static RSA Rsa { get; } = RSA.Create(2048);

    /// <summary>A provider that signs with the EC key (or the RSA key) and validates with both.</summary>
    public static IKeyProvider Provider(bool signWithRsa = false)
    {
        SecurityKey ec = new ECDsaSecurityKey(Ec) { KeyId = EcKid };
        SecurityKey rsa = new RsaSecurityKey(Rsa) { KeyId = RsaKid };
        var signing = signWithRsa
            ? new SigningCredentials(rsa, SecurityAlgorithms.RsaSha256)
            : new SigningCredentials(ec, SecurityAlgorithms.EcdsaSha256);
        return new StaticKeyProvider(signing, [ec, rsa]);
    }

    private sealed class StaticKeyProvider(SigningCredentials signing, IReadOnlyList<SecurityKey> validation) : PartialKeyProvider
    {
        // External-token tests map (iss, sub) to a pseudonym; any fixed key serves.
        public override ReadOnlySpan<byte> PseudonymKey => "bastion-tests-pseudonym-key-32b!"u8;

        public override SigningCredentials SigningCredentials => signing;

        public override IReadOnlyList<SecurityKey> ValidationKeys => validation;
    }
}
