namespace DataBuild.Runtime.Storage;

public enum StoreKind { Sqlite, Postgres }

/// <summary>Where the cluster's state lives: <c>sqlite:&lt;path&gt;</c> or <c>postgres:&lt;Npgsql connection string&gt;</c>.</summary>
public sealed record StoreLocation(StoreKind Kind, string Target)
{
    public const string Default = "sqlite:.databuild/databuild.db";

    public static StoreLocation Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var colon = value.IndexOf(':');
        if (colon > 0)
        {
            var scheme = value[..colon];
            var target = value[(colon + 1)..];
            if (target.Length > 0)
            {
                if (scheme.Equals("sqlite", StringComparison.OrdinalIgnoreCase)) return new(StoreKind.Sqlite, target);
                if (scheme.Equals("postgres", StringComparison.OrdinalIgnoreCase)
                    || scheme.Equals("postgresql", StringComparison.OrdinalIgnoreCase)) return new(StoreKind.Postgres, target);
            }
        }
        throw new FormatException(
            $"Store '{Redact(value)}' is not understood: use 'sqlite:<path>' or 'postgres:<Npgsql connection string>' " +
            "(for example postgres:Host=127.0.0.1;Port=5432;Username=databuild;Password=...;Database=databuild).");
    }

    /// <summary>A description safe for logs: a PostgreSQL password is never printed.</summary>
    public override string ToString() => Kind == StoreKind.Sqlite ? $"sqlite:{Target}" : $"postgres:{Redact(Target)}";

    private static string Redact(string s) =>
        System.Text.RegularExpressions.Regex.Replace(s, @"(?i)(password|pwd)\s*=\s*[^;]*", "$1=***");
}
