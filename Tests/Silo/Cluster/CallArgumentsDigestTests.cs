using Bastion.Access;
using Bastion.Generation;
using Bastion.Security;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;

namespace Bastion.Tests.Silo.Cluster;

/// <summary>
/// A silo assertion digests a call's arguments as the sender serializes them and as the receiver re-serializes what it
/// deserialized; the two agree only when an argument comes back from the wire with the same bytes. These are the
/// arguments the edge builds for every request (a refusal of them took a two-silo cluster's requests down once).
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class CallArgumentsDigestTests(SiloFixture fixture)
{
    [Fact]
    public void EdgeArguments_ReserializeToTheSameBytes()
    {
        var serializer = fixture.Silo.Services.GetRequiredService<Serializer>();
        var apiKeys = fixture.Silo.Services.GetRequiredService<ApiKeys>();
        var (_, apiKey, _, _) = apiKeys.Generate();
        Assert.True(ApiKeys.TrySplit(apiKey, out var keyId, out var secret));
        object[] arguments =
        [
            new Credential(CredentialKind.ApiKey, keyId, apiKeys.HashPresented(keyId, secret), 0),
            new Credential(CredentialKind.AccessToken, keyId, [], 3),
            new Credential(CredentialKind.ExternalToken, "idp", [], 0, DateTimeOffset.UnixEpoch),
            Permission.Infer,
            new GenerationRequest("bastion-tiny-gpt2", "Hello", 16),
            new GenerationRequest("bastion-tiny-gpt2", "Hello", 16, Stop: ["\n"]),
            new GenerationRequest("bastion-tiny-gpt2", "Hello", 16, Stop: ["\n", "END"]),
            new GenerationRequest("bastion-tiny-gpt2", "", 16, Messages: [new("system", "Be brief."), new("user", "Hi")]),
        ];

        foreach (var (argument, index) in arguments.Select((a, i) => (a, i)))
        {
            var sent = serializer.SerializeToArray<object>(argument);
            var received = serializer.Deserialize<object>(sent);
            Assert.True(sent.AsSpan().SequenceEqual(serializer.SerializeToArray(received)), $"argument {index} ({argument.GetType().Name}) changed on the wire");
        }
    }
}
