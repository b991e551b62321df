using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;
using DataBuild.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace DataBuild.Tests.Api;

/// <summary>HTTP API v1 for wants and partitions, end to end over HTTP, against every store.</summary>
public abstract class WantsApiConformance : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-api-").FullName;
    protected ManualTimeProvider Clock { get; } = new(new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero));
    protected string Store { get; private set; } = "";
    protected string Graph { get; private set; } = "";
    protected InProcessSilo Silo { get; private set; } = null!;
    private HttpClient Http => Silo.Http;

    protected abstract Task<string> FreshStoreAsync(string folder);

    public async Task InitializeAsync()
    {
        Store = await FreshStoreAsync(_folder);
        Graph = TestGraphs.Write(_folder);
        Silo = await InProcessSilo.StartAsync(Store, Graph, Clock);
    }

    public async Task DisposeAsync()
    {
        await Silo.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    private async Task<JsonElement> CreateAsync(object body, HttpStatusCode expected = HttpStatusCode.Created, string? key = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/wants") { Content = JsonContent.Create(body) };
        if (key is not null) request.Headers.Add("Idempotency-Key", key);
        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"expected {expected}, got {response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private async Task<JsonElement> GetJsonAsync(string path)
    {
        using var response = await Http.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private Task<JsonElement> WantAsync(string id) => GetJsonAsync($"/api/v1/wants/{id}");

    private Task<JsonElement> UntilWantAsync(string id, Func<JsonElement, bool> done, string what) =>
        Eventually.UntilAsync(() => WantAsync(id), done, Deadline, what);

    private static string Id(JsonElement want) => want.GetProperty("want_id").GetString()!;

    [Fact]
    public async Task A_want_is_created_listed_read_and_cancelled()
    {
        var want = await CreateAsync(new { partitions = new[] { "ext/a", "built/b" }, data_timestamp = "2024-01-01", ttl_seconds = 86400, sla_seconds = 3600, comment = "daily", source = new { type = "cli", name = "ana" } });
        Assert.True(Guid.TryParse(Id(want), out _));
        Assert.Equal("idle", want.GetProperty("status").GetString());
        Assert.Equal("2024-01-01T00:00:00.000Z", want.GetProperty("data_timestamp").GetString());
        Assert.Equal("2024-01-02T00:00:00.000Z", want.GetProperty("ttl_deadline").GetString());
        Assert.Equal("2024-01-01T01:00:00.000Z", want.GetProperty("sla_deadline").GetString());
        Assert.Equal("cli", want.GetProperty("source").GetProperty("type").GetString());
        Assert.Equal(Id(want), want.GetProperty("root_want_id").GetString());

        // Not filtered by status here: built/b's job may already have moved the want on to building.
        var list = await GetJsonAsync("/api/v1/wants?partition=ext/a&source=cli");
        Assert.Equal([Id(want)], list.GetProperty("wants").EnumerateArray().Select(Id));
        Assert.Empty((await GetJsonAsync("/api/v1/wants?source=dashboard")).GetProperty("wants").EnumerateArray());

        var detail = await WantAsync(Id(want));
        Assert.Equal(["ext/a", "built/b"], detail.GetProperty("partition_states").EnumerateArray().Select(p => p.GetProperty("ref").GetString()));
        Assert.Equal("missing", detail.GetProperty("partition_states")[0].GetProperty("status").GetString());
        Assert.Equal("want_create", detail.GetProperty("timeline")[0].GetProperty("type").GetString());

        using var cancel = await Http.DeleteAsync($"/api/v1/wants/{Id(want)}");
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        Assert.Equal("cancelled", (await cancel.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());
        Assert.Equal([Id(want)], (await GetJsonAsync("/api/v1/wants?status=cancelled")).GetProperty("wants").EnumerateArray().Select(Id));
        using var again = await Http.DeleteAsync($"/api/v1/wants/{Id(want)}");
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Equal("application/problem+json", again.Content.Headers.ContentType?.MediaType);
        // The timeline also shows the job run and partition events of its partitions; the want's own are these.
        var timeline = (await WantAsync(Id(want))).GetProperty("timeline").EnumerateArray().Select(e => e.GetProperty("type").GetString()!);
        Assert.Equal(["want_create", "want_cancel"], timeline.Where(t => t.StartsWith("want_", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Wants_created_at_once_read_back_exactly_as_they_were_created()
    {
        // Created together, their rows commit in shared transactions (on PostgreSQL, as one statement per table).
        var created = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => CreateAsync(i % 2 == 0
            ? new { partitions = new[] { $"ext/together/{i}" }, data_timestamp = (string?)"2024-01-01", ttl_seconds = (int?)86400 + i, sla_seconds = (int?)60 + i, comment = (string?)$"n{i}", source = new { type = "cli", name = $"user{i}" } }
            : new { partitions = new[] { $"ext/together/{i}" }, data_timestamp = (string?)null, ttl_seconds = (int?)null, sla_seconds = (int?)null, comment = (string?)null, source = new { type = "api", name = "" } })));

        for (var i = 0; i < created.Length; i++)
        {
            var read = await WantAsync(Id(created[i]));
            foreach (var field in new[] { "want_id", "status", "data_timestamp", "ttl_seconds", "sla_seconds", "ttl_deadline", "sla_deadline", "comment", "source", "root_want_id" })
                Assert.Equal(created[i].GetProperty(field).GetRawText(), read.GetProperty(field).GetRawText());
            Assert.Equal([$"ext/together/{i}"], read.GetProperty("partitions").EnumerateArray().Select(p => p.GetString()));
            Assert.Equal(i % 2 == 0 ? $"n{i}" : null, read.GetProperty("comment").GetString());
            Assert.Equal([Id(created[i])], (await GetJsonAsync($"/api/v1/wants?partition=ext/together/{i}")).GetProperty("wants").EnumerateArray().Select(Id));
        }
        // Each want's partition hears of it in a turn of its own, and lists it as waiting.
        for (var i = 0; i < created.Length; i++)
            await Eventually.UntilAsync(async () =>
            {
                using var response = await Http.GetAsync($"/api/v1/partitions/{Uri.EscapeDataString($"ext/together/{i}")}");
                return response.IsSuccessStatusCode ? JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone() : default;
            }, p => p.ValueKind == JsonValueKind.Object && p.GetProperty("status").GetString() == "missing", Deadline, $"partition {i} listed");
    }

    [Fact]
    public async Task Lists_page_with_next_after()
    {
        var ids = new List<string>();
        for (var i = 0; i < 5; i++) ids.Add(Id(await CreateAsync(new { partitions = new[] { $"ext/p{i}" } })));
        var first = await GetJsonAsync("/api/v1/wants?limit=3");
        var after = first.GetProperty("next_after").GetString();
        var second = await GetJsonAsync($"/api/v1/wants?limit=3&after={after}");
        Assert.Equal(ids, first.GetProperty("wants").EnumerateArray().Concat(second.GetProperty("wants").EnumerateArray()).Select(Id));
        Assert.Equal(JsonValueKind.Null, second.GetProperty("next_after").ValueKind);
    }

    [Fact]
    public async Task An_idempotency_key_returns_the_first_want_for_a_repeated_request()
    {
        var body = new { partitions = new[] { "ext/idem" } };
        var first = await CreateAsync(body, key: "order-42");
        var repeats = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => CreateAsync(body, key: "order-42")));
        Assert.All(repeats, r => Assert.Equal(Id(first), Id(r)));
        var concurrent = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => CreateAsync(body, key: "order-43")));
        Assert.Single(concurrent.Select(Id).Distinct());
        Assert.Equal(2, (await GetJsonAsync("/api/v1/wants")).GetProperty("wants").GetArrayLength());

        var reused = await CreateAsync(new { partitions = new[] { "ext/other" } }, HttpStatusCode.UnprocessableEntity, key: "order-42");
        Assert.Equal("Idempotency-Key reused", reused.GetProperty("title").GetString());
    }

    public static TheoryData<string, HttpStatusCode, string> InvalidBodies => new()
    {
        { """{"partitions": [""]}""", HttpStatusCode.UnprocessableEntity, "Invalid partition ref" },
        { $$"""{"partitions": ["ext/{{new string('x', 1100)}}"]}""", HttpStatusCode.UnprocessableEntity, "Invalid partition ref" },
        { """{"partitions": ["ext/has space"]}""", HttpStatusCode.UnprocessableEntity, "Invalid partition ref" },
        { """{"partitions": ["ext/tab\there"]}""", HttpStatusCode.UnprocessableEntity, "Invalid partition ref" },
        { """{"partitions": ["ext/bell\u0007"]}""", HttpStatusCode.UnprocessableEntity, "Invalid partition ref" },
        { """{"partitions": []}""", HttpStatusCode.UnprocessableEntity, "Invalid partitions" },
        { $$"""{"partitions": [{{string.Join(",", Enumerable.Range(0, 1001).Select(i => $"\"ext/{i}\""))}}]}""", HttpStatusCode.UnprocessableEntity, "Invalid partitions" },
        { """{"partitions": ["ext/a", "ext/a"]}""", HttpStatusCode.UnprocessableEntity, "Invalid partitions" },
        { """{"partitions": ["nobody/owns/this"]}""", HttpStatusCode.UnprocessableEntity, "Unknown partition" },
        { """{"partitions": [42]}""", HttpStatusCode.UnprocessableEntity, "Invalid partition ref" },
        { """{"partitions": ["ext/a"], "ttl_seconds": -5}""", HttpStatusCode.UnprocessableEntity, "Invalid ttl_seconds" },
        { """{"partitions": ["ext/a"], "ttl_seconds": 0}""", HttpStatusCode.UnprocessableEntity, "Invalid ttl_seconds" },
        { """{"partitions": ["ext/a"], "ttl_seconds": 999999999999}""", HttpStatusCode.UnprocessableEntity, "Invalid ttl_seconds" },
        { """{"partitions": ["ext/a"], "ttl_seconds": 1.5}""", HttpStatusCode.UnprocessableEntity, "Invalid ttl_seconds" },
        { """{"partitions": ["ext/a"], "sla_seconds": -1}""", HttpStatusCode.UnprocessableEntity, "Invalid sla_seconds" },
        { """{"partitions": ["ext/a"], "ttl_seconds": 60, "sla_seconds": 120}""", HttpStatusCode.UnprocessableEntity, "Invalid sla_seconds" },
        { """{"partitions": ["ext/a"], "data_timestamp": "yesterday"}""", HttpStatusCode.UnprocessableEntity, "Invalid data_timestamp" },
        { """{"partitions": ["ext/a"], "data_timestamp": "2024-13-45"}""", HttpStatusCode.UnprocessableEntity, "Invalid data_timestamp" },
        { """{"partitions": ["ext/a"], "data_timestamp": "2024-01-01T09:00:00"}""", HttpStatusCode.UnprocessableEntity, "Invalid data_timestamp" },
        { """{"partitions": ["ext/a"], "data_timestamp": -3}""", HttpStatusCode.UnprocessableEntity, "Invalid data_timestamp" },
        { """{"partitions": ["ext/a"], "source": "robot"}""", HttpStatusCode.UnprocessableEntity, "Invalid source" },
        { """{"partitions": ["ext/a"], "ttl": 60}""", HttpStatusCode.UnprocessableEntity, "Unknown field" },
        { """["ext/a"]""", HttpStatusCode.UnprocessableEntity, "Invalid want" },
        { """{"partitions": ["ext/a"]""", HttpStatusCode.BadRequest, "Malformed JSON" },
        { "", HttpStatusCode.BadRequest, "Malformed JSON" },
    };

    [Theory]
    [MemberData(nameof(InvalidBodies))]
    public async Task Invalid_wants_get_a_precise_problem_and_leave_nothing_behind(string body, HttpStatusCode status, string title)
    {
        using var response = await Http.PostAsync("/api/v1/wants", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {status}, got {response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(text).RootElement;
        Assert.Equal(title, problem.GetProperty("title").GetString());
        Assert.False(string.IsNullOrWhiteSpace(problem.GetProperty("detail").GetString()));
        Assert.Empty((await GetJsonAsync("/api/v1/wants")).GetProperty("wants").EnumerateArray());
        Assert.Empty((await GetJsonAsync("/api/v1/events")).GetProperty("events").EnumerateArray());
    }

    [Fact]
    public async Task A_body_over_one_mebibyte_is_refused_with_413()
    {
        var huge = $$"""{"partitions": ["ext/a"], "comment": "{{new string('x', 1_100_000)}}"}""";
        using var response = await Http.PostAsync("/api/v1/wants", new StringContent(huge, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Theory]
    [InlineData("GET", "/api/v1/wants/4f1c1d9e-0000-4000-8000-000000000000", HttpStatusCode.NotFound)]
    [InlineData("DELETE", "/api/v1/wants/4f1c1d9e-0000-4000-8000-000000000000", HttpStatusCode.NotFound)]
    [InlineData("GET", "/api/v1/wants/not-a-uuid", HttpStatusCode.NotFound)]
    [InlineData("GET", "/api/v1/wants?status=sleeping", HttpStatusCode.BadRequest)]
    [InlineData("GET", "/api/v1/wants?limit=0", HttpStatusCode.BadRequest)]
    [InlineData("GET", "/api/v1/partitions?pattern=(", HttpStatusCode.BadRequest)]
    [InlineData("GET", "/api/v1/partitions/nobody%2Fowns", HttpStatusCode.NotFound)]
    [InlineData("POST", "/api/v1/partitions/built%2Fb/available", HttpStatusCode.UnprocessableEntity)]
    [InlineData("POST", "/api/v1/partitions/nobody%2Fowns/available", HttpStatusCode.UnprocessableEntity)]
    [InlineData("POST", "/api/v1/partitions/ext%2Fwith%20space/available", HttpStatusCode.UnprocessableEntity)]
    public async Task Unknown_ids_and_bad_queries_are_problems_not_500s(string method, string path, HttpStatusCode status)
    {
        using var response = await Http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_want_expires_at_its_ttl_deadline_under_a_fake_clock()
    {
        var want = await CreateAsync(new { partitions = new[] { "ext/late" }, ttl_seconds = 3600 });
        Clock.Advance(TimeSpan.FromMinutes(59));
        Assert.Equal("idle", (await WantAsync(Id(want))).GetProperty("status").GetString());
        Clock.Advance(TimeSpan.FromMinutes(1));
        var expired = await UntilWantAsync(Id(want), w => w.GetProperty("status").GetString() == "expired", "expiry");
        Assert.Equal("2024-01-01T01:00:00.000Z", expired.GetProperty("finished_at").GetString());
        Assert.Contains("want_expired", expired.GetProperty("timeline").EnumerateArray().Select(e => e.GetProperty("type").GetString()));
        // An expired want stays expired even if its partition shows up later.
        await Http.PostAsync("/api/v1/partitions/ext%2Flate/available", null);
        Assert.Equal("expired", (await WantAsync(Id(want))).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_missed_sla_is_flagged_at_its_deadline_and_the_want_is_still_satisfied_late()
    {
        var want = await CreateAsync(new { partitions = new[] { "ext/slow" }, sla_seconds = 600 });
        Clock.Advance(TimeSpan.FromMinutes(10));
        var violated = await UntilWantAsync(Id(want), w => w.GetProperty("sla_violated").GetBoolean(), "the SLA violation");
        Assert.Equal("2024-01-01T00:10:00.000Z", violated.GetProperty("sla_violated_at").GetString());

        using var available = await Http.PostAsync("/api/v1/partitions/ext%2Fslow/available", null);
        Assert.Equal(HttpStatusCode.OK, available.StatusCode);
        var satisfied = await UntilWantAsync(Id(want), w => w.GetProperty("status").GetString() == "satisfied", "late satisfaction");
        Assert.True(satisfied.GetProperty("sla_violated").GetBoolean());
    }

    [Fact]
    public async Task A_want_whose_deadlines_are_already_past_is_handled_at_once()
    {
        var want = await CreateAsync(new { partitions = new[] { "ext/old" }, data_timestamp = "2023-06-01", ttl_seconds = 86400, sla_seconds = 3600 });
        var expired = await UntilWantAsync(Id(want), w => w.GetProperty("status").GetString() == "expired", "immediate expiry");
        Assert.True(expired.GetProperty("sla_violated").GetBoolean());
        // Same logical want, same deadlines, whenever it is created.
        Clock.Advance(TimeSpan.FromDays(3));
        var again = await CreateAsync(new { partitions = new[] { "ext/old" }, data_timestamp = "2023-06-01", ttl_seconds = 86400, sla_seconds = 3600 });
        Assert.Equal(expired.GetProperty("ttl_deadline").GetString(), again.GetProperty("ttl_deadline").GetString());
        Assert.Equal(expired.GetProperty("sla_deadline").GetString(), again.GetProperty("sla_deadline").GetString());
    }

    [Fact]
    public async Task A_want_created_through_the_API_has_no_grain_state_until_its_first_turn_which_takes_it_from_the_wants_row()
    {
        var created = await CreateAsync(new { partitions = new[] { "ext/intake/a", "ext/intake/b" }, data_timestamp = "2024-01-01T00:00:00Z",
            ttl_seconds = 7200, sla_seconds = 3600, comment = "nightly", source = new { type = "cli", name = "ops" } });
        var want = Id(created);
        // Created without a turn of its grain (WantIntake): the want's rows are written, its grain's state is not.
        Assert.Equal(0, await CountAsync($"SELECT count(*) FROM grain_state WHERE grain_type = 'want' AND grain_key = '{want}'"));

        // Its first turn (a cancel) runs on the state its wants row gives it, and writes it.
        using var cancel = await Http.DeleteAsync($"/api/v1/wants/{want}?comment=not%20needed");
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        var cancelled = await GetJsonAsync($"/api/v1/wants/{want}");
        Assert.Equal("cancelled", cancelled.GetProperty("status").GetString());
        foreach (var field in new[] { "partitions", "data_timestamp", "ttl_deadline", "sla_deadline", "comment", "source", "root_want_id", "created_at" })
            Assert.Equal(created.GetProperty(field).GetRawText(), cancelled.GetProperty(field).GetRawText());
        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM grain_state WHERE grain_type = 'want' AND grain_key = '{want}'"));
        using var again = await Http.DeleteAsync($"/api/v1/wants/{want}");
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
    }

    [Fact]
    public async Task Two_hundred_concurrent_wants_for_one_external_partition_are_satisfied_by_one_available_call()
    {
        var ids = await Task.WhenAll(Enumerable.Range(0, 200).Select(async _ => Id(await CreateAsync(new { partitions = new[] { "ext/shared" } }))));
        Assert.Equal(200, ids.Distinct().Count());
        using var available = await Http.PostAsync("/api/v1/partitions/ext%2Fshared/available", null);
        Assert.Equal(HttpStatusCode.OK, available.StatusCode);

        await Eventually.UntilAsync(() => GetJsonAsync("/api/v1/wants?status=satisfied&limit=1000"),
            page => page.GetProperty("wants").GetArrayLength() == 200, Deadline, "all 200 wants to be satisfied");
        var partition = await GetJsonAsync("/api/v1/partitions/ext%2Fshared");
        Assert.Equal("available", partition.GetProperty("status").GetString());
        Assert.Equal("external", partition.GetProperty("owner").GetProperty("kind").GetString());
        Assert.Single((await GetJsonAsync("/api/v1/partitions?status=available&pattern=ext/.*")).GetProperty("partitions").EnumerateArray());
    }

    [Fact]
    public async Task A_want_for_an_external_partition_waits_quietly_is_counted_and_is_satisfied_when_the_partition_becomes_available()
    {
        var want = Id(await CreateAsync(new { partitions = new[] { "ext/quiet" } }));
        // Counted and listed as soon as the want is created, though the partition's grain took no turn for it.
        var partition = await GetJsonAsync("/api/v1/partitions/ext%2Fquiet");
        Assert.Equal("missing", partition.GetProperty("status").GetString());
        Assert.Equal(1, partition.GetProperty("waiting_wants").GetInt32());
        Assert.Single((await GetJsonAsync("/api/v1/partitions?status=missing&pattern=ext/quiet")).GetProperty("partitions").EnumerateArray());
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM grain_state WHERE grain_type = 'partition' AND grain_key = 'ext/quiet'"));
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM reminders WHERE grain_type = 'partition' AND grain_key = 'ext/quiet'"));

        using var available = await Http.PostAsync("/api/v1/partitions/ext%2Fquiet/available", null);
        Assert.Equal(HttpStatusCode.OK, available.StatusCode);
        var satisfied = await UntilWantAsync(want, w => w.GetProperty("status").GetString() == "satisfied", "the quiet want to be satisfied");
        // The partition's move to available names the want, so it is on the want's timeline.
        Assert.Contains("partition_status_changed", satisfied.GetProperty("timeline").EnumerateArray().Select(e => e.GetProperty("type").GetString()));
        Assert.Equal(0, (await GetJsonAsync("/api/v1/partitions/ext%2Fquiet")).GetProperty("waiting_wants").GetInt32());
    }

    [Fact]
    public async Task Partitions_only_wants_name_are_listed_as_missing_in_ref_order_with_those_that_have_rows()
    {
        foreach (var name in new[] { "a", "c" })
        {
            using var available = await Http.PostAsync($"/api/v1/partitions/ext%2Flisted%2F{name}/available", null);
            Assert.Equal(HttpStatusCode.OK, available.StatusCode);
        }
        var want = Id(await CreateAsync(new { partitions = new[] { "ext/listed/b", "ext/listed/d" } }));
        await CreateAsync(new { partitions = new[] { "ext/listed/d" } });
        // A want of a partition no job builds gives it no row; it is listed from the wants that name it.
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM partitions WHERE partition_ref IN ('ext/listed/b', 'ext/listed/d')"));

        // One page at a time, as a client pages through them.
        var seen = new List<(string Ref, string Status, int Waiting)>();
        string? after = null;
        do
        {
            var page = await GetJsonAsync($"/api/v1/partitions?pattern=ext/listed/.*&limit=1{(after is null ? "" : $"&after={Uri.EscapeDataString(after)}")}");
            seen.AddRange(page.GetProperty("partitions").EnumerateArray().Select(p =>
                (p.GetProperty("ref").GetString()!, p.GetProperty("status").GetString()!, p.GetProperty("waiting_wants").GetInt32())));
            after = page.GetProperty("next_after").GetString();
        } while (after is not null);
        Assert.Equal([("ext/listed/a", "available", 0), ("ext/listed/b", "missing", 1), ("ext/listed/c", "available", 0), ("ext/listed/d", "missing", 2)], seen);

        var missing = await GetJsonAsync("/api/v1/partitions?status=missing&pattern=ext/listed/.*");
        Assert.Equal(["ext/listed/b", "ext/listed/d"], missing.GetProperty("partitions").EnumerateArray().Select(p => p.GetProperty("ref").GetString()));
        var availableOnly = await GetJsonAsync("/api/v1/partitions?status=available&pattern=ext/listed/.*");
        Assert.Equal(["ext/listed/a", "ext/listed/c"], availableOnly.GetProperty("partitions").EnumerateArray().Select(p => p.GetProperty("ref").GetString()));
        var d = await GetJsonAsync("/api/v1/partitions/ext%2Flisted%2Fd");
        Assert.Equal("missing", d.GetProperty("status").GetString());
        Assert.Equal(2, d.GetProperty("waiting_wants").GetInt32());
        var states = (await GetJsonAsync($"/api/v1/wants/{want}")).GetProperty("partition_states").EnumerateArray()
            .Select(p => (p.GetProperty("ref").GetString(), p.GetProperty("status").GetString(), p.GetProperty("waiting_wants").GetInt32()));
        Assert.Equal([("ext/listed/b", "missing", 1), ("ext/listed/d", "missing", 2)], states);
    }

    [Fact]
    public async Task Paging_past_several_chunks_of_partitions_with_rows_finds_each_partition_only_wants_name_once_and_in_order()
    {
        // 1,200 partitions with rows (read-model rows, as their grains would leave them), more than two of the API's
        // 500-row chunks, and three partitions without rows that sort between and after them.
        var values = string.Join(", ", Enumerable.Range(0, 1200).Select(i => $"('ext/many/{i:D4}', 'available', 1, 1, NULL, NULL, 0)"));
        await ExecuteAsync($"INSERT INTO partitions (partition_ref, status, updated_at, available_at, job_run_id, reason, waiting_wants) VALUES {values}");
        string[] unwritten = ["ext/many/0250x", "ext/many/0700x", "ext/many/1199x"];
        foreach (var partition in unwritten) await CreateAsync(new { partitions = new[] { partition } });

        var seen = new List<string>();
        string? after = null;
        do
        {
            var page = await GetJsonAsync($"/api/v1/partitions?pattern=ext/many/.*&limit=1000{(after is null ? "" : $"&after={Uri.EscapeDataString(after)}")}");
            seen.AddRange(page.GetProperty("partitions").EnumerateArray().Select(p => p.GetProperty("ref").GetString()!));
            after = page.GetProperty("next_after").GetString();
        } while (after is not null);
        Assert.Equal(Enumerable.Range(0, 1200).Select(i => $"ext/many/{i:D4}").Concat(unwritten).Order(StringComparer.Ordinal), seen);

        var missing = await GetJsonAsync("/api/v1/partitions?status=missing&pattern=ext/many/.*");
        Assert.Equal(unwritten, missing.GetProperty("partitions").EnumerateArray().Select(p => p.GetProperty("ref").GetString()));
    }

    [Fact]
    public async Task A_want_for_an_external_partition_that_is_available_already_is_satisfied_without_waiting()
    {
        using (var available = await Http.PostAsync("/api/v1/partitions/ext%2Fearly/available", null))
            Assert.Equal(HttpStatusCode.OK, available.StatusCode);
        var want = Id(await CreateAsync(new { partitions = new[] { "ext/early" } }));
        await UntilWantAsync(want, w => w.GetProperty("status").GetString() == "satisfied", "the want of an available partition to be satisfied");
    }

    [Fact]
    public async Task A_quiet_want_cancelled_before_its_partition_is_available_stays_cancelled_and_is_not_counted()
    {
        var want = Id(await CreateAsync(new { partitions = new[] { "ext/left" } }));
        using (var cancel = await Http.DeleteAsync($"/api/v1/wants/{want}")) Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        Assert.Equal(0, (await GetJsonAsync("/api/v1/partitions/ext%2Fleft")).GetProperty("waiting_wants").GetInt32());
        using (var available = await Http.PostAsync("/api/v1/partitions/ext%2Fleft/available", null))
            Assert.Equal(HttpStatusCode.OK, available.StatusCode);
        var cancelled = await WantAsync(want);
        Assert.Equal("cancelled", cancelled.GetProperty("status").GetString());
        // The partition's move to available does not name a want that had left.
        Assert.DoesNotContain("partition_status_changed", cancelled.GetProperty("timeline").EnumerateArray().Select(e => e.GetProperty("type").GetString()));
    }

    [Fact]
    public async Task A_quiet_want_of_a_partition_that_a_redeploy_gives_to_a_job_is_satisfied_when_the_job_builds_it()
    {
        await RestartWithGraphAsync("""{ "graph_label": "tests", "jobs": [], "external_patterns": ["ext/.*", "moved/.*"] }""");
        var quiet = Id(await CreateAsync(new { partitions = new[] { "moved/1" } }));
        await RestartWithGraphAsync("""
            { "graph_label": "tests", "jobs": [ { "label": "mover", "entrypoint": "/bin/true", "partition_patterns": ["moved/.*"] } ],
              "external_patterns": ["ext/.*"] }
            """);
        var building = Id(await CreateAsync(new { partitions = new[] { "moved/1" } })); // dispatches the job
        await UntilWantAsync(building, w => w.GetProperty("status").GetString() == "satisfied", "the new want to be satisfied by the job");
        await UntilWantAsync(quiet, w => w.GetProperty("status").GetString() == "satisfied", "the quiet want to be told by the built partition");
    }

    private async Task RestartWithGraphAsync(string graph)
    {
        await Silo.DisposeAsync();
        Graph = Path.Combine(_folder, $"graph-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(Graph, graph);
        Silo = await InProcessSilo.StartAsync(Store, Graph, Clock);
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = await Silo.Services.GetRequiredService<IDataStore>().OpenConnectionAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private async Task<long> CountAsync(string sql)
    {
        await using var connection = await Silo.Services.GetRequiredService<IDataStore>().OpenConnectionAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_silo_restart_between_creation_and_the_sla_deadline_still_flags_the_violation()
    {
        var want = await CreateAsync(new { partitions = new[] { "ext/restart" }, sla_seconds = 1800 });
        await Silo.DisposeAsync();
        Clock.Advance(TimeSpan.FromHours(1)); // the deadline passes while no silo runs
        Silo = await InProcessSilo.StartAsync(Store, Graph, Clock);
        var violated = await UntilWantAsync(Id(want), w => w.GetProperty("sla_violated").GetBoolean(), "the violation after restart");
        Assert.Equal("idle", violated.GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_partitions_older_word_delivered_late_does_not_move_its_want_back()
    {
        // Regression: a partition's words to a want are delivered concurrently; "building" delivered after the later
        // "waiting upstream" left the want showing building while its partition waited upstream, for good.
        var want = Id(await CreateAsync(new { partitions = new[] { "ext/late" } }));
        var sentAt = Clock.GetUtcNow().ToUnixTimeMilliseconds();
        await SendWordAsync(want, "upstream:ext/late", sentAt);
        await UntilWantAsync(want, w => w.GetProperty("status").GetString() == "upstream_building", "the want to hear its partition waits upstream");

        await SendWordAsync(want, "building:ext/late", sentAt - 5); // sent earlier, delivered now
        await Eventually.UntilAsync(() => PendingMessagesAsync(want), n => n == 0, Deadline, "the late word to be delivered");
        Assert.Equal("upstream_building", (await WantAsync(want)).GetProperty("status").GetString());

        Clock.Advance(TimeSpan.FromMilliseconds(5));
        await SendWordAsync(want, "building:ext/late", sentAt + 5); // a newer word still applies
        await UntilWantAsync(want, w => w.GetProperty("status").GetString() == "building", "the want to hear its partition builds again");
    }

    /// <summary>A partition's word to a want, as its turn writes it: a one-shot reminder due (and sent) at <paramref name="sentAt"/>.</summary>
    private async Task SendWordAsync(string want, string name, long sentAt)
    {
        var store = Silo.Services.GetRequiredService<IDataStore>();
        await using (var transaction = await store.BeginAsync())
        {
            ReminderTable.Upsert(transaction, new GrainId("want", want), name, sentAt, 0);
            await transaction.CommitAsync();
        }
        store.PublishRemindersChanged();
    }

    private async Task<long> PendingMessagesAsync(string want)
    {
        await using var connection = await Silo.Services.GetRequiredService<IDataStore>().OpenConnectionAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT count(*) FROM reminders WHERE grain_type = 'want' AND grain_key = '{want}' AND name LIKE 'building:%'";
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task The_openapi_document_describes_the_api()
    {
        var document = await GetJsonAsync("/openapi/v1.json");
        var paths = document.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Contains("/api/v1/wants", paths);
        Assert.Contains("/api/v1/wants/{wantId}", paths);
        Assert.Contains("/api/v1/partitions/{ref}/available", paths);
        Assert.Contains("/api/v1/events", paths);
    }
}

public sealed class SqliteWantsApiTests : WantsApiConformance
{
    protected override Task<string> FreshStoreAsync(string folder) => Task.FromResult($"sqlite:{Path.Combine(folder, "databuild.db")}");
}

public sealed class PostgresWantsApiTests(PostgresDatabase database) : WantsApiConformance, IClassFixture<PostgresDatabase>
{
    protected override async Task<string> FreshStoreAsync(string folder) => $"postgres:{await database.CreateAnotherAsync()}";
}
