using Google.Protobuf;
using Onnx;

namespace Bastion.Inference;

/// <summary>Appends nodes, constants and typed inputs/outputs to an ONNX graph with generated names.</summary>
internal sealed class OnnxGraphWriter(GraphProto graph)
{
    private int _nextId;

    public GraphProto Graph { get; } = graph;

    public string Node(string opType, IReadOnlyList<string> inputs, params AttributeProto[] attributes) =>
        NodeWithOutputs(opType, inputs, [Fresh(opType)], attributes)[0];

    public string NamedNode(string output, string opType, IReadOnlyList<string> inputs, params AttributeProto[] attributes) =>
        NodeWithOutputs(opType, inputs, [output], attributes)[0];

    public IReadOnlyList<string> MultiOutputNode(string opType, IReadOnlyList<string> inputs, int outputCount, params AttributeProto[] attributes)
    {
        var outputs = new string[outputCount];
        for (var i = 0; i < outputCount; i++)
        {
            outputs[i] = Fresh(opType);
        }

        return NodeWithOutputs(opType, inputs, outputs, attributes);
    }

    /// <summary>A float32 initializer whose bytes are already little-endian raw data.</summary>
    public string FloatInitializer(string name, IReadOnlyList<long> dims, byte[] rawData)
    {
        var tensor = new TensorProto
        {
            Name = name,
            DataType = (int)TensorProto.Types.DataType.Float,
            // Wrapping, not copying: the GPT-2-small weights are ~500 MB and must not be held twice.
            RawData = UnsafeByteOperations.UnsafeWrap(rawData),
        };
        tensor.Dims.AddRange(dims);
        Graph.Initializer.Add(tensor);
        return name;
    }

    public string FloatScalar(float value)
    {
        var tensor = new TensorProto { Name = Fresh("const_f"), DataType = (int)TensorProto.Types.DataType.Float };
        tensor.FloatData.Add(value);
        Graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    public string Int64Scalar(long value)
    {
        var tensor = new TensorProto { Name = Fresh("const_i"), DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Int64Data.Add(value);
        Graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    public string Int64Vector(params long[] values)
    {
        var tensor = new TensorProto { Name = Fresh("const_i"), DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.Add(values.Length);
        tensor.Int64Data.AddRange(values);
        Graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    public void Input(string name, TensorProto.Types.DataType type, params object[] dims) =>
        Graph.Input.Add(ValueInfo(name, type, dims));

    public void Output(string name, TensorProto.Types.DataType type, params object[] dims) =>
        Graph.Output.Add(ValueInfo(name, type, dims));

    public static AttributeProto IntAttribute(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto FloatAttribute(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto IntsAttribute(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    private IReadOnlyList<string> NodeWithOutputs(string opType, IReadOnlyList<string> inputs, string[] outputs, AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = $"{opType}_{_nextId++}" };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return outputs;
    }

    private string Fresh(string prefix) => $"{prefix}_{_nextId++}";

    /// <summary>Dimensions are either <see cref="long"/>/<see cref="int"/> sizes or <see cref="string"/> symbolic names.</summary>
    private static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims)
        {
            shape.Dim.Add(dim switch
            {
                string symbol => new TensorShapeProto.Types.Dimension { DimParam = symbol },
                int size => new TensorShapeProto.Types.Dimension { DimValue = size },
                long size => new TensorShapeProto.Types.Dimension { DimValue = size },
                _ => throw new ArgumentException($"Unsupported dimension {dim}.", nameof(dims)),
            });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }
}
