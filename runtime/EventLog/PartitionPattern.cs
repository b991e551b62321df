using System.Text;
using System.Text.RegularExpressions;

namespace DataBuild.Runtime.EventLog;

/// <summary>
/// A partition pattern: a .NET regex that must match the whole ref. Its literal prefix (if any) bounds an
/// index range scan; the regex itself decides.
/// </summary>
public sealed class PartitionPattern
{
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(100);
    private readonly Regex _regex;

    public PartitionPattern(string pattern)
    {
        Pattern = pattern;
        try
        {
            _regex = new Regex($"^(?:{pattern})$", RegexOptions.CultureInvariant, MatchTimeout);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"Partition pattern '{pattern}' is not a valid regular expression: {e.Message}", nameof(pattern), e);
        }
        LiteralPrefix = PrefixOf(pattern);
    }

    public string Pattern { get; }

    /// <summary>Every ref this pattern matches starts with this (possibly empty) string.</summary>
    public string LiteralPrefix { get; }

    public bool Matches(string partitionRef)
    {
        try { return _regex.IsMatch(partitionRef); }
        catch (RegexMatchTimeoutException) { return false; }
    }

    /// <summary>
    /// The exclusive upper bound of the key range that starts with <paramref name="prefix"/>,
    /// or null when no bound exists (the prefix is all U+FFFF).
    /// </summary>
    public static string? RangeEnd(string prefix)
    {
        var chars = prefix.ToCharArray();
        for (var i = chars.Length - 1; i >= 0; i--)
        {
            // Stay clear of surrogates so the bound is a valid string in every database encoding.
            if (chars[i] < '\uD7FF') { chars[i]++; return new string(chars, 0, i + 1); }
        }
        return null;
    }

    private static string PrefixOf(string pattern)
    {
        if (pattern.Contains('|')) return ""; // an alternative may start anywhere
        var prefix = new StringBuilder();
        var i = pattern.StartsWith('^') ? 1 : 0;
        while (i < pattern.Length)
        {
            var c = pattern[i];
            int width;
            char literal;
            if (c == '\\')
            {
                if (i + 1 >= pattern.Length) break;
                var next = pattern[i + 1];
                if (char.IsLetterOrDigit(next) || next == '_') break; // \d, \w, \1 …: not a literal
                literal = next;
                width = 2;
            }
            else if ("[](){}.*+?^$#".Contains(c) || char.IsWhiteSpace(c)) break;
            else { literal = c; width = 1; }

            var after = i + width < pattern.Length ? pattern[i + width] : '\0';
            if (after is '*' or '?' or '{') break; // this literal may repeat zero times
            prefix.Append(literal);
            i += width;
        }
        return prefix.ToString();
    }
}
