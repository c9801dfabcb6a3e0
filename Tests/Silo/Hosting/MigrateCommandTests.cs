using Bastion.Hosting;

namespace Bastion.Tests.Silo.Hosting;

/// <summary><c>migrate</c> sends the owners' passwords: outside Development only to a server it has verified.</summary>
public sealed class MigrateCommandTests
{
    [Theory]
    [InlineData("BastionOwner", "Require")]
    [InlineData("BastionKeysOwner", "Prefer")]
    public async Task Run_OutsideDevelopmentWithoutVerifyFull_IsRefusedBeforeConnecting_NamingTheSetting(string setting, string sslMode)
    {
        // Nothing listens on port 1: a refusal that tried to connect first would name the connection failure instead.
        const string password = "owner-password-never-shown";

        var refused = await Assert.ThrowsAsync<StartupException>(() => MigrateCommand.RunAsync(
            ["--environment=Production", $"--ConnectionStrings:{setting}=Host=127.0.0.1;Port=1;Username=owner;Password={password};SSL Mode={sslMode}"]));

        Assert.StartsWith($"ConnectionStrings:{setting} has SSL Mode={sslMode};", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(password, refused.Message, StringComparison.Ordinal);
    }
}
