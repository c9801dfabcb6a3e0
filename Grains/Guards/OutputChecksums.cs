namespace Bastion.Guards;

/// <summary>
/// The check digits that tell a real identifier from a number of the same shape. Each takes the candidate as written
/// (separators included) and is false for anything that is not exactly the identifier's form.
/// </summary>
public static class OutputChecksums
{
    private const string DniLetters = "TRWAGMYFPDXBNJZSQVHLCKE";

    /// <summary>Payment card numbers (ISO/IEC 7812): 13 to 19 digits whose Luhn sum is a multiple of 10.</summary>
    public static bool IsLuhnValid(ReadOnlySpan<char> digits)
    {
        if (digits.Length is < 13 or > 19)
        {
            return false;
        }

        var sum = 0;
        for (var i = 0; i < digits.Length; i++)
        {
            var digit = digits[digits.Length - 1 - i] - '0';
            if (digit is < 0 or > 9)
            {
                return false;
            }

            if (i % 2 == 1)
            {
                digit *= 2;
                if (digit > 9)
                {
                    digit -= 9;
                }
            }

            sum += digit;
        }

        return sum % 10 == 0;
    }

    /// <summary>IBAN (ISO 13616): country letters, two check digits, 11 to 30 letters or digits; mod 97 of the rearranged number is 1.</summary>
    public static bool IsIbanValid(ReadOnlySpan<char> iban)
    {
        if (iban.Length is < 15 or > 34 || !char.IsAsciiLetterUpper(iban[0]) || !char.IsAsciiLetterUpper(iban[1])
            || !char.IsAsciiDigit(iban[2]) || !char.IsAsciiDigit(iban[3]))
        {
            return false;
        }

        var remainder = 0;
        for (var i = 0; i < iban.Length; i++)
        {
            var c = iban[(i + 4) % iban.Length];
            if (char.IsAsciiDigit(c))
            {
                remainder = ((remainder * 10) + (c - '0')) % 97;
            }
            else if (char.IsAsciiLetterUpper(c))
            {
                remainder = ((remainder * 100) + (c - 'A' + 10)) % 97;
            }
            else
            {
                return false;
            }
        }

        return remainder == 1;
    }

    /// <summary>Dutch citizen service number (BSN): nine digits passing the 11-test (weights 9…2, and −1 for the last); not all zeros.</summary>
    public static bool IsBsnValid(ReadOnlySpan<char> digits)
    {
        if (digits.Length != 9 || digits.IndexOfAnyExceptInRange('0', '9') >= 0 || digits.IndexOfAnyExcept('0') < 0)
        {
            return false;
        }

        var sum = -(digits[8] - '0');
        for (var i = 0; i < 8; i++)
        {
            sum += (9 - i) * (digits[i] - '0');
        }

        return sum % 11 == 0;
    }

    /// <summary>
    /// Spanish DNI (eight digits and a letter) or NIE (X, Y or Z, seven digits and a letter): the letter is the number
    /// mod 23 looked up in the official table, the NIE's first letter counting as 0, 1 or 2.
    /// </summary>
    public static bool IsDniOrNieValid(ReadOnlySpan<char> id)
    {
        if (id.Length != 9)
        {
            return false;
        }

        var number = id[0] switch
        {
            'X' => 0,
            'Y' => 1,
            'Z' => 2,
            >= '0' and <= '9' => id[0] - '0',
            _ => -1,
        };
        if (number < 0)
        {
            return false;
        }

        for (var i = 1; i < 8; i++)
        {
            if (!char.IsAsciiDigit(id[i]))
            {
                return false;
            }

            number = (number * 10) + (id[i] - '0');
        }

        return id[8] == DniLetters[number % 23];
    }

    /// <summary>UK NHS number: ten digits; 11 minus the weighted sum (weights 10…2) mod 11 is the tenth (11 counts as 0, 10 never valid).</summary>
    public static bool IsNhsNumberValid(ReadOnlySpan<char> digits)
    {
        if (digits.Length != 10 || digits.IndexOfAnyExceptInRange('0', '9') >= 0)
        {
            return false;
        }

        var sum = 0;
        for (var i = 0; i < 9; i++)
        {
            sum += (10 - i) * (digits[i] - '0');
        }

        var check = 11 - (sum % 11);
        return check switch
        {
            11 => digits[9] == '0',
            10 => false,
            _ => digits[9] - '0' == check,
        };
    }
}
