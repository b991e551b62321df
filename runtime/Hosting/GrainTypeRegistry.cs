using System.Reflection;

namespace DataBuild.Runtime.Hosting;

/// <summary>Which class implements each grain interface, and the type name each is stored under.</summary>
public sealed class GrainTypeRegistry
{
    private readonly Dictionary<Type, (string Name, Type Class)> _byInterface = [];
    private readonly Dictionary<string, Type> _classByName = new(StringComparer.Ordinal);

    public GrainTypeRegistry Add<TGrainInterface, TGrain>()
        where TGrainInterface : IGrainWithStringKey
        where TGrain : Grain, TGrainInterface
    {
        var name = typeof(TGrain).GetCustomAttribute<GrainTypeAttribute>()?.Name ?? typeof(TGrain).Name;
        if (_classByName.TryGetValue(name, out var existing) && existing != typeof(TGrain))
            throw new InvalidOperationException($"Grain type name '{name}' is used by both {existing} and {typeof(TGrain)}.");
        _byInterface[typeof(TGrainInterface)] = (name, typeof(TGrain));
        _classByName[name] = typeof(TGrain);
        return this;
    }

    public string TypeNameOf(Type grainInterface) =>
        _byInterface.TryGetValue(grainInterface, out var entry)
            ? entry.Name
            : throw new InvalidOperationException($"No grain class is registered for {grainInterface}.");

    /// <summary>The id of the grain <typeparamref name="TGrainInterface"/> <paramref name="key"/>.</summary>
    public GrainId IdOf<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey => new(TypeNameOf(typeof(TGrainInterface)), key);

    public Type ClassOf(string typeName) =>
        _classByName.TryGetValue(typeName, out var type)
            ? type
            : throw new InvalidOperationException($"No grain class is registered under the type name '{typeName}'.");
}
