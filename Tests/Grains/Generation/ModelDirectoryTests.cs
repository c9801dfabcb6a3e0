using System.Security.Cryptography;
using System.Text;
using Bastion.Generation;
using Bastion.Hosting;
using Bastion.Inference;

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
}
