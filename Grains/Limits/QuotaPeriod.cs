namespace Bastion.Limits;

/// <summary>The calendar period a token quota covers, in UTC.</summary>
public enum QuotaPeriod
{
    /// <summary>A UTC calendar day, from midnight to midnight.</summary>
    Day = 0,

    /// <summary>A UTC calendar month, from the 1st at 00:00 to the next 1st at 00:00.</summary>
    Month = 1,
}
