using System.Security.Cryptography;
using System.Text;

namespace DataBuild.Runtime.Storage;

/// <summary>
/// A 64-bit PostgreSQL advisory lock key for a name. Two names sharing a key only take turns needlessly.
/// Take these with pg_advisory_xact_lock: a transaction-scoped lock ends with its transaction, even when
/// the connection dies.
/// </summary>
public static class AdvisoryLockKey
{
    public static long For(string name) => BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes(name)));
}
