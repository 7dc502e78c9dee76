//! Times as Docker writes them: RFC 3339 in UTC, whole seconds for image
//! and volume times (`2026-11-29T00:00:00Z`), nanoseconds for container,
//! event and log times (`2026-11-29T00:00:00.123456789Z`).
//!
//! chrono parses and formats; this module fixes the forms. The nanosecond
//! form always has nine digits (Go's `RFC3339Nano` drops trailing zeros):
//! stamps of one width sort as text, which the log files and `servin logs`
//! rely on. Parsing takes any RFC 3339 time: any offset, `T`, `t` or a
//! space between date and time, any number of fraction digits.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};

/// Docker's zero time, written for times that have not happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Parses an RFC 3339 time into seconds since the epoch (the fraction
/// dropped).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp())
}

/// Formats seconds since the epoch as RFC 3339 in UTC, whole seconds.
pub fn format_rfc3339(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0).map_or_else(
        || ZERO_TIME.to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// Formats a time as RFC 3339 in UTC with nine fraction digits, as Docker
/// writes container times (`2026-11-29T00:00:00.123456789Z`). Times before
/// the epoch are written as the epoch.
pub fn format_nanos(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    DateTime::<Utc>::from_timestamp(secs, d.subsec_nanos()).map_or_else(
        || ZERO_TIME.to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Nanos, true),
    )
}

/// Parses an RFC 3339 time with its fraction (nanoseconds kept, digits
/// past the ninth dropped) into a `SystemTime`; times before the epoch too.
pub fn parse_nanos(s: &str) -> Option<SystemTime> {
    let t = DateTime::parse_from_rfc3339(s).ok()?;
    let secs = t.timestamp();
    let base = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))?
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))?
    };
    base.checked_add(Duration::from_nanos(u64::from(t.timestamp_subsec_nanos())))
}

/// Now, in seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:30:15.123456789Z"),
            Some(1_709_209_815)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T13:30:15+01:00"),
            Some(1_709_209_815)
        );
        assert_eq!(format_rfc3339(1_709_209_815), "2024-02-29T12:30:15Z");
        assert_eq!(parse_rfc3339("garbage"), None);
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_709_209_815, 5);
        assert_eq!(format_nanos(t), "2024-02-29T12:30:15.000000005Z");
        assert_eq!(parse_nanos(&format_nanos(t)), Some(t));
        assert_eq!(
            parse_nanos("2024-02-29T12:30:15.5Z"),
            Some(std::time::UNIX_EPOCH + std::time::Duration::new(1_709_209_815, 500_000_000))
        );
    }

    #[test]
    fn keeps_docker_forms() {
        // Nine digits even when they are zeros, so stamps sort as text.
        assert_eq!(format_nanos(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(parse_rfc3339(ZERO_TIME), Some(-62_135_596_800));
        assert_eq!(format_rfc3339(-62_135_596_800), ZERO_TIME);
        assert_eq!(parse_rfc3339("2024-02-29 12:30:15Z"), Some(1_709_209_815));
        assert_eq!(
            parse_nanos("1969-12-31T23:59:59.5Z"),
            UNIX_EPOCH.checked_sub(Duration::from_millis(500))
        );
        for bad in [
            "2024-02-30T00:00:00Z",
            "2024-02-29T12:30:15",
            "2024-02-29T12:30:15Zjunk",
            "2024-02-29T12:30:15.Z",
        ] {
            assert_eq!(parse_nanos(bad), None, "{bad}");
        }
    }
}
