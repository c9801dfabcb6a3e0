using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace Bastion.Inference;

/// <summary>
/// ONNX external data, read from memory only. <see cref="Locations"/> lists the files a model's weights live in
/// (refusing any place ONNX Runtime would read from disk behind our back); <see cref="AddFilesInMemory"/> hands
/// their verified bytes to a session through ONNX Runtime's C API <c>AddExternalInitializersFromFilesInMemory</c>,
/// which Microsoft.ML.OnnxRuntime 1.31 has in its native library but does not expose in C#.
/// </summary>
internal static class OnnxExternalData
{
    private const string LocationKey = "location";

    // OrtApi is append-only by ONNX Runtime's ABI promise, so these slots never move. Indices in onnxruntime_c_api.h
    // (1.31): GetErrorMessage is the 3rd entry, ReleaseStatus the 94th, AddExternalInitializersFromFilesInMemory the
    // 280th, since API version 18. OnnxExternalDataTests checks them against the managed binding's own table.
    internal const uint ApiVersion = 18;
    internal const int GetErrorMessageSlot = 2;
    internal const int ReleaseStatusSlot = 93;
    internal const int AddExternalInitializersFromFilesInMemorySlot = 279;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate nint GetApi(uint version);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate nint AddExternalInitializersFromFilesInMemory(nint options, nint[] names, nint[] buffers, nuint[] lengths, nuint count);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate nint GetErrorMessage(nint status);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void ReleaseStatus(nint status);

    private static readonly Lazy<nint> Api = new(LoadApi);

    /// <summary>
    /// The external-data files <paramref name="model"/> names, distinct, in ordinal order. Only initializers of the
    /// main graph may use external data: ONNX Runtime replaces those from memory, but would read a subgraph's,
    /// a sparse initializer's, a function's or an attribute's from disk. A location must be a plain file name beside
    /// <c>model.onnx</c>. Throws <see cref="InvalidDataException"/> saying what is wrong.
    /// </summary>
    public static IReadOnlyList<string> Locations(byte[] model)
    {
        ModelProto proto;
        try
        {
            proto = ModelProto.Parser.ParseFrom(model);
        }
        catch (InvalidProtocolBufferException exception)
        {
            throw new InvalidDataException($"it is not an ONNX model: {exception.Message}", exception);
        }

        var locations = new SortedSet<string>(StringComparer.Ordinal);
        if (proto.Graph is { } graph)
        {
            foreach (var tensor in graph.Initializer)
            {
                if (IsExternal(tensor))
                {
                    locations.Add(Location(tensor));
                }
            }

            RefuseExternal(graph, mainGraph: true);
        }

        foreach (var function in proto.Functions)
        {
            foreach (var node in function.Node)
            {
                RefuseExternal(node);
            }
        }

        foreach (var training in proto.TrainingInfo)
        {
            RefuseExternal(training.Initialization, mainGraph: false);
            RefuseExternal(training.Algorithm, mainGraph: false);
        }

        return [.. locations];
    }

    /// <summary>Makes sessions created with <paramref name="options"/> take <paramref name="files"/>' bytes for their external data.</summary>
    public static void AddFilesInMemory(SessionOptions options, IReadOnlyList<ExternalDataFile> files)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(files);
        if (files.Count == 0)
        {
            return;
        }

        var api = Api.Value;
        var add = Function<AddExternalInitializersFromFilesInMemory>(api, AddExternalInitializersFromFilesInMemorySlot);
        var names = new nint[files.Count];
        var buffers = new nint[files.Count];
        var lengths = new nuint[files.Count];
        var addedRefs = new bool[files.Count + 1];
        try
        {
            options.DangerousAddRef(ref addedRefs[^1]);
            for (var i = 0; i < files.Count; i++)
            {
                // ORTCHAR_T is char (UTF-8) everywhere but Windows, where it is wchar_t.
                names[i] = OperatingSystem.IsWindows() ? Marshal.StringToCoTaskMemUni(files[i].Name) : Marshal.StringToCoTaskMemUTF8(files[i].Name);
                files[i].Buffer.DangerousAddRef(ref addedRefs[i]);
                buffers[i] = files[i].Buffer.DangerousGetHandle();
                lengths[i] = (nuint)files[i].Length;
            }

            // ONNX Runtime copies the buffers during session creation (direct-buffer mode is not enabled).
            var status = add(options.DangerousGetHandle(), names, buffers, lengths, (nuint)files.Count);
            if (status != 0)
            {
                var message = Marshal.PtrToStringUTF8(Function<GetErrorMessage>(api, GetErrorMessageSlot)(status));
                Function<ReleaseStatus>(api, ReleaseStatusSlot)(status);
                throw new InvalidDataException($"ONNX Runtime refused the external data: {message}");
            }
        }
        finally
        {
            foreach (var name in names)
            {
                Marshal.FreeCoTaskMem(name);
            }

            for (var i = 0; i < files.Count; i++)
            {
                if (addedRefs[i])
                {
                    files[i].Buffer.DangerousRelease();
                }
            }

            if (addedRefs[^1])
            {
                options.DangerousRelease();
            }
        }
    }

    /// <summary>The slot's function pointer as read from ONNX Runtime's own table (for the test that checks the indices).</summary>
    internal static nint Slot(int index) => Marshal.ReadIntPtr(Api.Value, index * IntPtr.Size);

    private static T Function<T>(nint api, int slot)
        where T : Delegate
    {
        var pointer = Marshal.ReadIntPtr(api, slot * IntPtr.Size);
        return pointer == 0
            ? throw new InvalidOperationException($"This ONNX Runtime has no {typeof(T).Name}; it needs API version {ApiVersion} or later.")
            : Marshal.GetDelegateForFunctionPointer<T>(pointer);
    }

    private static nint LoadApi()
    {
        // Resolved as the managed binding resolves its own native library, so both talk to the same ONNX Runtime.
        var library = NativeLibrary.Load("onnxruntime", typeof(InferenceSession).Assembly, null);
        var apiBase = NativeLibrary.GetExport(library, "OrtGetApiBase");
        var getApiBase = Marshal.GetDelegateForFunctionPointer<GetApiBase>(apiBase);
        var getApi = Marshal.GetDelegateForFunctionPointer<GetApi>(Marshal.ReadIntPtr(getApiBase()));
        var api = getApi(ApiVersion);
        return api != 0 ? api : throw new InvalidOperationException($"This ONNX Runtime does not offer API version {ApiVersion}.");
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate nint GetApiBase();

    private static bool IsExternal(TensorProto tensor) => tensor.DataLocation == TensorProto.Types.DataLocation.External;

    private static string Location(TensorProto tensor)
    {
        var location = tensor.ExternalData.LastOrDefault(entry => entry.Key == LocationKey)?.Value;
        if (location is not { Length: > 0 }
            || location is "." or ".."
            || location.AsSpan().IndexOfAny('/', '\\', '\0') >= 0
            || tensor.ExternalData.Count(entry => entry.Key == LocationKey) != 1)
        {
            throw new InvalidDataException(
                $"the tensor '{tensor.Name}' keeps its data in '{location}', which is not one plain file name beside {Gpt2ModelBuilder.ModelFileName}.");
        }

        return location;
    }

    private static void RefuseExternal(GraphProto? graph, bool mainGraph)
    {
        if (graph is null)
        {
            return;
        }

        if (!mainGraph && graph.Initializer.FirstOrDefault(IsExternal) is { } initializer)
        {
            throw Refused(initializer.Name, "an initializer of a subgraph");
        }

        foreach (var sparse in graph.SparseInitializer)
        {
            RefuseExternal(sparse, "a sparse initializer");
        }

        foreach (var node in graph.Node)
        {
            RefuseExternal(node);
        }
    }

    private static void RefuseExternal(NodeProto node)
    {
        foreach (var attribute in node.Attribute)
        {
            if (attribute.T is { } tensor && IsExternal(tensor))
            {
                throw Refused(tensor.Name, $"the attribute '{attribute.Name}' of the node '{node.Name}'");
            }

            if (attribute.Tensors.FirstOrDefault(IsExternal) is { } listed)
            {
                throw Refused(listed.Name, $"the attribute '{attribute.Name}' of the node '{node.Name}'");
            }

            if (attribute.SparseTensor is { } sparse)
            {
                RefuseExternal(sparse, $"the attribute '{attribute.Name}' of the node '{node.Name}'");
            }

            foreach (var each in attribute.SparseTensors)
            {
                RefuseExternal(each, $"the attribute '{attribute.Name}' of the node '{node.Name}'");
            }

            RefuseExternal(attribute.G, mainGraph: false);
            foreach (var subgraph in attribute.Graphs)
            {
                RefuseExternal(subgraph, mainGraph: false);
            }
        }
    }

    private static void RefuseExternal(SparseTensorProto sparse, string where)
    {
        foreach (var tensor in new[] { sparse.Values, sparse.Indices })
        {
            if (tensor is not null && IsExternal(tensor))
            {
                throw Refused(tensor.Name, where);
            }
        }
    }

    private static InvalidDataException Refused(string tensor, string where) =>
        new($"the tensor '{tensor}' in {where} keeps its data in an external file; only initializers of the main graph may, since ONNX Runtime would read any other from disk, unverified.");
}
