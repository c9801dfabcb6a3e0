using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Bastion.Generation;
using Bastion.Hosting;
using Bastion.Inference;
using Bastion.Tests.Grains.Inference;
using Google.Protobuf;
using Onnx;

namespace Bastion.Tests.Grains.Generation;

public sealed class ModelDirectoryTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "bastion-model-dir-" + Guid.NewGuid().ToString("N"));

    public ModelDirectoryTests() => Gpt2ModelBuilder.WriteModelDirectory(_directory, ModelShape.Tiny);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Read_GeneratedDefaultDirectory_ServesWithOpenAiDefaultsTheDefaultTemplateAndThePinnedDigest()
    {
        var model = ModelDirectory.Read(_directory);

        Assert.Equal(InferenceRegistration.DefaultModelSha256, model.Digest);
        Assert.Equal(["chat_template.json", "generation.json", "model.onnx"], model.Files);
        Assert.Equal(GenerationDefaults.OpenAi with { Stop = model.Defaults.Stop }, model.Defaults);
        Assert.Empty(model.Defaults.Stop);
        Assert.True(model.UsesBundledTokenizer);
        Assert.Equal(TextTokenizer.CreateGpt2().EncodeToIds("Hello world"), model.Tokenizer.EncodeToIds("Hello world"));
    }

    [Fact]
    public void WriteModelDirectory_WritesTheDocumentedDefaultFiles()
    {
        Assert.Equal(
            "{\n  \"max_tokens\": 16,\n  \"temperature\": 1,\n  \"top_p\": 1,\n  \"top_k\": 0,\n  \"stop\": [],\n  \"eos_token_id\": 50256\n}\n",
            File.ReadAllText(Path.Combine(_directory, "generation.json")));
        Assert.Equal(ChatTemplate.Default.Render([new("system", "S"), new("user", "U")]), ModelDirectory.Read(_directory).Template.Render([new("system", "S"), new("user", "U")]));
        Assert.Equal("<|system|>\nS\n<|user|>\nU\n<|assistant|>\n", ChatTemplate.Default.Render([new("system", "S"), new("user", "U")]));
    }

    [Fact]
    public void Digest_IsWhatSha256sumOfTheFilesPipedToSha256sumPrints()
    {
        var manifest = new StringBuilder();
        foreach (var name in new[] { "chat_template.json", "generation.json", "model.onnx" })
        {
            manifest.Append(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(_directory, name))))).Append("  ").Append(name).Append('\n');
        }

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(manifest.ToString()))), ModelDirectory.Read(_directory).Digest);
    }

    [Theory]
    [InlineData("generation.json")]
    [InlineData("chat_template.json")]
    public void Digest_ChangesWhenAFileTheSiloReadsChanges(string file)
    {
        var before = ModelDirectory.Read(_directory).Digest;
        File.WriteAllText(Path.Combine(_directory, file), File.ReadAllText(Path.Combine(_directory, file)).Replace("\n", "\n ", StringComparison.Ordinal));

        Assert.NotEqual(before, ModelDirectory.Read(_directory).Digest);
    }

    [Theory]
    [InlineData("generation.json")]
    [InlineData("chat_template.json")]
    [InlineData("model.onnx")]
    public void Read_RequiredFileMissing_NamesTheFile(string file)
    {
        File.Delete(Path.Combine(_directory, file));

        var refused = Assert.Throws<FileNotFoundException>(() => ModelDirectory.Read(_directory));

        Assert.StartsWith(file + " is missing", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"temperature": 3}""", "'temperature'")]
    [InlineData("""{"top_p": 0}""", "'top_p'")]
    [InlineData("""{"max_tokens": 0}""", "'max_tokens'")]
    [InlineData("""{"stop": ["a", "b", "c", "d", "e"]}""", "'stop'")]
    [InlineData("""{"temprature": 0.5}""", "temprature")]
    [InlineData("""{"max_tokens": "many"}""", "max_tokens")]
    [InlineData("""not json""", "generation.json")]
    [InlineData("""{"context_length": 0}""", "'context_length' must be at least 1")]
    [InlineData("""{"context_length": 8, "max_tokens": 9}""", "'max_tokens' must not exceed 'context_length'")]
    public void Read_InvalidGenerationJson_NamesTheFileAndTheField(string json, string named)
    {
        File.WriteAllText(Path.Combine(_directory, "generation.json"), json);

        var refused = Assert.Throws<InvalidDataException>(() => ModelDirectory.Read(_directory));

        Assert.StartsWith("generation.json is invalid: ", refused.Message, StringComparison.Ordinal);
        Assert.Contains(named, refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"roles": {"system": {}, "user": {}}, "generation_prefix": ""}""", "'roles' must define")]
    [InlineData("""{"roles": {"system": {}, "user": {}, "assistant": {}, "tool": {}}}""", "'tool'")]
    [InlineData("""{"roles": {"system": {}, "user": {}, "assistant": {"prefx": ""}}}""", "prefx")]
    [InlineData("""{"roles": {"system": {}, "user": {}, "assistant": {}}, "jinja": "{{ messages }}"}""", "jinja")]
    public void Read_InvalidChatTemplate_NamesTheFile(string json, string named)
    {
        File.WriteAllText(Path.Combine(_directory, "chat_template.json"), json);

        var refused = Assert.Throws<InvalidDataException>(() => ModelDirectory.Read(_directory));

        Assert.StartsWith("chat_template.json is invalid: ", refused.Message, StringComparison.Ordinal);
        Assert.Contains(named, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Template_RendersBeginPrefixesSuffixesAndTheGenerationPrefix()
    {
        File.WriteAllText(Path.Combine(_directory, "chat_template.json"), """
            {
              "begin": "<s>",
              "roles": {
                "system": { "prefix": "[SYS] ", "suffix": " [/SYS]\n" },
                "user": { "prefix": "[INST] ", "suffix": " [/INST]\n" },
                "assistant": { "prefix": "", "suffix": "</s>\n" }
              },
              "generation_prefix": "Answer:"
            }
            """);

        var template = ModelDirectory.Read(_directory).Template;

        Assert.Equal(
            "<s>[SYS] Be brief. [/SYS]\n[INST] Hi [/INST]\nHello!</s>\n[INST] Bye [/INST]\nAnswer:",
            template.Render([new("system", "Be brief."), new("user", "Hi"), new("assistant", "Hello!"), new("user", "Bye")]));
    }

    [Fact]
    public void Read_TokenizerFiles_AreUsedAndCoveredByTheDigest()
    {
        File.WriteAllText(Path.Combine(_directory, "vocab.json"), """{"h": 0, "e": 1, "l": 2, "o": 3, "he": 4, "ll": 5, "hell": 6, "<|endoftext|>": 7}""");
        File.WriteAllText(Path.Combine(_directory, "merges.txt"), "#version: 0.2\nh e\nl l\nhe ll\n");

        var model = ModelDirectory.Read(_directory);

        Assert.False(model.UsesBundledTokenizer);
        Assert.Equal([6, 3], model.Tokenizer.EncodeToIds("hello"));
        Assert.Equal("hello", model.Tokenizer.Decode([6, 3]));
        Assert.Equal(["chat_template.json", "generation.json", "merges.txt", "model.onnx", "vocab.json"], model.Files);
        Assert.NotEqual(InferenceRegistration.DefaultModelSha256, model.Digest);
    }

    [Theory]
    [InlineData("vocab.json", "merges.txt")]
    [InlineData("merges.txt", "vocab.json")]
    public void Read_OnlyOneTokenizerFile_NamesTheMissingOne(string present, string missing)
    {
        File.WriteAllText(Path.Combine(_directory, present), present == "vocab.json" ? """{"a": 0}""" : "#version: 0.2\n");

        var refused = Assert.Throws<InvalidDataException>(() => ModelDirectory.Read(_directory));

        Assert.StartsWith(missing + " is missing", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Load_ModelFileReplacedAfterHashing_RunsTheBytesThatWereHashed()
    {
        var hashed = File.ReadAllBytes(ModelPath);
        var expected = ReferenceCompletion(hashed);
        using var directory = ModelDirectory.Read(_directory);

        // Swapped between the digest check and session creation: a reopen by path would load this instead.
        Gpt2ModelBuilder.WriteModelDirectory(_directory, ModelShape.Tiny, seed: 99);
        Assert.NotEqual(expected, ReferenceCompletion(File.ReadAllBytes(ModelPath)));

        Assert.Equal(expected, await CompleteAsync(directory));
    }

    [Fact]
    public async Task Read_ExternalData_IsInTheManifestAndLoadsFromTheHashedBytes()
    {
        var expected = ReferenceCompletion(File.ReadAllBytes(ModelPath));
        MoveWeightsToExternalData(_directory, "model.onnx_data");

        using var directory = ModelDirectory.Read(_directory);

        Assert.Equal(["chat_template.json", "generation.json", "model.onnx", "model.onnx_data"], directory.Files);
        Assert.Equal(Sha256Manifest("chat_template.json", "generation.json", "model.onnx", "model.onnx_data"), directory.Digest);
        Assert.Equal(expected, await CompleteAsync(directory));
    }

    [Fact]
    public async Task Load_ExternalDataReplacedAfterHashing_RunsTheBytesThatWereHashed()
    {
        var expected = ReferenceCompletion(File.ReadAllBytes(ModelPath));
        MoveWeightsToExternalData(_directory, "model.onnx_data");
        using var directory = ModelDirectory.Read(_directory);

        // Same length, every weight zero: read from disk now, the model would say something else entirely.
        var data = Path.Combine(_directory, "model.onnx_data");
        File.WriteAllBytes(data, new byte[new FileInfo(data).Length]);

        Assert.Equal(expected, await CompleteAsync(directory));
    }

    [Fact]
    public void Digest_ChangesWhenAnExternalDataFileChanges()
    {
        MoveWeightsToExternalData(_directory, "weights.bin");
        string pinned;
        using (var before = ModelDirectory.Read(_directory))
        {
            pinned = before.Digest;
        }

        var data = Path.Combine(_directory, "weights.bin");
        var bytes = File.ReadAllBytes(data);
        bytes[bytes.Length / 2] ^= 1;
        File.WriteAllBytes(data, bytes);

        using var after = ModelDirectory.Read(_directory);
        Assert.Contains("weights.bin", after.Files);
        Assert.NotEqual(pinned, after.Digest);
    }

    [Theory]
    [InlineData("../model.onnx_data")]
    [InlineData("/tmp/model.onnx_data")]
    [InlineData("weights/model.onnx_data")]
    [InlineData("..")]
    public void Read_ExternalDataOutsideTheDirectory_IsRefused(string location)
    {
        MoveWeightsToExternalData(_directory, location, writeData: false);

        var refused = Assert.Throws<InvalidDataException>(() => ModelDirectory.Read(_directory));

        Assert.StartsWith("model.onnx is invalid: ", refused.Message, StringComparison.Ordinal);
        Assert.Contains("not one plain file name", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_ExternalDataFileMissing_NamesIt()
    {
        MoveWeightsToExternalData(_directory, "model.onnx_data");
        File.Delete(Path.Combine(_directory, "model.onnx_data"));

        var refused = Assert.Throws<FileNotFoundException>(() => ModelDirectory.Read(_directory));

        Assert.StartsWith("model.onnx_data is missing", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ModelWithoutAContextLength_IsRefusedNamingTheFileAndTheSetting()
    {
        RemoveRecordedContextLength();
        using var directory = ModelDirectory.Read(_directory);
        using var catalog = new ModelCatalog(TimeProvider.System);

        var refused = Assert.Throws<InvalidDataException>(() => catalog.Load("no-context", directory, TinyModelFixture.RuntimeOptions));

        Assert.StartsWith("generation.json: 'context_length' is missing, and model.onnx records none ('bastion.n_ctx' metadata).", refused.Message, StringComparison.Ordinal);
        Assert.False(catalog.IsReady);
    }

    [Fact]
    public void Load_ContextLengthFromGenerationJson_BoundsMaxTokens()
    {
        RemoveRecordedContextLength();
        File.WriteAllText(Path.Combine(_directory, "generation.json"), """{"context_length": 12, "max_tokens": 4}""");
        using var directory = ModelDirectory.Read(_directory);
        using var catalog = new ModelCatalog(TimeProvider.System);

        catalog.Load("short", directory, TinyModelFixture.RuntimeOptions);

        Assert.Equal(12, Assert.Single(catalog.Models).ContextLength);
        // "Hello world" is 2 GPT-2 tokens: 2 + 10 fits exactly, 2 + 11 does not.
        Assert.Equal(10, catalog.Prepare(new GenerationRequest("short", "Hello world", 10)).MaxNewTokens);
        var rejected = Assert.Throws<GenerationRejectedException>(() => catalog.Prepare(new GenerationRequest("short", "Hello world", 11)));
        Assert.Equal(GenerationRejectedException.ContextLengthExceeded, rejected.Code);
    }

    [Fact]
    public void Load_ContextLengthBelowWhatTheModelRecords_Lowers()
    {
        File.WriteAllText(Path.Combine(_directory, "generation.json"), """{"context_length": 100}""");
        using var directory = ModelDirectory.Read(_directory);
        using var catalog = new ModelCatalog(TimeProvider.System);

        catalog.Load("lowered", directory, TinyModelFixture.RuntimeOptions);

        Assert.Equal(100, Assert.Single(catalog.Models).ContextLength);
    }

    [Fact]
    public void Load_ContextLengthAboveWhatTheModelRecords_IsRefused()
    {
        // The tiny model has 1024 learned positions.
        File.WriteAllText(Path.Combine(_directory, "generation.json"), """{"context_length": 1025}""");
        using var directory = ModelDirectory.Read(_directory);
        using var catalog = new ModelCatalog(TimeProvider.System);

        var refused = Assert.Throws<InvalidDataException>(() => catalog.Load("too-long", directory, TinyModelFixture.RuntimeOptions));

        Assert.Equal("generation.json: 'context_length' is 1025, more than the 1024 positions model.onnx records ('bastion.n_ctx').", refused.Message);
    }

    private const string Prompt = "Hello world";
    private const int CompletionTokens = 4;

    private string ModelPath => Path.Combine(_directory, "model.onnx");

    /// <summary>What the model in <paramref name="model"/> says greedily, by the full-sequence reference (no KV cache, no catalog).</summary>
    private static string ReferenceCompletion(byte[] model)
    {
        var tokenizer = TextTokenizer.CreateGpt2();
        return tokenizer.Decode(FullSequenceReference.Run(model, tokenizer.EncodeToIds(Prompt), CompletionTokens, DecoderModel.DefaultEosTokenId).Tokens);
    }

    private static async Task<string> CompleteAsync(ModelDirectory directory)
    {
        using var catalog = new ModelCatalog(TimeProvider.System);
        catalog.Load("verified", directory, TinyModelFixture.RuntimeOptions);
        var prepared = catalog.Prepare(new GenerationRequest("verified", Prompt, CompletionTokens, new SamplingOptions(0f, 1f, 0, 1)));
        return (await catalog.GenerateAsync(prepared, onText: null, CancellationToken.None)).Text;
    }

    private string Sha256Manifest(params string[] names)
    {
        var manifest = new StringBuilder();
        foreach (var name in names)
        {
            manifest.Append(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(_directory, name))))).Append("  ").Append(name).Append('\n');
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(manifest.ToString())));
    }

    /// <summary>Rewrites model.onnx the way large exports are saved: every sizeable initializer's bytes in <paramref name="location"/>.</summary>
    private void MoveWeightsToExternalData(string directory, string location, bool writeData = true)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(ModelPath));
        using var data = new MemoryStream();
        foreach (var tensor in model.Graph.Initializer.Where(t => t.RawData.Length >= 1024))
        {
            var offset = data.Length;
            tensor.RawData.WriteTo(data);
            data.SetLength(data.Length + (-data.Length & 4095));
            data.Position = data.Length;
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(CultureInfo.InvariantCulture) });
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = tensor.RawData.Length.ToString(CultureInfo.InvariantCulture) });
            tensor.DataLocation = TensorProto.Types.DataLocation.External;
            tensor.RawData = ByteString.Empty;
        }

        if (writeData)
        {
            File.WriteAllBytes(Path.Combine(directory, location), data.ToArray());
        }

        File.WriteAllBytes(ModelPath, model.ToByteArray());
    }

    private void RemoveRecordedContextLength()
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(ModelPath));
        Assert.True(model.MetadataProps.Remove(Assert.Single(model.MetadataProps, entry => entry.Key == "bastion.n_ctx")));
        File.WriteAllBytes(ModelPath, model.ToByteArray());
    }
}
