//! Go / Compose style durations: `"2s"`, `"1m30s"`, `"250ms"`, `"1.5h"`, `"0"`.

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Units accepted by [`parse_duration`], with their length in nanoseconds.
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // µ MICRO SIGN
    ("\u{3bc}s", 1_000), // μ GREEK SMALL LETTER MU
    ("ms", 1_000_000),
    ("s", NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("h", 3_600 * NANOS_PER_SEC),
];

/// Parses a duration written as a sequence of decimal numbers, each with a
/// unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), like Go's `time.ParseDuration`
/// and Compose: `"2s"`, `"1m30s"`, `"1.5s"`, `"10µs"`. A lone `"0"` needs no
/// unit. Negative durations and values beyond [`Duration::MAX`] are errors.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    if input.is_empty() {
        return Err("empty duration; use a number with a unit, like \"30s\"".to_string());
    }
    if input == "0" {
        return Ok(Duration::ZERO);
    }
    if input.starts_with('-') {
        return Err(format!(
            "invalid duration \"{input}\": must not be negative"
        ));
    }
    let max_nanos = u128::from(u64::MAX) * NANOS_PER_SEC + (NANOS_PER_SEC - 1);
    let overflow = || format!("duration \"{input}\" is too large");
    let mut rest = input.strip_prefix('+').unwrap_or(input);
    if rest.is_empty() {
        return Err(format!("invalid duration \"{input}\": missing number"));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        // Number: digits, optionally a '.' and more digits.
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after_int) = rest.split_at(int_len);
        let (frac_digits, after_num) = match after_int.strip_prefix('.') {
            Some(after_dot) => {
                let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                after_dot.split_at(frac_len)
            }
            None => ("", after_int),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(format!(
                "invalid duration \"{input}\": expected a number at \"{rest}\""
            ));
        }
        // Unit: everything up to the next digit or '.'.
        let unit_len = after_num
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_num.len());
        let (unit, next) = after_num.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!(
                "missing unit in duration \"{input}\"; use ns, us, ms, s, m or h"
            ));
        }
        let Some(&(_, unit_nanos)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!(
                "invalid duration unit \"{unit}\" in \"{input}\"; use ns, us, ms, s, m or h"
            ));
        };
        let mut value: u128 = 0;
        for digit in int_digits.bytes() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u128::from(digit - b'0')))
                .filter(|v| *v <= max_nanos)
                .ok_or_else(overflow)?;
        }
        let mut nanos = value.checked_mul(unit_nanos).ok_or_else(overflow)?;
        // Only the first 20 fraction digits can matter at nanosecond precision.
        let mut frac: u128 = 0;
        let mut scale: u128 = 1;
        for digit in frac_digits.bytes().take(20) {
            frac = frac * 10 + u128::from(digit - b'0');
            scale *= 10;
        }
        nanos = nanos
            .checked_add(frac * unit_nanos / scale)
            .ok_or_else(overflow)?;
        total = total
            .checked_add(nanos)
            .filter(|t| *t <= max_nanos)
            .ok_or_else(overflow)?;
        rest = next;
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| overflow())?;
    let sub = u32::try_from(total % NANOS_PER_SEC).map_err(|_| overflow())?;
    Ok(Duration::new(secs, sub))
}

/// Formats a duration in the canonical form [`parse_duration`] reads back:
/// largest units first, zero parts left out (`"1h2m3s"`, `"1m30s"`, `"2h"`),
/// seconds with a fraction when there is a sub-second rest (`"1.5s"`), and
/// below one second whole `ms`, else whole `us`, else `ns` (`"250ms"`,
/// `"1500us"`, `"7ns"`). Zero is `"0s"`.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let sub = duration.subsec_nanos();
    if secs == 0 {
        return if sub == 0 {
            "0s".to_string()
        } else if sub.is_multiple_of(1_000_000) {
            format!("{}ms", sub / 1_000_000)
        } else if sub.is_multiple_of(1_000) {
            format!("{}us", sub / 1_000)
        } else {
            format!("{sub}ns")
        };
    }
    let hours = secs / 3_600;
    let minutes = secs % 3_600 / 60;
    let seconds = secs % 60;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if seconds > 0 || sub > 0 {
        out.push_str(&seconds.to_string());
        if sub > 0 {
            let fraction = format!("{sub:09}");
            out.push('.');
            out.push_str(fraction.trim_end_matches('0'));
        }
        out.push('s');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_valid_forms() {
        let cases: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("0h0m", Duration::ZERO),
            ("2s", Duration::from_secs(2)),
            ("1m30s", Duration::from_secs(90)),
            ("250ms", ms(250)),
            ("1h", Duration::from_secs(3600)),
            ("1.5s", ms(1500)),
            ("1.s", Duration::from_secs(1)),
            (".5s", ms(500)),
            ("10us", Duration::from_micros(10)),
            ("10\u{b5}s", Duration::from_micros(10)),
            ("10\u{3bc}s", Duration::from_micros(10)),
            ("100ns", Duration::from_nanos(100)),
            ("1h2m3s4ms5us6ns", Duration::new(3723, 4_005_006)),
            ("1.5h", Duration::from_secs(5400)),
            ("0.1ns", Duration::ZERO),
            ("1.0000000001s", Duration::from_secs(1)),
            ("1.123456789123s", Duration::new(1, 123_456_789)),
            ("90m", Duration::from_secs(5400)),
            ("+5s", Duration::from_secs(5)),
            ("1s1s", Duration::from_secs(2)),
            ("007s", Duration::from_secs(7)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_duration(input).as_ref(), Ok(expected), "{input}");
        }
    }

    #[test]
    fn parses_up_to_duration_max() {
        let max = format_duration(Duration::MAX);
        assert_eq!(parse_duration(&max), Ok(Duration::MAX));
        assert_eq!(
            parse_duration(&format!("{}s", u64::MAX)),
            Ok(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn rejects_invalid_forms() {
        let cases: &[(&str, &str)] = &[
            ("", "empty duration; use a number with a unit, like \"30s\""),
            ("-5s", "invalid duration \"-5s\": must not be negative"),
            ("-0", "invalid duration \"-0\": must not be negative"),
            (
                "5",
                "missing unit in duration \"5\"; use ns, us, ms, s, m or h",
            ),
            (
                "00",
                "missing unit in duration \"00\"; use ns, us, ms, s, m or h",
            ),
            (
                "1m30",
                "missing unit in duration \"1m30\"; use ns, us, ms, s, m or h",
            ),
            (
                "5x",
                "invalid duration unit \"x\" in \"5x\"; use ns, us, ms, s, m or h",
            ),
            (
                "5 s",
                "invalid duration unit \" s\" in \"5 s\"; use ns, us, ms, s, m or h",
            ),
            (
                "5S",
                "invalid duration unit \"S\" in \"5S\"; use ns, us, ms, s, m or h",
            ),
            (
                "1d",
                "invalid duration unit \"d\" in \"1d\"; use ns, us, ms, s, m or h",
            ),
            ("s", "invalid duration \"s\": expected a number at \"s\""),
            (".s", "invalid duration \".s\": expected a number at \".s\""),
            ("+", "invalid duration \"+\": missing number"),
            (
                " 5s",
                "invalid duration \" 5s\": expected a number at \" 5s\"",
            ),
            (
                "1..5s",
                "missing unit in duration \"1..5s\"; use ns, us, ms, s, m or h",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(parse_duration(input), Err(message.to_string()), "{input}");
        }
    }

    #[test]
    fn rejects_overflow() {
        let too_big = format!("{}s", u128::from(u64::MAX) + 1);
        assert_eq!(
            parse_duration(&too_big),
            Err(format!("duration \"{too_big}\" is too large"))
        );
        let huge = "9".repeat(60) + "ns";
        assert_eq!(
            parse_duration(&huge),
            Err(format!("duration \"{huge}\" is too large"))
        );
        let sum = format!("{}s1s", u64::MAX);
        assert!(parse_duration(&sum).is_err());
        assert!(parse_duration(&format!("{}h", u64::MAX)).is_err());
    }

    #[test]
    fn formats_canonically() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_secs(3723), "1h2m3s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(3630), "1h30s"),
            (Duration::from_secs(2), "2s"),
            (ms(250), "250ms"),
            (ms(1500), "1.5s"),
            (ms(2250), "2.25s"),
            (Duration::new(60, 1), "1m0.000000001s"),
            (Duration::from_micros(1500), "1500us"),
            (Duration::from_nanos(7), "7ns"),
            (Duration::from_nanos(1_000_001), "1000001ns"),
        ];
        for (duration, expected) in cases {
            assert_eq!(format_duration(*duration), *expected, "{duration:?}");
        }
    }

    #[test]
    fn format_round_trips() {
        let mut values = vec![Duration::ZERO, Duration::MAX, Duration::from_secs(u64::MAX)];
        // A deterministic spread of values over many magnitudes.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let shift = state % 64;
            let secs = (state >> 3) >> shift;
            let nanos = u32::try_from(state % 1_000_000_000).unwrap();
            values.push(Duration::new(secs, nanos));
            values.push(Duration::new(0, nanos));
            values.push(Duration::new(secs, 0));
            values.push(Duration::from_millis(state % 10_000_000));
        }
        for d in values {
            let text = format_duration(d);
            assert_eq!(parse_duration(&text), Ok(d), "{text}");
        }
    }
}
