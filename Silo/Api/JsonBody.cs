using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Bastion.Api;

/// <summary>
/// Reads a JSON request body. Failures become a 4xx problem that names the offending field, never
/// the serializer's own message (which would leak .NET type names).
/// </summary>
public static class JsonBody
{
    public static async Task<(T? Value, ProblemHttpResult? Problem)> ReadAsync<T>(HttpContext context, JsonTypeInfo<T> typeInfo)
        where T : class
    {
        if (!context.Request.HasJsonContentType())
        {
            return (null, Problems.UnsupportedMediaType());
        }

        try
        {
            var value = await JsonSerializer.DeserializeAsync(context.Request.Body, typeInfo, context.RequestAborted);
            return value is null ? (null, Problems.InvalidRequest("The request body must be a JSON object.")) : (value, null);
        }
        catch (JsonException exception)
        {
            var field = exception.Path is { Length: > 2 } path ? path[2..] : null;
            return (null, Problems.InvalidRequest(field is null
                ? "The request body is not valid JSON."
                : $"The field '{field}' is missing, repeated, malformed or of the wrong type."));
        }
        catch (BadHttpRequestException exception) when (exception.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, Problems.PayloadTooLarge());
        }
    }
}
