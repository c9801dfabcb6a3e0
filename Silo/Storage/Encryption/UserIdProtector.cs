using System.Text;
using Bastion.Users;

namespace Bastion.Storage;

/// <summary>
/// Seals user ids for the user directory with the envelope format, under the user's own data key
/// (<see cref="DataKeyScope.ForUser"/>), bound to the pseudonym: an id moved to another entry does not open.
/// </summary>
public sealed class UserIdProtector(DataKeyStore dataKeys) : IUserIdProtector
{
    private const string Purpose = "bastion.user-directory";
    private const string Field = "user-id";

    public async Task<byte[]> ProtectAsync(string pseudonym, string userId)
    {
        var scope = DataKeyScope.ForUser(pseudonym);
        var plaintext = Encoding.UTF8.GetBytes(userId);
        for (var attempt = 1; ; attempt++)
        {
            var key = await dataKeys.GetCurrentAsync(scope, CancellationToken.None);
            try
            {
                return EnvelopeCipher.Seal(plaintext, EnvelopeCipher.AssociatedData(Purpose, pseudonym, Field), key);
            }
            catch (DataKeyUnavailableException) when (attempt == 1 && key.IsRetired)
            {
                // Evicted between lookup and use: look it up again.
            }
        }
    }

    public async Task<string?> UnprotectAsync(string pseudonym, byte[] protectedUserId)
    {
        var scope = DataKeyScope.ForUser(pseudonym);
        var header = EnvelopeCipher.ReadHeader(protectedUserId);
        for (var attempt = 1; ; attempt++)
        {
            DataKey key;
            try
            {
                key = await dataKeys.FindAsync(scope, header.DataKeyId, CancellationToken.None);
            }
            catch (DataKeyErasedException)
            {
                return null;
            }

            try
            {
                return EnvelopeCipher.Open(protectedUserId, EnvelopeCipher.AssociatedData(Purpose, pseudonym, Field), key, static id => Encoding.UTF8.GetString(id));
            }
            catch (DataKeyUnavailableException) when (attempt == 1 && key.IsRetired)
            {
                // Evicted between lookup and use: look it up again.
            }
        }
    }
}
