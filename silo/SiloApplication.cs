using DataBuild.Api;
using DataBuild.Api.Partitions;
using DataBuild.Api.Wants;
using DataBuild.GrainInterfaces;
using DataBuild.GrainInterfaces.Graph;
using DataBuild.Grains;
using DataBuild.Grains.Jobs;
using DataBuild.Api.JobRuns;
using DataBuild.Api.Metrics;
using DataBuild.Runtime.Hosting;
using DataBuild.Runtime.Storage;

namespace DataBuild.Silo;

/// <summary>Composes a silo: store, graph, grain host and HTTP API. Tests build it in-process with their own clock.</summary>
public static class SiloApplication
{
    public static WebApplication Build(string[] args, Action<IServiceCollection>? configure = null, Func<SiloHostOptions, SiloHostOptions>? hostOptions = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        var options = SiloOptions.From(builder.Configuration);
        var graph = GraphConfig.Load(options.GraphPath);

        builder.WebHost.UseUrls(options.Urls);
        builder.Services.AddProblemDetails();
        builder.Services.AddOpenApi();
        builder.Services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.PropertyNamingPolicy = ApiJson.Options.PropertyNamingPolicy;
            json.SerializerOptions.DictionaryKeyPolicy = ApiJson.Options.DictionaryKeyPolicy;
        });
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<PrometheusExporter>();
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(graph);
        builder.Services.AddSingleton(new PartitionOwners(graph));
        builder.Services.AddSingleton(sp => DataStore.Open(options.Store, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>()));
        builder.Services.AddSingleton(sp => new SiloHost(
            sp.GetRequiredService<IDataStore>(), new GrainTypeRegistry().DataBuildGrains(), sp,
            (hostOptions ?? (o => o))(new SiloHostOptions { Address = options.Urls }),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>()));
        builder.Services.AddSingleton(sp => sp.GetRequiredService<SiloHost>().GrainFactory);
        builder.Services.AddSingleton(sp => sp.GetRequiredService<SiloHost>().DetachedTurns);
        builder.Services.AddSingleton<IWantIntake, WantIntake>();
        builder.Services.AddHostedService<SiloHostService>();
        builder.Services.AddSingleton<JobRunQueue>();
        // Optional tuning: --Jobs:LeaseSeconds=30 --Jobs:Slots=8 (or Jobs__LeaseSeconds in the environment).
        var dispatcherOptions = new JobDispatcherOptions();
        if (int.TryParse(builder.Configuration["Jobs:LeaseSeconds"], out var leaseSeconds) && leaseSeconds > 0)
            dispatcherOptions = dispatcherOptions with { Lease = TimeSpan.FromSeconds(leaseSeconds) };
        if (int.TryParse(builder.Configuration["Jobs:Slots"], out var slots) && slots > 0)
            dispatcherOptions = dispatcherOptions with { Slots = slots };
        builder.Services.AddSingleton(dispatcherOptions);
        builder.Services.AddSingleton(sp => new JobDispatcher(sp.GetRequiredService<IDataStore>(), graph, sp.GetRequiredService<JobRunQueue>(),
            sp.GetRequiredService<JobDispatcherOptions>(), sp.GetRequiredService<SiloHost>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<JobDispatcher>>()));
        builder.Services.AddSingleton<WantQueries>();
        builder.Services.AddSingleton<JobRunQueries>();
        builder.Services.AddSingleton<PartitionQueries>();
        configure?.Invoke(builder.Services);

        var app = builder.Build();
        app.Services.GetRequiredService<PrometheusExporter>(); // listening from the start, so counters count from it
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.MapOpenApi();
        app.MapDataBuildApi();
        return app;
    }
}

/// <summary>Migrates the store, then runs the grain host and the job dispatcher for the life of the process.</summary>
internal sealed class SiloHostService(SiloHost silo, JobDispatcher dispatcher, IDataStore store, SiloOptions options, ILogger<SiloHostService> log) : IHostedService
{
    private readonly CancellationTokenSource _stopping = new();
    private Task _dispatching = Task.CompletedTask;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await StoreStartup.MigrateAsync(store, log, cancellationToken);
        await silo.StartAsync(cancellationToken);
        _dispatching = Task.Run(() => dispatcher.RunAsync(_stopping.Token));
        log.LogInformation("DataBuild silo {Silo} serving {Urls} on {Store} with graph {Graph}", silo.SiloId, options.Urls, options.Store, options.GraphPath);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Job processes in flight are killed and their runs handed back, for another silo (or this one restarted) to
        // run again at once; outcomes the jobs reached by themselves are recorded while the grains still run.
        await _stopping.CancelAsync();
        await _dispatching;
        await dispatcher.DrainAsync();
        await silo.StopAsync(); // the store is disposed with the container
        // A turn that reserved a slot before the stop and committed after the drain has started its run, which hands
        // itself back unstarted: wait for it too.
        await dispatcher.DrainAsync();
    }
}
