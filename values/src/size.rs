//! Byte sizes with Docker's semantics: binary multiples, case-insensitive
//! units, `"512m"`, `"1.5GiB"`, `"1024"`.

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;
const PIB: u64 = 1 << 50;

const UNITS_HINT: &str = "use b, k, m, g, t or p (optionally followed by b or ib)";

fn unit_multiplier(unit: &str) -> Option<u64> {
    let unit = unit.to_ascii_lowercase();
    if unit.is_empty() || unit == "b" {
        return Some(1);
    }
    let prefix = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    match prefix {
        "k" => Some(KIB),
        "m" => Some(MIB),
        "g" => Some(GIB),
        "t" => Some(TIB),
        "p" => Some(PIB),
        _ => None,
    }
}

/// Parses a byte size: a decimal number, optional whitespace, and an optional
/// case-insensitive unit `b`, `k`, `m`, `g`, `t`, `p`, each optionally followed
/// by `b` or `ib` (`"512k"`, `"512kb"`, `"512KiB"`). All multiples are binary
/// (`1k` = 1024). Fractions are allowed and rounded down to whole bytes
/// (`"1.5g"`). Surrounding whitespace is ignored.
pub fn parse_size(input: &str) -> Result<u64, String> {
    let text = input.trim();
    if text.is_empty() {
        return Err("empty size; use a number with an optional unit, like \"512m\"".to_string());
    }
    if text.starts_with('-') {
        return Err(format!("invalid size \"{input}\": must not be negative"));
    }
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    let unit = unit.trim_start();
    let (int_digits, frac_digits) = number.split_once('.').unwrap_or((number, ""));
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(format!(
            "invalid size \"{input}\": expected a number, like \"512m\""
        ));
    }
    if frac_digits.contains('.') {
        return Err(format!(
            "invalid size \"{input}\": malformed number \"{number}\""
        ));
    }
    let Some(multiplier) = unit_multiplier(unit) else {
        return Err(format!(
            "invalid size unit \"{unit}\" in \"{input}\"; {UNITS_HINT}"
        ));
    };
    let overflow = || format!("size \"{input}\" is too large");
    let mut whole: u128 = 0;
    for digit in int_digits.bytes() {
        whole = whole
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(digit - b'0')))
            .filter(|v| *v <= u128::from(u64::MAX))
            .ok_or_else(overflow)?;
    }
    let mut bytes = whole
        .checked_mul(u128::from(multiplier))
        .ok_or_else(overflow)?;
    // PiB is 2^50, so 20 fraction digits are more than enough for byte precision.
    let mut frac: u128 = 0;
    let mut scale: u128 = 1;
    for digit in frac_digits.bytes().take(20) {
        frac = frac * 10 + u128::from(digit - b'0');
        scale *= 10;
    }
    bytes += frac * u128::from(multiplier) / scale;
    u64::try_from(bytes).map_err(|_| overflow())
}

/// Formats a byte count in the shortest exact form [`parse_size`] reads back:
/// the largest unit that divides it (`"512m"`, `"2g"`, `"1536k"`), else plain
/// bytes (`"1000"`). Zero is `"0"`.
pub fn format_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_string();
    }
    for (unit, multiplier) in [("p", PIB), ("t", TIB), ("g", GIB), ("m", MIB), ("k", KIB)] {
        if bytes.is_multiple_of(multiplier) {
            return format!("{}{unit}", bytes / multiplier);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_valid_forms() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("1024", 1024),
            ("100b", 100),
            ("100B", 100),
            ("512k", 512 * KIB),
            ("512kb", 512 * KIB),
            ("512kib", 512 * KIB),
            ("512KiB", 512 * KIB),
            ("512m", 512 * MIB),
            ("512MB", 512 * MIB),
            ("1g", GIB),
            ("1.5GiB", GIB + GIB / 2),
            ("1.5g", GIB + GIB / 2),
            ("2t", 2 * TIB),
            ("1p", PIB),
            ("1 g", GIB),
            ("1\tmb", MIB),
            ("  64m  ", 64 * MIB),
            ("1.5", 1),
            ("0.5k", 512),
            (".5k", 512),
            ("1.k", KIB),
            ("0.001k", 1),
            ("0.0001k", 0),
            ("1.999b", 1),
            ("15p", 15 * PIB),
            ("16383.99999p", 18_446_744_062_450_552_547),
            ("18446744073709551615", u64::MAX),
            ("18446744073709551615b", u64::MAX),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_size(input), Ok(*expected), "{input}");
        }
    }

    #[test]
    fn rejects_invalid_forms() {
        let hint = UNITS_HINT;
        let cases: Vec<(&str, String)> = vec![
            (
                "",
                "empty size; use a number with an optional unit, like \"512m\"".to_string(),
            ),
            (
                "   ",
                "empty size; use a number with an optional unit, like \"512m\"".to_string(),
            ),
            (
                "-1",
                "invalid size \"-1\": must not be negative".to_string(),
            ),
            (
                "-1g",
                "invalid size \"-1g\": must not be negative".to_string(),
            ),
            (
                "g",
                "invalid size \"g\": expected a number, like \"512m\"".to_string(),
            ),
            (
                ".",
                "invalid size \".\": expected a number, like \"512m\"".to_string(),
            ),
            (
                "1.2.3m",
                "invalid size \"1.2.3m\": malformed number \"1.2.3\"".to_string(),
            ),
            ("5x", format!("invalid size unit \"x\" in \"5x\"; {hint}")),
            (
                "5 kk",
                format!("invalid size unit \"kk\" in \"5 kk\"; {hint}"),
            ),
            (
                "5ib",
                format!("invalid size unit \"ib\" in \"5ib\"; {hint}"),
            ),
            (
                "5bb",
                format!("invalid size unit \"bb\" in \"5bb\"; {hint}"),
            ),
            (
                "5e3",
                format!("invalid size unit \"e3\" in \"5e3\"; {hint}"),
            ),
            (
                "1g 2m",
                format!("invalid size unit \"g 2m\" in \"1g 2m\"; {hint}"),
            ),
            (
                "18446744073709551616",
                "size \"18446744073709551616\" is too large".to_string(),
            ),
            ("16384p", "size \"16384p\" is too large".to_string()),
            ("16384.5p", "size \"16384.5p\" is too large".to_string()),
            (
                "99999999999999999999999999k",
                "size \"99999999999999999999999999k\" is too large".to_string(),
            ),
        ];
        for (input, message) in cases {
            assert_eq!(parse_size(input), Err(message), "{input}");
        }
    }

    #[test]
    fn formats_sizes() {
        let cases: &[(u64, &str)] = &[
            (0, "0"),
            (1, "1"),
            (1000, "1000"),
            (1024, "1k"),
            (1536, "1536"),
            (1536 * KIB, "1536k"),
            (512 * MIB, "512m"),
            (2 * GIB, "2g"),
            (3 * TIB, "3t"),
            (5 * PIB, "5p"),
            (u64::MAX, "18446744073709551615"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(format_size(*bytes), *expected);
        }
    }

    #[test]
    fn format_round_trips() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            for value in [state, state >> (state % 64), (state % 4096) << (state % 50)] {
                assert_eq!(parse_size(&format_size(value)), Ok(value), "{value}");
            }
        }
    }
}
