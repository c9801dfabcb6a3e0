namespace Bastion.Storage;

/// <summary>The readable part of an envelope: which data key (and which KEK version wrapped it) sealed it.</summary>
/// <param name="FormatVersion">The envelope format version.</param>
/// <param name="DataKeyId">The id of the data key (DEK) that sealed the payload.</param>
/// <param name="KekVersion">The version of the key-encryption key that wraps that DEK.</param>
public sealed record EnvelopeHeader(byte FormatVersion, Guid DataKeyId, int KekVersion);
