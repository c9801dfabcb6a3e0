using Bastion.Access;
using Bastion.Anomaly;

namespace Bastion.Tests.Grains.Anomaly;

public sealed class AnomalyOptionsTests
{
    public static TheoryData<string, AnomalySignal, AnomalyAction> DefaultPolicy => new()
    {
        { Roles.User, AnomalySignal.AuthenticationFailures, AnomalyAction.Suspend },
        { Roles.User, AnomalySignal.RefusalStorm, AnomalyAction.Throttle },
        { Roles.User, AnomalySignal.NearIdenticalPrompts, AnomalyAction.Throttle },
        { Roles.User, AnomalySignal.PromptEnumeration, AnomalyAction.Throttle },
        { Roles.User, AnomalySignal.TokenVolumeSpike, AnomalyAction.Throttle },
        { Roles.User, AnomalySignal.NewClientNetwork, AnomalyAction.Observe },
        { Roles.DataScientist, AnomalySignal.AuthenticationFailures, AnomalyAction.Suspend },
        { Roles.DataScientist, AnomalySignal.PromptEnumeration, AnomalyAction.Throttle },
        { Roles.DataScientist, AnomalySignal.NewClientNetwork, AnomalyAction.Observe },
        { Roles.Service, AnomalySignal.AuthenticationFailures, AnomalyAction.Observe },
        { Roles.Service, AnomalySignal.RefusalStorm, AnomalyAction.Observe },
        { Roles.Service, AnomalySignal.TokenVolumeSpike, AnomalyAction.Observe },
        { Roles.Admin, AnomalySignal.AuthenticationFailures, AnomalyAction.Observe },
        { Roles.Admin, AnomalySignal.NearIdenticalPrompts, AnomalyAction.Observe },
        { "unknown-role", AnomalySignal.AuthenticationFailures, AnomalyAction.Suspend },
    };

    [Theory]
    [MemberData(nameof(DefaultPolicy))]
    public void ActionFor_Defaults_FollowTheTable(string role, AnomalySignal signal, AnomalyAction expected)
    {
        Assert.Equal(expected, new AnomalyOptions().ActionFor([role], signal));
    }

    [Fact]
    public void ActionFor_SeveralRoles_TheMostPrivilegedDecides()
    {
        Assert.Equal(AnomalyAction.Observe, new AnomalyOptions().ActionFor([Roles.User, Roles.Admin], AnomalySignal.AuthenticationFailures));
    }

    [Fact]
    public void Problems_Defaults_HaveNone()
    {
        Assert.Empty(new AnomalyOptions().Problems());
    }

    [Fact]
    public void Problems_EachBadSetting_IsNamed()
    {
        var options = new AnomalyOptions
        {
            RefusalStorm = new() { Threshold = 1, Window = TimeSpan.FromMinutes(1) },
            Throttle = new() { Factor = 1.5, Duration = TimeSpan.FromHours(1) },
            NearIdenticalPrompts = new() { MaxDistance = 40 },
            TokenVolumeSpike = new() { Factor = 0.5 },
        };
        options.Roles["superuser"] = new RoleAnomalyOptions();
        options.Roles[Roles.User].NewClientNetwork = (AnomalyAction)0;

        var problems = options.Problems().ToList();

        Assert.Contains(problems, p => p.StartsWith("Bastion:Anomaly:RefusalStorm", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Bastion:Anomaly:Throttle", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Bastion:Anomaly:NearIdenticalPrompts:MaxDistance", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Bastion:Anomaly:TokenVolumeSpike", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Bastion:Anomaly:Roles:superuser", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Bastion:Anomaly:Roles:user:NewClientNetwork", StringComparison.Ordinal));
        Assert.Equal(6, problems.Count);
    }
}
