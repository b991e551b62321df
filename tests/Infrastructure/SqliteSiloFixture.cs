namespace DataBuild.Tests.Infrastructure;

/// <summary>One silo process on its own SQLite file, shared by a test class.</summary>
public sealed class SqliteSiloFixture : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-silo-").FullName;

    public SiloProcess Silo { get; private set; } = null!;
    public string StorePath => Path.Combine(_folder, "databuild.db");

    public async Task InitializeAsync()
    {
        Silo = SiloProcess.Start($"sqlite:{StorePath}");
        await Silo.WaitReadyAsync();
    }

    public async Task DisposeAsync()
    {
        await Silo.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }
}
