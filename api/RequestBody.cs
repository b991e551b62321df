using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace DataBuild.Api;

public static class RequestBody
{
    public const long MaxBytes = 1024 * 1024;

    /// <summary>Reads a JSON body of at most 1 MiB: 413 when larger, 400 when it is not JSON.</summary>
    public static async Task<(JsonElement Json, byte[] Raw)> ReadJsonAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.ContentLength > MaxBytes)
            throw new ProblemException(Problems.TooLarge("Request body too large", $"the body is {request.ContentLength} bytes; the limit is {MaxBytes} (1 MiB)"));
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = MaxBytes;
        using var buffer = new MemoryStream();
        try
        {
            await request.Body.CopyToAsync(buffer, cancellationToken);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw new ProblemException(Problems.TooLarge("Request body too large", $"the body is over the limit of {MaxBytes} bytes (1 MiB)"));
        }
        if (buffer.Length > MaxBytes)
            throw new ProblemException(Problems.TooLarge("Request body too large", $"the body is over the limit of {MaxBytes} bytes (1 MiB)"));
        var raw = buffer.ToArray();
        if (raw.Length == 0) throw new ProblemException(Problems.BadRequest("Malformed JSON", "the request body is empty; expected a JSON object"));
        try
        {
            using var document = JsonDocument.Parse(raw, new JsonDocumentOptions { MaxDepth = 32 });
            return (document.RootElement.Clone(), raw);
        }
        catch (JsonException e)
        {
            throw new ProblemException(Problems.BadRequest("Malformed JSON",
                $"the request body is not valid JSON: {e.Message.Split(" Path:")[0]} (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})"));
        }
    }
}
