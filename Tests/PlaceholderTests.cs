namespace Bastion.Tests;

public class PlaceholderTests
{
    [Fact]
    public void Builds() => Assert.Equal(2, 1 + 1);
}
