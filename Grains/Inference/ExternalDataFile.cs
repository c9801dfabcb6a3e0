using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Bastion.Inference;

/// <summary>
/// One ONNX external-data file, read once into native memory and hashed on the way in, so the bytes
/// that were hashed are the bytes ONNX Runtime receives. Native rather than a <c>byte[]</c> because
/// external data exists for weights past protobuf's 2 GB, which is also about where arrays stop.
/// </summary>
public sealed class ExternalDataFile : IDisposable
{
    private const int ChunkSize = 1 << 20;

    private readonly NativeBuffer _buffer;

    private ExternalDataFile(string name, NativeBuffer buffer, long length, string sha256)
    {
        Name = name;
        _buffer = buffer;
        Length = length;
        Sha256 = sha256;
    }

    /// <summary>The file name, exactly as <c>model.onnx</c> gives it in its tensors' <c>location</c>.</summary>
    public string Name { get; }

    public long Length { get; }

    /// <summary>Lower-case hex SHA-256 of the bytes held.</summary>
    public string Sha256 { get; }

    /// <summary>Reads <paramref name="path"/> once, hashing what it copies; the result holds those bytes as <paramref name="name"/>.</summary>
    public static ExternalDataFile Read(string path, string name)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        var length = stream.Length;
        var buffer = new NativeBuffer(length);
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var chunk = new byte[ChunkSize];
            long offset = 0;
            while (offset < length)
            {
                var read = stream.Read(chunk, 0, (int)Math.Min(chunk.Length, length - offset));
                if (read == 0)
                {
                    throw new InvalidDataException($"{name} shrank while it was read.");
                }

                hash.AppendData(chunk, 0, read);
                buffer.WriteSpan((ulong)offset, chunk.AsSpan(0, read));
                offset += read;
            }

            // Bytes appended after the length was taken would be neither hashed nor loaded; refuse rather than guess.
            if (stream.Read(chunk, 0, 1) != 0)
            {
                throw new InvalidDataException($"{name} grew while it was read.");
            }

            return new ExternalDataFile(name, buffer, length, Convert.ToHexStringLower(hash.GetHashAndReset()));
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    /// <summary>The start of the bytes; valid while this object is alive and undisposed.</summary>
    internal SafeBuffer Buffer => _buffer;

    public void Dispose() => _buffer.Dispose();

    private sealed class NativeBuffer : SafeBuffer
    {
        public NativeBuffer(long length)
            : base(ownsHandle: true)
        {
            SetHandle(Marshal.AllocHGlobal((nint)Math.Max(length, 1)));
            Initialize((ulong)length);
        }

        protected override bool ReleaseHandle()
        {
            Marshal.FreeHGlobal(handle);
            return true;
        }
    }
}
