using System.Collections.Concurrent;
using System.Reflection;

namespace DataBuild.Runtime.Hosting;

/// <summary>
/// The object <see cref="IGrainFactory.GetGrain{T}"/> returns: implements the grain interface and turns each
/// call into a turn on the grain's activation. Grain interface methods return <c>Task</c> or <c>Task&lt;T&gt;</c>.
/// Arguments are passed by reference, not copied: messages must be immutable (records).
/// </summary>
public class GrainReference : DispatchProxy
{
    private static readonly ConcurrentDictionary<MethodInfo, Func<GrainReference, object?[]?, object>> Invokers = new();
    private static readonly MethodInfo InvokeTyped = typeof(GrainReference).GetMethod(nameof(InvokeOf), BindingFlags.NonPublic | BindingFlags.Static)!;

    private GrainRuntime _runtime = null!;
    private bool _assumeNew;

    public GrainId GrainId { get; private set; }

    internal static T Create<T>(GrainRuntime runtime, GrainId id, bool assumeNew)
    {
        var proxy = (GrainReference)(object)DispatchProxy.Create(typeof(T), typeof(GrainReference));
        proxy._runtime = runtime;
        proxy.GrainId = id;
        proxy._assumeNew = assumeNew;
        return (T)(object)proxy;
    }

    protected override object? Invoke(MethodInfo? method, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(method);
        return Invokers.GetOrAdd(method, Build)(this, args);
    }

    private static Func<GrainReference, object?[]?, object> Build(MethodInfo method)
    {
        if (method.ReturnType == typeof(Task))
            return (self, args) => self._runtime.InvokeAsync(self.GrainId, async g => { await (Task)Call(method, g, args); return true; }, null, self._assumeNew);
        if (method.ReturnType.IsGenericType && method.ReturnType.GetGenericTypeDefinition() == typeof(Task<>))
            return (Func<GrainReference, object?[]?, object>)InvokeTyped.MakeGenericMethod(method.ReturnType.GetGenericArguments()[0]).Invoke(null, [method])!;
        throw new NotSupportedException($"Grain method {method.DeclaringType}.{method.Name} must return Task or Task<T>.");
    }

    private static Func<GrainReference, object?[]?, object> InvokeOf<T>(MethodInfo method) =>
        (self, args) => self._runtime.InvokeAsync(self.GrainId, g => (Task<T>)Call(method, g, args), null, self._assumeNew);

    /// <summary>Invokes without wrapping a synchronous throw in <see cref="TargetInvocationException"/>.</summary>
    private static object Call(MethodInfo method, Grain grain, object?[]? args)
    {
        try
        {
            return method.Invoke(grain, args)!;
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }
}
