namespace Bastion;

/// <summary>Placeholder.</summary>
public static class Placeholder;
