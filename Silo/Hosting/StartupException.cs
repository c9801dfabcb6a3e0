namespace Bastion.Hosting;

/// <summary>
/// Start-up cannot continue (bad configuration, a database that is behind, unreadable keys). The
/// message is for the operator: it names the setting or command involved.
/// </summary>
public sealed class StartupException(string message, Exception? innerException = null) : Exception(message, innerException);
