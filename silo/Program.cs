using DataBuild.GrainInterfaces.Graph;
using DataBuild.Silo;

// dotnet run --project silo -- [--graph PATH] [--store STORE] [--urls URL]
WebApplication app;
try
{
    app = SiloApplication.Build(args);
}
catch (Exception e) when (e is FormatException or GraphConfigException)
{
    Console.Error.WriteLine($"databuild silo: {e.Message}");
    return 2;
}
try
{
    await app.RunAsync();
    return 0;
}
catch (Exception e) when (e is not OperationCanceledException)
{
    Console.Error.WriteLine($"databuild silo: could not start: {e.Message}");
    return 1;
}
