using DataBuild.GrainInterfaces;
using DataBuild.GrainInterfaces.Graph;
using DataBuild.Protos;
using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;
using static DataBuild.Grains.GrainMessages;

namespace DataBuild.Grains;

/// <summary>
/// A want's first turn, written into a grain's turn (a child want a partition creates) or a detached one (a want created at
/// the API, <see cref="WantIntake"/>): its creation event, its deadlines, its word to each partition, its read-model rows
/// and its idempotency key. The state is the grain's to write; a want created detached derives it from its <c>wants</c> row.
/// </summary>
internal static class WantCreation
{
    /// <summary>
    /// The first turn of the want <paramref name="command"/> creates. With <paramref name="freshId"/> (an id made up for this
    /// creation, that no other turn can know) its row is a plain insert; otherwise an upsert, so that a repeated creation
    /// of a want whose grain assumed it new fails on the grain's version check, not on the row.
    /// </summary>
    public static WantState Write(ITurnWrites turn, CreateWant command, PartitionOwners owners, IDataStore store, DateTimeOffset now, bool freshId)
    {
        var state = new WantState
        {
            WantId = command.WantId,
            Partitions = [.. command.Partitions],
            DataTimestamp = command.DataTimestamp,
            TtlSeconds = command.TtlSeconds,
            SlaSeconds = command.SlaSeconds,
            SourceType = command.SourceType,
            SourceName = command.SourceName,
            Comment = command.Comment,
            ParentWantId = command.ParentWantId,
            RootWantId = command.RootWantId ?? command.WantId,
            Status = WantStatus.Idle,
            CreatedAt = now.ToUnixTimeMilliseconds(),
        };
        var created = new WantCreateEventV1
        {
            WantId = state.WantId, DataTimestamp = (ulong)state.DataTimestamp, TtlSeconds = (ulong)state.TtlSeconds,
            SlaSeconds = (ulong)(state.SlaSeconds ?? 0), Source = new EventSource { Type = WantGrain.SourceTypeOf(state.SourceType), Name = state.SourceName },
            RootWantId = state.RootWantId,
        };
        created.Partitions.AddRange(state.Partitions.Select(p => new PartitionRef { Str = p }));
        if (state.Comment is not null) created.Comment = state.Comment;
        if (state.ParentWantId is not null) created.ParentWantId = state.ParentWantId;
        turn.AppendEvent(new DataBuildEvent { WantCreate = created });

        // A deadline already past fires at once: the reminder is simply due.
        var self = turn.IdOf<IWantGrain>(state.WantId);
        turn.RemindOnce(self, TtlDeadline, DateTimeOffset.FromUnixTimeMilliseconds(state.TtlDeadline));
        if (state.SlaDeadline is { } sla) turn.RemindOnce(self, SlaDeadline, DateTimeOffset.FromUnixTimeMilliseconds(sla));
        TellWaiting(turn, state, owners, store, now);

        if (command.IdempotencyKey is { } key)
            turn.EnlistWrite(tx => ReadModels.ClaimIdempotencyKey(tx, key, state.WantId, command.RequestHash ?? "", state.CreatedAt));
        turn.EnlistWrite(tx => ReadModels.InsertWantPartitions(tx, state));
        if (freshId) turn.EnlistWrite(tx => ReadModels.InsertWant(tx, state));
        else turn.EnlistWrite(tx => ReadModels.UpsertWant(tx, state));
        return state;
    }

    /// <summary>Tells each partition the want waits on it: by message, or quietly when no job builds it.</summary>
    private static void TellWaiting(ITurnWrites turn, WantState state, PartitionOwners owners, IDataStore store, DateTimeOffset now)
    {
        var waiting = state.WaitingMessage();
        var at = now.ToUnixTimeMilliseconds();
        foreach (var partition in state.Partitions)
        {
            if (owners.Resolve(partition).Owner is { Kind: not OwnerKind.Job })
            {
                // Nothing builds it here, so its turn would only note this want: the want waits quietly, unless the
                // partition is available or becoming available, when it is sent the message after all (QuietWaits).
                turn.EnlistWrite(tx => QuietWaits.WaitQuietly(tx, store, partition, waiting, at));
                continue;
            }
            // A child want's partitions were just reported missing by a job: nearly always never stored (the next hop of
            // a chain found through missing dependencies), so the partition's turn need not read its state first.
            turn.RemindOnce(turn.IdOf<IPartitionGrain>(partition), waiting, now, targetLikelyNew: state.ParentWantId is not null);
        }
    }
}
