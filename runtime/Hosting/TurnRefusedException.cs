namespace DataBuild.Runtime.Hosting;

/// <summary>
/// A turn's commit was refused by a check the grain made optimistically (it wrote as if a condition held and let
/// the database check it in the commit's own round trip). Nothing of the turn was applied and its state was
/// restored; the runtime runs the call again at once, with <see cref="Grain.IsRetryAfterRefusal"/> set so that the
/// grain can take the path that asks first.
/// </summary>
public class TurnRefusedException(string message) : Exception(message);
