using DataBuild.Runtime.Storage.Postgres;
using DataBuild.Runtime.Storage.Sqlite;
using Microsoft.Extensions.Logging;

namespace DataBuild.Runtime.Storage;

public static class DataStore
{
    /// <summary>Opens the store a location names. The schema is not touched until <see cref="IDataStore.MigrateAsync"/>.</summary>
    public static IDataStore Open(StoreLocation location, TimeProvider? clock = null, ILoggerFactory? loggers = null) =>
        location.Kind switch
        {
            StoreKind.Sqlite => new SqliteStore(location, clock ?? TimeProvider.System),
            StoreKind.Postgres => new PostgresStore(location, clock ?? TimeProvider.System, loggers),
            _ => throw new ArgumentOutOfRangeException(nameof(location)),
        };
}
