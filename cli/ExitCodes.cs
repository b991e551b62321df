namespace DataBuild.Cli;

/// <summary>Exit codes: 0 only when the command did what was asked (for build: the want was satisfied).</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Error = 1;          // the service refused the request (its problem is printed)
    public const int Failed = 2;         // build: the want failed
    public const int Expired = 3;        // build: the want expired
    public const int Cancelled = 4;      // build: the want was cancelled
    public const int Unreachable = 5;    // the service could not be reached
    public const int Usage = 64;         // bad arguments (EX_USAGE)
}

/// <summary>Ends the command with a message on stderr and an exit code.</summary>
public sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
