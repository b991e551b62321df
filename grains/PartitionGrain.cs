using DataBuild.GrainInterfaces;
using DataBuild.Protos;
using DataBuild.Runtime.Hosting;
using static DataBuild.Grains.GrainMessages;

namespace DataBuild.Grains;

/// <summary>
/// A partition's canonical state and the wants waiting on it: many wants for one partition share one build.
/// When it becomes available, every waiting want is told in that same turn (durably, by message).
/// </summary>
[GrainType("partition")]
public sealed class PartitionGrain : Grain<PartitionState>, IPartitionGrain, IRemindable
{
    private long Now => Clock.GetUtcNow().ToUnixTimeMilliseconds();

    public async Task<PartitionView> MarkAvailable(string sourceType, string sourceName)
    {
        Init();
        if (State.Status == PartitionStatusNames.Available) return View();
        var previous = State.Status;
        State.Status = PartitionStatusNames.Available;
        State.AvailableAt = State.UpdatedAt = Now;
        State.Reason = $"marked available by {sourceType}{(sourceName.Length > 0 ? $" ({sourceName})" : "")}";
        var changed = new PartitionStatusChangedEventV1
        {
            Partition = new PartitionRef { Str = GrainKey }, PreviousStatus = StatusOf(previous), Status = PartitionStatus.Available, Reason = State.Reason,
        };
        changed.WantIds.AddRange(State.WaitingWants.Order(StringComparer.Ordinal));
        AppendEvent(new DataBuildEvent { PartitionStatusChanged = changed });
        var now = Clock.GetUtcNow();
        foreach (var want in State.WaitingWants)
            await RegisterOrUpdateReminderFor(IdOf<IWantGrain>(want), PartitionAvailable + GrainKey, now, TimeSpan.Zero);
        State.WaitingWants.Clear();
        await SaveAsync();
        return View();
    }

    public Task<PartitionView> Get()
    {
        Init();
        return Task.FromResult(View());
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        Init();
        if (reminderName.StartsWith(WantWaiting, StringComparison.Ordinal))
        {
            var want = reminderName[WantWaiting.Length..];
            if (State.Status == PartitionStatusNames.Available)
                await RegisterOrUpdateReminderFor(IdOf<IWantGrain>(want), PartitionAvailable + GrainKey, Clock.GetUtcNow(), TimeSpan.Zero);
            else if (!State.WaitingWants.Add(want)) return;
            await SaveAsync();
        }
        else if (reminderName.StartsWith(WantGone, StringComparison.Ordinal))
        {
            if (!State.WaitingWants.Remove(reminderName[WantGone.Length..])) return;
            await SaveAsync();
        }
    }

    private void Init()
    {
        if (State.Ref is not null) return;
        State.Ref = GrainKey;
        State.Status = PartitionStatusNames.Missing;
        State.UpdatedAt = Now;
    }

    private async Task SaveAsync()
    {
        var state = State;
        EnlistWrite((tx, ct) => ReadModels.UpsertPartitionAsync(tx, state, ct));
        await WriteStateAsync();
    }

    private PartitionView View() => new(GrainKey, State.Status, State.UpdatedAt, State.AvailableAt, State.JobRunId, State.Reason, State.WaitingWants.Count);

    internal static PartitionStatus StatusOf(string status) => status switch
    {
        PartitionStatusNames.Missing => PartitionStatus.Missing,
        PartitionStatusNames.Building => PartitionStatus.Building,
        PartitionStatusNames.UpstreamWaiting => PartitionStatus.UpstreamWaiting,
        PartitionStatusNames.Available => PartitionStatus.Available,
        PartitionStatusNames.Failed => PartitionStatus.Failed,
        _ => PartitionStatus.Unspecified,
    };
}
