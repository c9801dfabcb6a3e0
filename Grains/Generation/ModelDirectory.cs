using System.Security.Cryptography;
using System.Text;
using Bastion.Inference;

namespace Bastion.Generation;

/// <summary>
/// A model directory as a worker reads it (docs/models.md): <c>model.onnx</c>, <c>generation.json</c>,
/// <c>chat_template.json</c>, and optionally GPT-2-style tokenizer files <c>vocab.json</c> + <c>merges.txt</c>
/// (without them, the bundled GPT-2 tokenizer), plus any ONNX external-data files <c>model.onnx</c> names. Each
/// file is read once into memory, the digest covers exactly those bytes, and the model is loaded from them, never
/// reopened by path: what was checked is what runs. Dispose it once the model is loaded.
/// </summary>
public sealed class ModelDirectory : IDisposable
{
    public const string ModelFileName = Gpt2ModelBuilder.ModelFileName;
    public const string VocabularyFileName = "vocab.json";
    public const string MergesFileName = "merges.txt";

    private static readonly string[] OwnFileNames = [ModelFileName, VocabularyFileName, MergesFileName, GenerationDefaults.FileName, ChatTemplate.FileName];

    private ModelDirectory(
        string path, string digest, IReadOnlyList<string> files, byte[] model, IReadOnlyList<ExternalDataFile> externalData,
        GenerationDefaults defaults, ChatTemplate template, TextTokenizer tokenizer, bool bundledTokenizer)
    {
        Path = path;
        ModelBytes = model;
        ExternalData = externalData;
        Digest = digest;
        Files = files;
        Defaults = defaults;
        Template = template;
        Tokenizer = tokenizer;
        UsesBundledTokenizer = bundledTokenizer;
    }

    public string Path { get; }

    /// <summary>The bytes of <c>model.onnx</c> that the digest covers.</summary>
    public byte[] ModelBytes { get; }

    /// <summary>The external-data files <c>model.onnx</c> names, in manifest order, as the digest covers them.</summary>
    public IReadOnlyList<ExternalDataFile> ExternalData { get; }

    /// <summary>
    /// The manifest digest: the SHA-256 of the lines <c>"&lt;sha256 hex&gt;  &lt;file name&gt;\n"</c> of every file
    /// the silo reads, in ordinal order of name — what <c>sha256sum &lt;files&gt; | sha256sum</c> prints.
    /// </summary>
    public string Digest { get; }

    /// <summary>The files the digest covers, in manifest order.</summary>
    public IReadOnlyList<string> Files { get; }

    public GenerationDefaults Defaults { get; }

    public ChatTemplate Template { get; }

    public TextTokenizer Tokenizer { get; }

    /// <summary>True when the directory has no tokenizer files and the bundled GPT-2 tokenizer serves it.</summary>
    public bool UsesBundledTokenizer { get; }

    /// <summary>
    /// Reads and checks <paramref name="directory"/>. Throws <see cref="InvalidDataException"/> (or
    /// <see cref="FileNotFoundException"/>) whose message starts with the file at fault.
    /// </summary>
    public static ModelDirectory Read(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var digests = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var model = ReadOptional(directory, ModelFileName, digests) ?? throw new FileNotFoundException($"{ModelFileName} is missing.", ModelFileName);
        IReadOnlyList<string> locations;
        try
        {
            locations = OnnxExternalData.Locations(model);
        }
        catch (InvalidDataException exception)
        {
            throw new InvalidDataException($"{ModelFileName} is invalid: {exception.Message}", exception);
        }

        var externalData = new List<ExternalDataFile>(locations.Count);
        try
        {
            foreach (var location in locations)
            {
                if (OwnFileNames.Contains(location, StringComparer.Ordinal))
                {
                    throw new InvalidDataException($"{ModelFileName} names {location} as external data; that name belongs to another file of the directory.");
                }

                var path = System.IO.Path.Combine(directory, location);
                if (!File.Exists(path))
                {
                    throw new FileNotFoundException($"{location} is missing: {ModelFileName} keeps weights in it.", location);
                }

                var file = ExternalDataFile.Read(path, location);
                externalData.Add(file);
                digests[location] = file.Sha256;
            }

            var defaults = Parse(directory, GenerationDefaults.FileName, digests, bytes => GenerationDefaults.Parse(bytes));
            var template = Parse(directory, ChatTemplate.FileName, digests, bytes => ChatTemplate.Parse(bytes));
            var vocabulary = ReadOptional(directory, VocabularyFileName, digests);
            var merges = ReadOptional(directory, MergesFileName, digests);
            var tokenizer = CreateTokenizer(vocabulary, merges, defaults.EosTokenId);

            var manifest = new StringBuilder();
            foreach (var (name, digest) in digests)
            {
                manifest.Append(digest).Append("  ").Append(name).Append('\n');
            }

            var manifestDigest = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(manifest.ToString())));
            return new ModelDirectory(directory, manifestDigest, [.. digests.Keys], model, externalData, defaults, template, tokenizer, vocabulary is null);
        }
        catch
        {
            foreach (var file in externalData)
            {
                file.Dispose();
            }

            throw;
        }
    }

    /// <summary>Frees the external data held in memory; the loaded session keeps its own copy.</summary>
    public void Dispose()
    {
        foreach (var file in ExternalData)
        {
            file.Dispose();
        }
    }

    private static TextTokenizer CreateTokenizer(byte[]? vocabulary, byte[]? merges, int eosTokenId)
    {
        if (vocabulary is null && merges is null)
        {
            return TextTokenizer.CreateGpt2(eosTokenId);
        }

        if (vocabulary is null || merges is null)
        {
            throw new InvalidDataException($"{(vocabulary is null ? VocabularyFileName : MergesFileName)} is missing: a tokenizer needs both {VocabularyFileName} and {MergesFileName}, or neither (the bundled GPT-2 tokenizer).");
        }

        try
        {
            // From the bytes that were hashed, never the files again.
            return TextTokenizer.CreateBytePairEncoding(vocabulary, merges, eosTokenId);
        }
        catch (Exception exception) when (exception is ArgumentException or FormatException or InvalidOperationException or System.Text.Json.JsonException or InvalidDataException)
        {
            throw new InvalidDataException($"{VocabularyFileName} and {MergesFileName} do not form a tokenizer: {exception.Message}", exception);
        }
    }

    /// <summary>Writes <c>generation.json</c> and <c>chat_template.json</c>: what the generated default model serves with.</summary>
    public static void WriteDefaultFiles(string directory, GenerationDefaults? defaults = null, ChatTemplate? template = null)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(System.IO.Path.Combine(directory, GenerationDefaults.FileName), (defaults ?? GenerationDefaults.OpenAi).ToJson() + "\n");
        File.WriteAllText(System.IO.Path.Combine(directory, ChatTemplate.FileName), (template ?? ChatTemplate.Default).ToJson() + "\n");
    }

    private static T Parse<T>(string directory, string fileName, SortedDictionary<string, string> digests, Func<byte[], T> parse)
    {
        var bytes = ReadOptional(directory, fileName, digests) ?? throw new FileNotFoundException($"{fileName} is missing.", fileName);
        try
        {
            return parse(bytes);
        }
        catch (InvalidDataException exception)
        {
            throw new InvalidDataException($"{fileName} is invalid: {exception.Message}", exception);
        }
    }

    private static byte[]? ReadOptional(string directory, string fileName, SortedDictionary<string, string> digests)
    {
        var path = System.IO.Path.Combine(directory, fileName);
        if (!File.Exists(path))
        {
            return null;
        }

        // One read: these bytes are hashed, parsed and loaded; the file is not opened again.
        var bytes = File.ReadAllBytes(path);
        digests[fileName] = Convert.ToHexStringLower(SHA256.HashData(bytes));
        return bytes;
    }
}
