namespace DataBuild.Bench;

internal static class Statistics
{
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>
    /// The pair whose ratio (value / baseline) is the median of the pairs' ratios: a value and the baseline measured beside
    /// it, never one pair's value over another's baseline. With an even count, the middle pair that is worse for the goal.
    /// </summary>
    public static (double Value, double Baseline) MedianPair(IEnumerable<(double Value, double Baseline)> pairs, bool higherIsWorse)
    {
        var sorted = pairs.OrderBy(p => p.Value / p.Baseline).ToList();
        return sorted[higherIsWorse ? sorted.Count / 2 : (sorted.Count - 1) / 2];
    }
}
