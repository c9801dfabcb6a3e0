using System.Net;
using Bastion.Hosting;

namespace Bastion.Tests.Silo.Hosting;

/// <summary>
/// What a container deployment leans on: a silo advertises its container's address when given its service name, and
/// <c>keys init</c> creates the shared keyring once, before any silo starts (deploy/compose).
/// </summary>
public sealed class DeploymentStepsTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("bastion-deploy-").FullName;

    [Theory]
    [InlineData("10.77.0.21", "10.77.0.21")]
    [InlineData("fd00::21", "fd00::21")]
    [InlineData("localhost", "127.0.0.1")]
    public void AdvertisedAddress_IpOrHostName_ResolvesToTheExpectedAddress(string configured, string expected)
    {
        var node = new NodeOptions { AdvertisedAddress = configured };

        Assert.Equal(IPAddress.Parse(expected), node.ResolveAdvertisedAddress());
        Assert.Empty(node.Validate(new(node)));
    }

    [Theory]
    [InlineData("worker 1")]
    [InlineData("http://worker-1")]
    [InlineData("worker_1:11111")]
    public void AdvertisedAddress_NeitherAddressNorHostName_IsRefusedNamingTheSetting(string configured)
    {
        var node = new NodeOptions { AdvertisedAddress = configured };

        var problem = Assert.Single(node.Validate(new(node)));

        Assert.StartsWith("Bastion:Node:AdvertisedAddress ", problem.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KeysInit_CreatesAPrivateKeyringOnce_AndLeavesItAfterwards()
    {
        var keyring = Path.Combine(directory, "secrets", "keyring.json");
        string[] args = ["init", "--environment=Production", "--Bastion:Keys:Provider=Development", $"--Bastion:Keys:KeyringPath={keyring}"];

        Assert.Equal(0, await KeysCommand.RunAsync(args));
        var created = await File.ReadAllBytesAsync(keyring);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyring));

        Assert.Equal(0, await KeysCommand.RunAsync(args));
        Assert.Equal(created, await File.ReadAllBytesAsync(keyring));
    }

    [Fact]
    public async Task KeysInit_OutsideDevelopmentWithoutTheKeyringProvider_IsRefusedAndWritesNothing()
    {
        var keyring = Path.Combine(directory, "keyring.json");

        Assert.Equal(2, await KeysCommand.RunAsync(["init", "--environment=Production", $"--Bastion:Keys:KeyringPath={keyring}"]));
        Assert.False(File.Exists(keyring));
    }

    public void Dispose() => Directory.Delete(directory, recursive: true);
}
