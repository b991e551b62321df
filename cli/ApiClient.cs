using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;

namespace DataBuild.Cli;

/// <summary>The HTTP API, with failures turned into messages that say what to do.</summary>
public sealed class ApiClient(string server) : IDisposable
{
    private readonly HttpClient _http = new() { BaseAddress = new Uri(server.TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(100) };

    public string Server { get; } = server;

    public Task<JsonElement> GetAsync(string path, CancellationToken ct = default) => SendAsync(new HttpRequestMessage(HttpMethod.Get, path), ct);

    public Task<JsonElement> PostAsync(string path, object? body, CancellationToken ct = default) =>
        SendAsync(new HttpRequestMessage(HttpMethod.Post, path) { Content = body is null ? null : JsonContent.Create(body) }, ct);

    public Task<JsonElement> DeleteAsync(string path, CancellationToken ct = default) => SendAsync(new HttpRequestMessage(HttpMethod.Delete, path), ct);

    private async Task<JsonElement> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, ct);
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException || e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError)
        {
            throw Unreachable(e.Message);
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            throw Unreachable("no answer within 100 s");
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            JsonElement json;
            try { json = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone(); }
            catch (JsonException) { throw new CliException(ExitCodes.Error, $"{Server} answered {(int)response.StatusCode} with something that is not JSON; is it a DataBuild silo?"); }
            if (response.IsSuccessStatusCode) return json;
            var title = json.ValueKind == JsonValueKind.Object && json.TryGetProperty("title", out var t) ? t.GetString() : response.ReasonPhrase;
            var detail = json.ValueKind == JsonValueKind.Object && json.TryGetProperty("detail", out var d) ? d.GetString() : null;
            throw new CliException(ExitCodes.Error,
                $"{title}{(detail is null ? "" : $": {detail}")} (HTTP {(int)response.StatusCode})");
        }
    }

    private CliException Unreachable(string why) => new(ExitCodes.Unreachable,
        $"cannot reach DataBuild at {Server} ({why}).\n" +
        "Start a silo with `dotnet run --project silo` (it listens on http://127.0.0.1:8080), or point at one with --server URL or DATABUILD_SERVER.");

    public void Dispose() => _http.Dispose();
}
