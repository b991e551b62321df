using System.Globalization;
using System.Text.RegularExpressions;

namespace DataBuild.Cli;

/// <summary>Positional arguments and --options (with values, or flags) of one command.</summary>
public sealed class Arguments
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = [];

    public Arguments(IEnumerable<string> args, IReadOnlySet<string> flags)
    {
        var list = args.ToList();
        for (var i = 0; i < list.Count; i++)
        {
            var a = list[i];
            if (a == "--") { Positional.AddRange(list.Skip(i + 1)); break; }
            if (a.StartsWith("--", StringComparison.Ordinal) && a.Length > 2)
            {
                var eq = a.IndexOf('=');
                var name = eq > 0 ? a[2..eq] : a[2..];
                if (eq > 0) _options[name] = a[(eq + 1)..];
                else if (flags.Contains(name)) _options[name] = null;
                else if (i + 1 < list.Count) _options[name] = list[++i];
                else throw new CliException(ExitCodes.Usage, $"option --{name} needs a value");
            }
            else Positional.Add(a);
        }
    }

    public List<string> Positional { get; } = [];

    public string? Option(string name)
    {
        _used.Add(name);
        return _options.TryGetValue(name, out var v) ? v : null;
    }

    public bool Flag(string name)
    {
        _used.Add(name);
        return _options.ContainsKey(name);
    }

    /// <summary>Rejects options the command did not ask about (typos would otherwise be silently ignored).</summary>
    public void RejectUnknown()
    {
        var unknown = _options.Keys.Where(k => !_used.Contains(k)).ToList();
        if (unknown.Count > 0) throw new CliException(ExitCodes.Usage, $"unknown option {string.Join(", ", unknown.Select(u => "--" + u))}");
    }

    private static readonly Regex DurationPattern = new(@"^(\d+)([smhd]?)$", RegexOptions.CultureInvariant);

    /// <summary>90s, 30m, 33h, 30d, or plain seconds: whole seconds.</summary>
    public static long ParseDuration(string option, string text)
    {
        var m = DurationPattern.Match(text.Trim());
        if (!m.Success || !long.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            throw new CliException(ExitCodes.Usage, $"--{option} '{text}' is not a duration: use 90s, 30m, 33h or 30d");
        return m.Groups[2].Value switch { "m" => n * 60, "h" => n * 3600, "d" => n * 86400, _ => n };
    }

    /// <summary>A date (2024-01-01), an RFC 3339 instant, or unix seconds; passed on as the API accepts them.</summary>
    public static object ParseTimestamp(string text)
    {
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)) return seconds;
        if (DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _)) return text;
        if (text.Length > 10 && (text.EndsWith('Z') || text[^6] is '+' or '-') && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out _)) return text;
        throw new CliException(ExitCodes.Usage, $"--data-timestamp '{text}' is not a date (2024-01-01), an RFC 3339 instant (2024-01-01T09:00:00Z) or unix seconds");
    }
}
