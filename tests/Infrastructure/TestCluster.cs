using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace DataBuild.Tests.Infrastructure;

/// <summary>
/// Silos in this test process sharing one store location. Each silo gets its own store instance (its own
/// connection pool and notification listener), as separate processes would.
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    private readonly List<(SiloHost Silo, IDataStore Store)> _silos = [];
    private readonly Func<SiloHostOptions, SiloHostOptions> _configure;

    public TestCluster(StoreLocation location, Action<IServiceCollection>? services = null, TimeProvider? clock = null,
        Func<SiloHostOptions, SiloHostOptions>? configure = null, GrainTypeRegistry? types = null)
    {
        Location = location;
        Clock = clock ?? TimeProvider.System;
        _configure = configure ?? (o => o);
        var collection = new ServiceCollection();
        services?.Invoke(collection);
        Services = collection.BuildServiceProvider();
        Types = types ?? TestGrains.Registry();
    }

    public StoreLocation Location { get; }
    public TimeProvider Clock { get; }
    public IServiceProvider Services { get; }
    public GrainTypeRegistry Types { get; }
    public IReadOnlyList<SiloHost> Silos => _silos.Select(s => s.Silo).ToList();
    public IGrainFactory Grains => _silos[0].Silo.GrainFactory;

    public async Task<SiloHost> StartSiloAsync(string? name = null)
    {
        var store = DataStore.Open(Location, Clock);
        await store.MigrateAsync();
        var options = _configure(new SiloHostOptions { SiloId = name ?? $"silo-{_silos.Count}-{Guid.NewGuid().ToString("N")[..6]}" });
        var silo = new SiloHost(store, Types, Services, options, Clock);
        await silo.StartAsync();
        _silos.Add((silo, store));
        return silo;
    }

    public async Task KillAsync(SiloHost silo)
    {
        var entry = _silos.Single(s => s.Silo == silo);
        await silo.KillAsync();
        await entry.Store.DisposeAsync(); // its connections close, as a dead process's would
        _silos.Remove(entry);
    }

    public async Task StopAsync(SiloHost silo)
    {
        var entry = _silos.Single(s => s.Silo == silo);
        await silo.StopAsync();
        await entry.Store.DisposeAsync();
        _silos.Remove(entry);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (silo, store) in _silos.ToList())
        {
            await silo.DisposeAsync();
            await store.DisposeAsync();
        }
        _silos.Clear();
    }
}
