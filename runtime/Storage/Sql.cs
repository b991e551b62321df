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
            p.Value = args[i] ?? DBNull.Value;
            command.Parameters.Add(p);
        }
        return command;
    }

    public static bool IsPostgres(this StoreTransaction transaction) => transaction.IsPostgres;
}
