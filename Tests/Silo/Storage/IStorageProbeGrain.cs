namespace Bastion.Tests.Silo.Storage;

/// <summary>A test grain that keeps one value in ADO.NET grain storage and registers reminders.</summary>
[Alias("Bastion.Tests.IStorageProbeGrain")]
public interface IStorageProbeGrain : IGrainWithStringKey
{
    [Alias("SetValue")]
    Task SetValueAsync(string value);

    [Alias("GetValue")]
    Task<string?> GetValueAsync();

    [Alias("RegisterReminder")]
    Task RegisterReminderAsync(string name, TimeSpan period);

    [Alias("HasReminder")]
    Task<bool> HasReminderAsync(string name);
}
