using System.Text.Json;
using Bastion.Access;
using Bastion.Api;
using Bastion.Users;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Bastion.Hosting;

/// <summary>
/// <c>/readyz</c> answers everyone with its status (200, or 503 when a check fails) from the shared,
/// briefly cached report; an admin gets a fresh report with each check's details (which silo part is
/// failing, which execution provider each model runs on).
/// </summary>
internal static class ReadinessWriter
{
    public static async Task WriteAsync(HttpContext context)
    {
        var reports = context.RequestServices.GetRequiredService<ReadinessReports>();
        var isAdmin = await IsAdminAsync(context);
        var report = isAdmin ? await reports.FreshAsync(context.RequestAborted) : await reports.SharedAsync(context.RequestAborted);
        context.Response.StatusCode = report.Status == HealthStatus.Unhealthy ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK;
        context.Response.Headers.CacheControl = "no-store";
        context.Response.ContentType = "application/json";
        await using var json = new Utf8JsonWriter(context.Response.Body);
        json.WriteStartObject();
        json.WriteString("status", report.Status.ToString());
        if (isAdmin)
        {
            json.WriteStartObject("checks");
            foreach (var (name, entry) in report.Entries)
            {
                json.WriteStartObject(name);
                json.WriteString("status", entry.Status.ToString());
                if (entry.Description is { } description)
                {
                    json.WriteString("description", description);
                }

                foreach (var (key, value) in entry.Data)
                {
                    json.WriteString(key, Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture));
                }

                json.WriteEndObject();
            }

            json.WriteEndObject();
        }

        json.WriteEndObject();
        await json.FlushAsync(context.RequestAborted);
    }

    private static async Task<bool> IsAdminAsync(HttpContext context)
    {
        if (context.RequestServices.GetService<CallerAuthenticator>() is not { } authenticator
            || await authenticator.AuthenticateAsync(context) is not { } caller)
        {
            return false;
        }

        try
        {
            var grains = context.RequestServices.GetRequiredService<IGrainFactory>();
            return (await grains.GetGrain<IUserGrain>(caller.Pseudonym).AuthorizeAsync(caller.Credential, Permission.ManageUsers)).IsAllowed;
        }
        catch (Exception exception) when (exception is TimeoutException or SiloUnavailableException or OrleansException)
        {
            // An unready cluster may not answer; the status alone is still the truth.
            return false;
        }
    }
}
