using DataBuild.Runtime.Storage;

namespace DataBuild.Tests.EventLog;

public sealed class SqliteEventLogTests : EventLogConformance, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("databuild-sqlite-").FullName;

    protected override Task<IDataStore> OpenFreshStoreAsync() =>
        Task.FromResult(DataStore.Open(StoreLocation.Parse($"sqlite:{Path.Combine(_folder, "databuild.db")}")));

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
