using Bastion.Hosting;
using Microsoft.Extensions.Options;

try
{
    if (args is ["migrate", .. var rest])
    {
        return await MigrateCommand.RunAsync(rest);
    }

    if (args is ["audit", .. var auditArgs])
    {
        return await AuditCommand.RunAsync(auditArgs);
    }

    if (args is ["keys", .. var keyArgs])
    {
        return await KeysCommand.RunAsync(keyArgs);
    }

    await using var app = await BastionApplication.BuildAsync(args);
    await app.RunAsync();
    return 0;
}
catch (Exception exception) when (exception is StartupException or OptionsValidationException)
{
    Console.Error.WriteLine($"bastion: {exception.Message}");
    return 2;
}
catch (OperationCanceledException)
{
    // Ctrl+C or SIGTERM before start-up finished; everything started so far has been stopped.
    Console.Error.WriteLine("bastion: stopped during start-up");
    return 130;
}
