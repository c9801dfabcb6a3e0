namespace Bastion.Anomaly;

/// <summary>One signal that fired: the value measured and the threshold it reached.</summary>
/// <param name="Signal">The signal.</param>
/// <param name="Value">What was measured (a count in its window, or a ratio to the baseline).</param>
/// <param name="Threshold">The threshold the value reached.</param>
public readonly record struct AnomalyHit(AnomalySignal Signal, double Value, double Threshold);
