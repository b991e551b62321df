using DataBuild.Runtime.Hosting;

namespace DataBuild.Bench;

public interface IBenchCounterGrain : IGrainWithStringKey
{
    Task<long> Increment();
}

public sealed class BenchCounterState
{
    public long Count { get; set; }
}

/// <summary>One persisted turn per call: a versioned state write in its own transaction.</summary>
[GrainType("bench-counter")]
public sealed class BenchCounterGrain : Grain<BenchCounterState>, IBenchCounterGrain
{
    public async Task<long> Increment()
    {
        State.Count++;
        await WriteStateAsync();
        return State.Count;
    }
}

public interface IEchoGrain : IGrainWithStringKey
{
    Task<int> Echo(int value);
}

/// <summary>No state, no I/O: the cost of the runtime's call path alone.</summary>
[GrainType("bench-echo")]
public sealed class EchoGrain : Grain, IEchoGrain
{
    public Task<int> Echo(int value) => Task.FromResult(value);
}
