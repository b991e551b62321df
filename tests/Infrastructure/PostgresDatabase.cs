using DataBuild.Testing;

namespace DataBuild.Tests.Infrastructure;

/// <summary>Class fixture: each test class gets its own database on the shared server.</summary>
public sealed class PostgresDatabase : IAsyncLifetime
{
    public string ConnectionString { get; private set; } = "";

    public async Task InitializeAsync() =>
        ConnectionString = await (await PostgresServer.Instance).CreateDatabaseAsync();

    /// <summary>Another fresh database, for tests that need an empty one.</summary>
    public async Task<string> CreateAnotherAsync() => await (await PostgresServer.Instance).CreateDatabaseAsync();

    public Task DisposeAsync() => Task.CompletedTask;
}
