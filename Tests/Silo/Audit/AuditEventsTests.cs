using System.Net;
using System.Text.Json;
using Bastion.Audit;
using Bastion.Hosting;
using Bastion.Security;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Bastion.Tests.Silo.Audit;

/// <summary>
/// The events a running silo records, through its real HTTP edge: token exchanges, failed authentications as summaries
/// (not one record each), one metadata record per inference without the prompt or completion; and the chain verifies.
/// </summary>
[Collection(SiloCollection.Name)]
public sealed class AuditEventsTests(SiloFixture fixture)
{
    private const string Model = "bastion-tiny-gpt2";
    private TestSilo Silo => fixture.Silo;

    [Fact]
    public async Task TokenExchange_FailedAuthentications_AndInference_AreRecorded_WithoutSecretsOrPrompts()
    {
        var id = "audit-events-" + Guid.NewGuid().ToString("N");
        var apiKey = await Silo.CreateUserWithKeyAsync(id, "user");
        var pseudonym = Silo.Services.GetRequiredService<Pseudonymizer>().Pseudonymize(id);
        const string Prompt = "the secret launch code is tangerine";

        using (var exchange = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/auth/token", null, new { api_key = apiKey })))
        {
            Assert.Equal(HttpStatusCode.OK, exchange.StatusCode);
        }

        for (var i = 0; i < 5; i++)
        {
            using var refused = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Get, "/v1/me", "bst_not-a-real-key-" + i));
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        await Silo.Services.GetRequiredService<AuthenticationFailureSummary>().FlushAsync();

        using (var completion = await Silo.Http.SendAsync(TestSilo.Request(HttpMethod.Post, "/v1/completions", apiKey, new { model = Model, prompt = Prompt, max_tokens = 3 })))
        {
            Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        }

        // The inference record was queued before the response was written; a record awaited after it is committed after it.
        await Silo.Services.GetRequiredService<IAuditTrail>().RecordAsync(new AuditRecord(DateTimeOffset.UtcNow, "test.marker", null, null, "ok"));
        var records = await Silo.Services.GetRequiredService<AuditLedger>().ReadNewestAsync(1000, CancellationToken.None);

        var exchangeRecord = Assert.Single(records, r => r.Record.Action == "auth.token-exchange" && r.Record.Actor == pseudonym).Record;
        Assert.Equal("200", exchangeRecord.Outcome);
        Assert.False(string.IsNullOrEmpty(exchangeRecord.Detail!["key_id"]));

        // One summary for the five failures, however many there were.
        var summary = records.Select(r => r.Record).Where(r => r.Action == AuthenticationFailureSummary.Action).ToList();
        Assert.NotEmpty(summary);
        Assert.True(summary.Sum(r => long.Parse(r.Detail!["failures"], System.Globalization.CultureInfo.InvariantCulture)) >= 5);

        var inference = Assert.Single(records, r => r.Record.Action == "inference" && r.Record.Actor == pseudonym).Record;
        Assert.Equal(Model, inference.Detail!["model"]);
        Assert.Equal("3", inference.Detail["completion_tokens"]);
        Assert.True(int.Parse(inference.Detail["prompt_tokens"], System.Globalization.CultureInfo.InvariantCulture) > 0);

        // Neither the prompt, the user id nor the API key appears in any record.
        var all = JsonSerializer.Serialize(records.Select(r => r.Record).ToList());
        Assert.DoesNotContain("tangerine", all, StringComparison.Ordinal);
        Assert.DoesNotContain(id, all, StringComparison.Ordinal);
        Assert.DoesNotContain(apiKey, all, StringComparison.Ordinal);

        await using var connection = new NpgsqlConnection(Silo.Services.GetRequiredService<BastionDatabase>().RuntimeConnectionString);
        await connection.OpenAsync();
        var verification = await AuditVerifier.VerifyAsync(connection, Silo.Services.GetRequiredService<IKeyProvider>(), CancellationToken.None);
        Assert.True(verification.Intact, verification.Problem);
    }
}
