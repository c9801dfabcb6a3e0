using Bastion.Cli;
using Bastion.Client;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// Connection settings come from configuration: environment variables Bastion__Client__Gateways__0,
// Bastion__Client__ClusterId, Bastion__Client__ServiceName, Bastion__Client__PrivateKeyFile, the client certificate
// Bastion__Client__Tls__CertificateFile / __KeyFile / __CaFile, … (docs/client.md).
var builder = Host.CreateApplicationBuilder();
builder.Logging.SetMinimumLevel(LogLevel.Warning);
var host = new Lazy<Task<IHost>>(async () =>
{
    builder.Services.AddBastionClient(options => builder.Configuration.GetSection(BastionClientOptions.SectionName).Bind(options));
    var app = builder.Build();
    await app.StartAsync();
    return app;
});

var exitCode = await OperatorCommands.Build(async () => (await host.Value).Services.GetRequiredService<BastionClient>(), Console.Out, Console.Error)
    .Parse(args).InvokeAsync();
if (host.IsValueCreated)
{
    var app = await host.Value;
    await app.StopAsync();
    app.Dispose();
}

return exitCode;
