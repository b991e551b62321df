using System.Net.Http.Json;
using System.Text.Json;

namespace DataBuild.Tests.Infrastructure;

/// <summary>The want requests tests make of a silo's HTTP API, whichever way the silo runs (a process, or in the test's).</summary>
public static class WantRequests
{
    /// <summary>Declares a want for <paramref name="partitions"/> (POST /api/v1/wants) and returns its id.</summary>
    public static Task<string> CreateWantAsync(this HttpClient http, params string[] partitions) => http.PostWantAsync(new { partitions });

    /// <summary>Declares a want with the request <paramref name="body"/> (POST /api/v1/wants) and returns its id.</summary>
    public static async Task<string> PostWantAsync(this HttpClient http, object body)
    {
        using var created = await http.PostAsJsonAsync("/api/v1/wants", body);
        created.EnsureSuccessStatusCode();
        return (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("want_id").GetString()!;
    }

    /// <summary>The want's page (GET /api/v1/wants/{id}) once <paramref name="done"/> holds for it.</summary>
    public static Task<JsonElement> UntilWantAsync(this HttpClient http, string wantId, Func<JsonElement, bool> done, TimeSpan timeout, string what) =>
        Eventually.UntilAsync(async () => JsonDocument.Parse(await http.GetStringAsync($"/api/v1/wants/{wantId}")).RootElement.Clone(), done, timeout, what);
}
