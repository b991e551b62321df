using System.Reflection;
using System.Text.RegularExpressions;

namespace DataBuild.Runtime.Storage;

/// <summary>One ordered schema step, kept as a <c>NNN_name.sql</c> file next to the provider that runs it.</summary>
public sealed record Migration(int Version, string Name, string Sql)
{
    private static readonly Regex FileName = new(@"^(?<dialect>[a-z]+)/(?<version>\d{3})_(?<name>[a-z0-9_]+)\.sql$");

    /// <summary>The migrations of one dialect ("postgres" or "sqlite"), in version order.</summary>
    public static IReadOnlyList<Migration> For(string dialect)
    {
        var assembly = typeof(Migration).Assembly;
        var list = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            var match = FileName.Match(resource);
            if (!match.Success || match.Groups["dialect"].Value != dialect) continue;
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            list.Add(new Migration(int.Parse(match.Groups["version"].Value), match.Groups["name"].Value, reader.ReadToEnd()));
        }
        list.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i].Version != i + 1)
                throw new InvalidOperationException($"{dialect} migrations must be numbered 001, 002, … without gaps; found {list[i].Version:000}.");
        }
        return list;
    }
}
