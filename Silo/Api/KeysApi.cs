using Bastion.Access;
using Bastion.Cluster;
using Bastion.Storage;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bastion.Api;

/// <summary>KEK rotation under <c>/admin/keys</c>; every route needs <see cref="Permission.ManageKeys"/>, and the changing ones are audited.</summary>
public static class KeysApi
{
    private const string RewrapPath = "/admin/keys/rewrap";

    public static IEndpointRouteBuilder MapKeysApi(this IEndpointRouteBuilder routes)
    {
        var keys = routes.MapGroup("/admin/keys").WithTags("Keys");
        keys.MapGet("", ListAsync).RequirePermission(Permission.ManageKeys)
            .WithSummary("Lists the key-encryption-key versions and the data keys each wraps.").Produces<KekList>();
        keys.MapPost("/rewrap", StartRewrapAsync).RequirePermission(Permission.ManageKeys).Audited("keys.rewrap")
            .WithSummary("Starts re-wrapping every data key under the current KEK version.").Produces<RewrapStatus>(StatusCodes.Status202Accepted).ProducesProblem(StatusCodes.Status409Conflict);
        keys.MapGet("/rewrap", RewrapStatusAsync).RequirePermission(Permission.ManageKeys)
            .WithSummary("Reads the progress of the re-wrap.").Produces<RewrapStatus>();
        keys.MapPost("/kek/{version}/retire", RetireAsync).RequirePermission(Permission.ManageKeys).Audited("keys.retire-kek")
            .WithSummary("Retires a KEK version that no data key uses any more.").Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        return routes;
    }

    private static async Task<JsonHttpResult<KekList>> ListAsync(KeyRotation rotation, CancellationToken cancellationToken)
    {
        var usage = await rotation.ListAsync(cancellationToken);
        return TypedResults.Json(new KekList([.. usage.Select(k => new KekEntry(k.Version, k.Current, k.Available, k.DataKeys))]), ApiJsonContext.Default.KekList);
    }

    private static async Task<Results<JsonHttpResult<RewrapStatus>, ProblemHttpResult>> StartRewrapAsync(
        HttpContext context, RewrapJob job, KeyRotation rotation, CancellationToken cancellationToken)
    {
        if (!job.TryStart())
        {
            context.Response.Headers.Location = RewrapPath;
            return Problems.Conflict($"A re-wrap is already running on this silo; follow it at {RewrapPath}.");
        }

        context.Response.Headers.Location = RewrapPath;
        var status = await StatusAsync(job, rotation, cancellationToken);
        return TypedResults.Json(status, ApiJsonContext.Default.RewrapStatus, statusCode: StatusCodes.Status202Accepted);
    }

    private static async Task<JsonHttpResult<RewrapStatus>> RewrapStatusAsync(
        RewrapJob job, KeyRotation rotation, CancellationToken cancellationToken) =>
        TypedResults.Json(await StatusAsync(job, rotation, cancellationToken), ApiJsonContext.Default.RewrapStatus);

    private static async Task<Results<NoContent, ProblemHttpResult>> RetireAsync(string version, KeyRotation rotation, CancellationToken cancellationToken)
    {
        if (!int.TryParse(version, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var number) || number < 1)
        {
            return Problems.InvalidRequest("'version' must be a positive KEK version number.");
        }

        var outcome = await rotation.RetireAsync(number, cancellationToken);
        return outcome.Result switch
        {
            KekRetireResult.Retired => TypedResults.NoContent(),
            KekRetireResult.Current => Problems.Conflict($"KEK version {number} is the current version; rotate to a new one and re-wrap before retiring it."),
            KekRetireResult.InUse => Problems.Conflict($"KEK version {number} still wraps {outcome.DataKeys} data key(s); run the re-wrap (POST {RewrapPath}) first."),
            KekRetireResult.Unused => Problems.Conflict($"KEK version {number} wraps no data key; Key Vault holds the keys, so retire it by disabling that version of the secret there."),
            _ => Problems.NotFound($"KEK version {number} does not exist or is already retired."),
        };
    }

    private static async Task<RewrapStatus> StatusAsync(RewrapJob job, KeyRotation rotation, CancellationToken cancellationToken)
    {
        var status = await rotation.RewrapStatusAsync(job.Progress, cancellationToken);
        return new RewrapStatus(
            status.State.ToString().ToLowerInvariant(), status.CurrentKekVersion, status.Total, status.Done, status.Remaining, status.StartedAt, status.FinishedAt, status.Error);
    }
}
