using Bastion.Security;
using Microsoft.IdentityModel.Tokens;

namespace Bastion.Tests.Silo.Security;

/// <summary>A key provider for unit tests that serves only the keys a test overrides; any other use throws.</summary>
internal abstract class PartialKeyProvider : IKeyProvider
{
    public virtual ReadOnlySpan<byte> PseudonymKey => throw new NotSupportedException();

    public virtual VersionedSecret CurrentApiKeyHashingKey => throw new NotSupportedException();

    public virtual IReadOnlyList<VersionedSecret> ApiKeyHashingKeys => throw new NotSupportedException();

    public virtual VersionedSecret CurrentApiKeyIdKey => throw new NotSupportedException();

    public virtual IReadOnlyList<VersionedSecret> ApiKeyIdKeys => throw new NotSupportedException();

    public virtual VersionedSecret CurrentClusterAssertionKey => throw new NotSupportedException();

    public virtual VersionedSecret CurrentAuditSealKey => throw new NotSupportedException();

    public virtual VersionedSecret? FindAuditSealKey(int version) => throw new NotSupportedException();

    public virtual SigningCredentials SigningCredentials => throw new NotSupportedException();

    public virtual IReadOnlyList<SecurityKey> ValidationKeys => throw new NotSupportedException();

    public virtual VersionedSecret CurrentKek => throw new NotSupportedException();

    public virtual IReadOnlyList<int> KekVersions => throw new NotSupportedException();

    public virtual VersionedSecret? FindClusterAssertionKey(int version) => throw new NotSupportedException();

    public virtual VersionedSecret? FindKek(int version) => throw new NotSupportedException();

    public virtual void RetireKek(int version) => throw new NotSupportedException();
}
