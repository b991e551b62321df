using System.Data.Common;
using Npgsql;

namespace DataBuild.Runtime.Storage;

/// <summary>
/// Commands with positional parameters ($1, $2, …) that read the same on both providers: Npgsql binds them
/// by position, SQLite by the name "$n".
/// </summary>
public static class Sql
{
    public static DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql, params object?[] args)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return WithParameters(command, args);
    }

    /// <summary>A command to run now inside the transaction (which must hold no unsent deferred writes).</summary>
    public static DbCommand Command(this StoreTransaction transaction, string sql, params object?[] args) =>
        WithParameters(transaction.CreateCommand(sql), args);

    private static DbCommand WithParameters(DbCommand command, object?[] args)
    {
        var positional = command is NpgsqlCommand;
        for (var i = 0; i < args.Length; i++)
        {
            var p = command.CreateParameter();
            if (!positional) p.ParameterName = "$" + (i + 1);
            command.Parameters.Add(Bind(p, args[i]));
        }
        return command;
    }

    /// <summary>A nullable argument that keeps its type when null (<see cref="TypedNull"/>).</summary>
    public static object Arg(long? value) => value is { } v ? v : TypedNull.Int64;

    /// <inheritdoc cref="Arg(long?)"/>
    public static object Arg(int? value) => value is { } v ? v : TypedNull.Int32;

    /// <inheritdoc cref="Arg(long?)"/>
    public static object Arg(string? value) => value ?? (object)TypedNull.Text;

    /// <summary>Gives <paramref name="parameter"/> the argument's value, and a <see cref="TypedNull"/>'s type.</summary>
    internal static T Bind<T>(T parameter, object? arg) where T : DbParameter
    {
        RequireTyped(arg);
        if (arg is TypedNull typed) parameter.DbType = typed.Type;
        parameter.Value = arg is null or TypedNull ? DBNull.Value : arg;
        return parameter;
    }

    /// <summary>Debug builds (the tests) refuse an untyped null, so a new nullable argument cannot slip past <see cref="Arg(long?)"/>.</summary>
    [System.Diagnostics.Conditional("DEBUG")]
    private static void RequireTyped(object? arg)
    {
        if (arg is null) throw new ArgumentException("An untyped null argument: pass nullable values through Sql.Arg, so the statement stays prepared.");
    }

    public static bool IsPostgres(this StoreTransaction transaction) => transaction.IsPostgres;
}
