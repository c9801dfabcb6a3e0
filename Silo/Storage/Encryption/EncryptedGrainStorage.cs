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
/// This decorates <see cref="IGrainStorage"/> rather than <see cref="IGrainStorageSerializer"/>
/// because only the storage is told which grain and state a payload belongs to, and the associated
/// data must name them.
/// </remarks>
public sealed class EncryptedGrainStorage(IGrainStorage inner, DataKeyStore dataKeys, Serializer serializer, IActivatorProvider activators, ILogger<EncryptedGrainStorage> logger) : IGrainStorage
{
    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var record = new GrainState<EnvelopeRecord>(new EnvelopeRecord(), grainState.ETag);
        await inner.ReadStateAsync(stateName, grainId, record);
        grainState.ETag = record.ETag;
        grainState.RecordExists = record.RecordExists;
        if (record.State?.Envelope is not { } envelope)
        {
            grainState.State = activators.GetActivator<T>().Create();
            return;
        }

        try
        {
            var header = EnvelopeCipher.ReadHeader(envelope);
            for (var attempt = 1; ; attempt++)
            {
                var key = await dataKeys.FindAsync(ScopeOf(grainId), header.DataKeyId, CancellationToken.None);
                try
                {
                    grainState.State = Open<T>(envelope, AssociatedData(stateName, grainId), key);
                    return;
                }
                catch (DataKeyUnavailableException) when (attempt == 1 && key.IsRetired)
                {
                    // The key left this silo's cache between the lookup and its use: look it up again.
                }
            }
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
        byte[] envelope;
        for (var attempt = 1; ; attempt++)
        {
            var key = await dataKeys.GetCurrentAsync(ScopeOf(grainId), CancellationToken.None);
            try
            {
                envelope = EnvelopeCipher.Seal(plaintext, AssociatedData(stateName, grainId), key);
                break;
            }
            catch (DataKeyUnavailableException) when (attempt == 1 && key.IsRetired)
            {
                // The key left this silo's cache between the lookup and its use: look it up again.
            }
        }

        var record = new GrainState<EnvelopeRecord>(new EnvelopeRecord { Envelope = envelope }, grainState.ETag) { RecordExists = grainState.RecordExists };
        await inner.WriteStateAsync(stateName, grainId, record);
        grainState.ETag = record.ETag;
        grainState.RecordExists = record.RecordExists;
    }

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var record = new GrainState<EnvelopeRecord>(new EnvelopeRecord(), grainState.ETag) { RecordExists = grainState.RecordExists };
        await inner.ClearStateAsync(stateName, grainId, record);
        grainState.ETag = record.ETag;
        grainState.RecordExists = record.RecordExists;
        grainState.State = activators.GetActivator<T>().Create();
    }

    // The plaintext lives in a pooled buffer only while it is deserialized, and is zeroed before the buffer goes back.
    private T Open<T>(byte[] envelope, byte[] associatedData, DataKey key) =>
        EnvelopeCipher.Open(envelope, associatedData, key, plaintext => serializer.Deserialize<T>(plaintext))
        ?? throw new EnvelopeFormatException("The stored envelope holds a null state.");

    private static string ScopeOf(GrainId grainId) => DataKeyScope.For(grainId);

    private static byte[] AssociatedData(string stateName, GrainId grainId) =>
        EnvelopeCipher.AssociatedData(grainId.Type.AsSpan(), grainId.Key.AsSpan(), stateName);
}
