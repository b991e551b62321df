using DataBuild.GrainInterfaces;
using DataBuild.GrainInterfaces.Graph;
using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;

namespace DataBuild.Grains;

/// <summary>
/// Creates wants at the front door: the want's first turn (<see cref="WantCreation"/>) is committed detached, without
/// activating its grain or writing its state, which the grain derives from its <c>wants</c> row when a deadline or a
/// partition's word first activates it. A want created here has a new id nobody else knows, so no turn of its grain
/// can run before this commit.
/// </summary>
public sealed class WantIntake(IDetachedTurns turns, PartitionOwners owners, IDataStore store, TimeProvider clock) : IWantIntake
{
    public async Task<WantView> CreateAsync(CreateWant command)
    {
        var turn = turns.Begin<IWantGrain>(command.WantId);
        var state = WantCreation.Write(turn, command, owners, store, clock.GetUtcNow(), freshId: true);
        await turns.CommitAsync(turn);
        return state.View();
    }
}
