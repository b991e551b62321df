using DataBuild.Api;
using DataBuild.Runtime.Storage;
using DataBuild.Silo;

var builder = WebApplication.CreateBuilder(args);
SiloOptions options;
try
{
    options = SiloOptions.From(builder.Configuration);
}
catch (FormatException e)
{
    Console.Error.WriteLine($"databuild silo: {e.Message}");
    return 2;
}

builder.WebHost.UseUrls(options.Urls);
builder.Services.AddProblemDetails();
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton(sp => DataStore.Open(options.Store, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>()));

var app = builder.Build();
var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("DataBuild.Silo");
var store = app.Services.GetRequiredService<IDataStore>();
try
{
    await StoreStartup.MigrateAsync(store, log, app.Lifetime.ApplicationStopping);
}
catch (Exception e) when (e is not OperationCanceledException)
{
    log.LogCritical(e, "Could not prepare the store {Store}", options.Store);
    Console.Error.WriteLine($"databuild silo: could not prepare the store {options.Store}: {e.Message}");
    return 1;
}

app.UseExceptionHandler();
app.UseStatusCodePages();
app.MapDataBuildApi();
log.LogInformation("DataBuild silo serving {Urls} on {Store}", options.Urls, options.Store);
await app.RunAsync();
return 0;
