namespace DataBuild.GrainInterfaces;

/// <summary>
/// Creates wants at the front door without a turn of their grains: the API's way in. A want created here is its grain's as
/// any other from then on.
/// </summary>
public interface IWantIntake
{
    /// <summary>
    /// Commits a new want, whose <see cref="CreateWant.WantId"/> nobody else knows yet (a GUID made up for it);
    /// <see cref="IdempotencyKeyTakenException"/> if another want holds its key.
    /// </summary>
    Task<WantView> CreateAsync(CreateWant command);
}
