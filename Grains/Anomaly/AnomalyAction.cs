namespace Bastion.Anomaly;

/// <summary>What the user grain does when a signal fires. Every action is audited and counted.</summary>
public enum AnomalyAction
{
    /// <summary>Audit and count only.</summary>
    Observe = 1,

    /// <summary>Lower the user's request, token and concurrency limits by a factor for a while.</summary>
    Throttle = 2,

    /// <summary>Suspend the user, as an admin's suspend does, cancelling their running generations.</summary>
    Suspend = 3,
}
