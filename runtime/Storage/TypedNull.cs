using System.Data;

namespace DataBuild.Runtime.Storage;

/// <summary>
/// A null argument with the type its column has. Npgsql runs an auto-prepared statement unprepared (parsed and
/// planned again on the server) whenever a parameter's type differs from the one it was prepared with, and an
/// untyped null differs from every type: a statement with a nullable argument was planned again on most calls.
/// Pass nullable arguments through <see cref="Sql.Arg(long?)"/>.
/// </summary>
public sealed class TypedNull
{
    public static readonly TypedNull Int64 = new(DbType.Int64);
    public static readonly TypedNull Int32 = new(DbType.Int32);
    public static readonly TypedNull Text = new(DbType.String);

    private TypedNull(DbType type) => Type = type;

    public DbType Type { get; }
}
