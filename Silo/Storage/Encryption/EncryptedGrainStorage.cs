using System.Buffers.Binary;
using System.Globalization;
using Orleans.Serialization;
using Orleans.Serialization.Serializers;
using Orleans.Storage;

namespace Bastion.Storage;

/// <summary>
/// The <c>bastion</c> grain storage: serializes a state with Orleans' binary serializer, seals it
/// with the data key of the grain's scope (<see cref="DataKeyScope"/>) bound to grain type, grain id
/// and state name, and hands the envelope to the inner ADO.NET storage, which persists it as-is
/// (<see cref="EnvelopeRecordSerializer"/>). Reads do the reverse and never fall back to plaintext.
/// </summary>
/// <remarks>
/// <para>The associated data also binds the version of the row the state is written as (the state database's
/// <c>Version</c>, which the ETag carries), and every commit records that version in the key store
/// (<see cref="StateVersions"/>), after the row is written. A read refuses a row older than the recorded version,
/// and a missing row whose state has one: whoever can write the state database but not the key store cannot put
/// back an older row or delete one. Changing a row's version column breaks its tag.</para>
/// <para>This decorates <see cref="IGrainStorage"/> rather than <see cref="IGrainStorageSerializer"/>
/// because only the storage is told which grain and state a payload belongs to, and the associated
/// data must name them.</para>
/// </remarks>
public sealed class EncryptedGrainStorage(
    IGrainStorage inner, DataKeyStore dataKeys, StateVersions versions, Serializer serializer, IActivatorProvider activators, ILogger<EncryptedGrainStorage> logger)
    : IGrainStorage
{
    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        // The committed version is read before the row: a write between the two can only make the row newer.
        var identity = Identity(stateName, grainId);
        var committed = await versions.FindAsync(identity);
        var record = new GrainState<EnvelopeRecord>(new EnvelopeRecord(), grainState.ETag);
        await inner.ReadStateAsync(stateName, grainId, record);
        grainState.ETag = record.ETag;
        grainState.RecordExists = record.RecordExists;
        try
        {
            var version = RowVersion(record.ETag);
            var state = record.State?.Envelope is { } envelope
                ? await OpenAsync<T>(envelope, grainId, AssociatedData(identity, version))
                : activators.GetActivator<T>().Create();
            // After opening, so that an erased state (its key destroyed) reads as none whatever its row's version.
            if (version < committed)
            {
                throw new EnvelopeFormatException(
                    $"the stored row is version {version}, but version {committed} was committed: it was put back from an older copy or deleted.");
            }

            grainState.State = state;
        }
        catch (DataKeyErasedException)
        {
            // An erasure destroyed the key: the state is gone, so it reads as none. The row stays (its ETag with it)
            // until the erasure clears it, which it can now do through an ordinary activation.
            StorageLog.ReadErasedState(logger, stateName, grainId);
            grainState.State = activators.GetActivator<T>().Create();
        }
        catch (Exception exception) when (exception is EnvelopeFormatException or DataKeyUnavailableException)
        {
            // Messages name key ids, scopes (pseudonyms) and offsets, never key material or state.
            StorageLog.RefusedStoredState(logger, stateName, grainId, exception.Message);
            throw new EnvelopeFormatException($"The stored state '{stateName}' of {grainId} cannot be opened: {exception.Message}", exception);
        }
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var plaintext = serializer.SerializeToArray(grainState.State);
        var identity = Identity(stateName, grainId);
        var version = RowVersion(grainState.ETag) + 1;
        byte[] envelope;
        for (var attempt = 1; ; attempt++)
        {
            var key = await dataKeys.GetCurrentAsync(ScopeOf(grainId), CancellationToken.None);
            try
            {
                envelope = EnvelopeCipher.Seal(plaintext, AssociatedData(identity, version), key);
                break;
            }
            catch (DataKeyUnavailableException) when (attempt == 1 && key.IsRetired)
            {
                // The key left this silo's cache between the lookup and its use: look it up again.
            }
        }

        var record = new GrainState<EnvelopeRecord>(new EnvelopeRecord { Envelope = envelope }, grainState.ETag) { RecordExists = grainState.RecordExists };
        await inner.WriteStateAsync(stateName, grainId, record);
        await CommitAsync(identity, version, record.ETag);
        grainState.ETag = record.ETag;
        grainState.RecordExists = record.RecordExists;
    }

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var record = new GrainState<EnvelopeRecord>(new EnvelopeRecord(), grainState.ETag) { RecordExists = grainState.RecordExists };
        await inner.ClearStateAsync(stateName, grainId, record);
        if (record.ETag is not null)
        {
            // A cleared row keeps its place with a new version: the row from before the clear must not come back either.
            await CommitAsync(Identity(stateName, grainId), RowVersion(grainState.ETag) + 1, record.ETag);
        }

        grainState.ETag = record.ETag;
        grainState.RecordExists = record.RecordExists;
        grainState.State = activators.GetActivator<T>().Create();
    }

    private async Task<T> OpenAsync<T>(byte[] envelope, GrainId grainId, byte[] associatedData)
    {
        var header = EnvelopeCipher.ReadHeader(envelope);
        for (var attempt = 1; ; attempt++)
        {
            var key = await dataKeys.FindAsync(ScopeOf(grainId), header.DataKeyId, CancellationToken.None);
            try
            {
                return Open<T>(envelope, associatedData, key);
            }
            catch (DataKeyUnavailableException) when (attempt == 1 && key.IsRetired)
            {
                // The key left this silo's cache between the lookup and its use: look it up again.
            }
        }
    }

    // The plaintext lives in a pooled buffer only while it is deserialized, and is zeroed before the buffer goes back.
    private T Open<T>(byte[] envelope, byte[] associatedData, DataKey key) =>
        EnvelopeCipher.Open(envelope, associatedData, key, plaintext => serializer.Deserialize<T>(plaintext))
        ?? throw new EnvelopeFormatException("The stored envelope holds a null state.");

    private static string ScopeOf(GrainId grainId) => DataKeyScope.For(grainId);

    private async Task CommitAsync(byte[] identity, int version, string? etag)
    {
        if (RowVersion(etag) != version)
        {
            throw new InvalidOperationException($"The state database stored version {etag}, not the version {version} the state was sealed for.");
        }

        await versions.AdvanceAsync(identity, version);
    }

    /// <summary>The row's version from its ETag (the state database's <c>Version</c> column); 0 when there is no row.</summary>
    private static int RowVersion(string? etag) =>
        etag is null ? 0
        : int.TryParse(etag, NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version
        : throw new EnvelopeFormatException("the state database gave a row version that is not a number.");

    /// <summary>Which state a row holds: grain type, grain id and state name.</summary>
    private static byte[] Identity(string stateName, GrainId grainId) =>
        EnvelopeCipher.AssociatedData(grainId.Type.AsSpan(), grainId.Key.AsSpan(), stateName);

    /// <summary>The associated data of one version of a state: its identity, then the version (big-endian).</summary>
    private static byte[] AssociatedData(byte[] identity, int version)
    {
        var associatedData = new byte[identity.Length + sizeof(int)];
        identity.CopyTo(associatedData, 0);
        BinaryPrimitives.WriteInt32BigEndian(associatedData.AsSpan(identity.Length), version);
        return associatedData;
    }
}
