using System.Text.Json;

namespace DataBuild.Cli;

/// <summary>Tables for people, JSON for scripts.</summary>
public static class Output
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static void Json(JsonElement value) => Console.WriteLine(JsonSerializer.Serialize(value, Indented));

    public static void Table(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = rows.ToList();
        if (all.Count == 0) { Console.WriteLine("(none)"); return; }
        var widths = headers.Select((h, i) => Math.Min(60, Math.Max(h.Length, all.Max(r => r[i].Length)))).ToArray();
        Console.WriteLine(string.Join("  ", headers.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var row in all)
            Console.WriteLine(string.Join("  ", row.Select((c, i) => (c.Length > widths[i] ? c[..(widths[i] - 1)] + "…" : c).PadRight(widths[i]))).TrimEnd());
    }

    public static string S(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) ? v.ValueKind switch
        {
            JsonValueKind.String => v.GetString()!,
            JsonValueKind.Null or JsonValueKind.Undefined => "",
            _ => v.GetRawText(),
        } : "";

    public static string Refs(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array ? string.Join(" ", v.EnumerateArray().Select(p => p.GetString())) : "";

    public static string Short(string id) => id.Length > 8 ? id[..8] : id;
}
