namespace Bastion.Client;

/// <summary>Placeholder.</summary>
public static class Placeholder;
