using DataBuild.GrainInterfaces;
using DataBuild.GrainInterfaces.Graph;
using DataBuild.Protos;
using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;
using static DataBuild.Grains.GrainMessages;

namespace DataBuild.Grains;

/// <summary>
/// A want: "these partitions should exist, for this business date, within this TTL, by this SLA".
/// TTL and SLA deadlines are anchored to data_timestamp and enforced by durable reminders, so the same
/// logical want has the same deadlines whenever it is created. Every transition appends its event in the
/// same turn.
/// </summary>
[GrainType("want")]
public sealed class WantGrain(IDataStore store, PartitionOwners owners) : Grain<WantState>, IWantGrain, IRemindable
{
    private long Now => Clock.GetUtcNow().ToUnixTimeMilliseconds();

    public async Task<WantView> Create(CreateWant command)
    {
        if (State.WantId is not null) return View();
        State = WantCreation.Write(ThisTurn, command, owners, store, Clock.GetUtcNow(), freshId: false);
        await WriteStateAsync(); // its wants row is written by the creation
        return View();
    }

    public async Task<WantView> Cancel(CancelWant command)
    {
        if (State.WantId is null) throw new KeyNotFoundException($"Want {GrainKey} does not exist.");
        if (WantStatus.IsTerminal(State.Status))
            throw new WantConflictException($"Want {GrainKey} is already {State.Status}; only a want that has not ended can be cancelled.");
        var cancel = new WantCancelEventV1 { WantId = GrainKey, Source = new EventSource { Type = SourceTypeOf(command.SourceType), Name = command.SourceName } };
        if (command.Comment is not null) cancel.Comment = command.Comment;
        AppendEvent(new DataBuildEvent { WantCancel = cancel });
        await EndAsync(WantStatus.Cancelled, command.Comment);
        return View();
    }

    public Task<WantView?> Get() => Task.FromResult(State.WantId is null ? null : View());

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (State.WantId is null) return; // a message for a want that was never committed
        if (reminderName == TtlDeadline)
        {
            if (WantStatus.IsTerminal(State.Status)) return;
            // The SLA is no later than the TTL, so an expiring want has missed it too, whichever reminder fired first.
            if (State.SlaDeadline is not null && !State.SlaViolated) FlagSlaViolation();
            AppendEvent(new DataBuildEvent { WantExpired = new WantExpiredEventV1 { WantId = GrainKey, TtlDeadline = (ulong)State.TtlDeadline } });
            await EndAsync(WantStatus.Expired, $"not satisfied by its TTL deadline {DateTimeOffset.FromUnixTimeMilliseconds(State.TtlDeadline).UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}");
        }
        else if (reminderName == SlaDeadline)
        {
            if (WantStatus.IsTerminal(State.Status) || State.SlaViolated) return;
            FlagSlaViolation();
            await SaveAsync();
        }
        else if (reminderName.StartsWith(PartitionBuilding, StringComparison.Ordinal) || reminderName.StartsWith(PartitionUpstream, StringComparison.Ordinal))
        {
            if (WantStatus.IsTerminal(State.Status)) return;
            // The latest word from any partition: building, or waiting on upstream partitions. Words are delivered
            // concurrently and may arrive out of order (a retried delivery, another silo's claim): one sent before the
            // word already applied, or about a partition already available, is stale.
            var upstream = reminderName.StartsWith(PartitionUpstream, StringComparison.Ordinal);
            var partition = reminderName[(upstream ? PartitionUpstream : PartitionBuilding).Length..];
            var sentAt = status.FirstTickTime.ToUnixTimeMilliseconds();
            if (sentAt < State.LastWordSentAt || State.Available.Contains(partition)) return;
            State.LastWordSentAt = sentAt; // saved with the next change; a word that changes nothing writes nothing
            var next = upstream ? WantStatus.UpstreamBuilding : WantStatus.Building;
            if (next == State.Status) return;
            State.Status = next;
            await SaveAsync();
        }
        else if (reminderName.StartsWith(PartitionFailed, StringComparison.Ordinal))
        {
            var partition = reminderName[PartitionFailed.Length..];
            if (WantStatus.IsTerminal(State.Status) || !State.Partitions.Contains(partition)) return;
            var why = await PartitionReasonAsync(partition);
            var failed = new WantFailedEventV1 { WantId = GrainKey, Reason = $"partition {partition} failed: {why}" };
            failed.FailedPartitions.Add(new PartitionRef { Str = partition });
            AppendEvent(new DataBuildEvent { WantFailed = failed });
            await EndAsync(WantStatus.Failed, failed.Reason);
        }
        else if (reminderName.StartsWith(PartitionAvailable, StringComparison.Ordinal))
        {
            var partition = reminderName[PartitionAvailable.Length..];
            if (WantStatus.IsTerminal(State.Status) || !State.Partitions.Contains(partition) || !State.Available.Add(partition)) return;
            if (State.Available.Count == State.Partitions.Count)
            {
                State.Status = WantStatus.Satisfied;
                State.SatisfiedAt = State.FinishedAt = Now;
                AppendEvent(new DataBuildEvent { WantSatisfied = new WantSatisfiedEventV1 { WantId = GrainKey } });
                await UnregisterDeadlinesAsync();
            }
            await SaveAsync();
        }
    }

    /// <summary>Why a partition failed, from the committed read model (the partition's turn committed before telling us).</summary>
    private async Task<string> PartitionReasonAsync(string partition)
    {
        await using var connection = await store.OpenConnectionAsync();
        await using var command = Sql.Command(connection, null, "SELECT reason FROM partitions WHERE partition_ref = $1", partition);
        return await command.ExecuteScalarAsync() as string ?? "no reason recorded";
    }

    private void FlagSlaViolation()
    {
        State.SlaViolated = true;
        State.SlaViolatedAt = Now;
        AppendEvent(new DataBuildEvent { WantSlaViolated = new WantSlaViolatedEventV1 { WantId = GrainKey, SlaDeadline = (ulong)State.SlaDeadline!.Value } });
    }

    private async Task EndAsync(string status, string? reason)
    {
        State.Status = status;
        State.FinishedAt = Now;
        State.Reason = reason;
        await UnregisterDeadlinesAsync();
        await TellPartitionsGoneAsync();
        await SaveAsync();
    }

    private async Task UnregisterDeadlinesAsync()
    {
        // Removing a reminder that is not there (one already fired, or no SLA) is harmless: no read first.
        await UnregisterReminderFor(GrainId, TtlDeadline);
        await UnregisterReminderFor(GrainId, SlaDeadline);
    }

    /// <summary>Tells each partition the want waited on that it no longer does.</summary>
    private async Task TellPartitionsGoneAsync()
    {
        var now = Clock.GetUtcNow();
        var waiting = State.WaitingMessage();
        foreach (var partition in State.Partitions.Where(p => !State.Available.Contains(p)))
        {
            var target = IdOf<IPartitionGrain>(partition);
            // "Gone" must not overtake "waiting": withdraw the registration if it is still undelivered. (A bare
            // "waiting" sent before messages carried the want's terms makes the partition check the want's status.)
            await UnregisterReminderFor(target, waiting);
            await RegisterOrUpdateReminderFor(target, WantGone + GrainKey, now, TimeSpan.Zero);
        }
    }

    private async Task SaveAsync()
    {
        var state = State;
        EnlistWrite(tx => ReadModels.UpsertWant(tx, state));
        await WriteStateAsync();
    }

    private WantView View() => State.View();

    /// <summary>A want created detached (<see cref="WantIntake"/>) has written no state until its first turn here: its wants row has it.</summary>
    protected override Task<WantState?> UnstoredStateAsync(IDataStore store, CancellationToken cancellationToken) =>
        ReadModels.ReadWantAsync(store, GrainKey, cancellationToken);

    internal static EventSourceType SourceTypeOf(string type) => type switch
    {
        "api" => EventSourceType.Api,
        "cli" => EventSourceType.Cli,
        "dashboard" => EventSourceType.Dashboard,
        "scheduled" => EventSourceType.Scheduled,
        "job" => EventSourceType.Job,
        "graph" => EventSourceType.Graph,
        _ => EventSourceType.Unspecified,
    };
}
