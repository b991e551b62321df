using System.Diagnostics;
using System.Runtime.InteropServices;

namespace DataBuild.Testing;

/// <summary>Signals to a process, as Kubernetes and systemd send them (shared by the tests and the benchmarks).</summary>
internal static class ProcessSignals
{
    private const int SigTerm = 15;

    /// <summary>Asks the process to stop (SIGTERM): a graceful stop. False if it has exited or the signal could not be sent.</summary>
    public static bool Terminate(Process process) => !process.HasExited && SendSignal(process.Id, SigTerm) == 0;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);
}
