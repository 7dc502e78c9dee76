//! `servin logs`.

use std::io::Write;

use servin::client::containers::{Demux, LogOptions};

use super::{Cli, Format};
use crate::ui::Failed;

/// Print a container's output
///
/// Standard output and standard error go to this command's own, line by
/// line as the container wrote them. The log is kept by the container's
/// monitor, rotated by size (see the book's "Running containers").
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep printing new output until the container stops
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines (`all` for every line)
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<String>,
    /// Only output since this time: RFC 3339 (`2026-11-29T10:00:00Z`), unix
    /// seconds, or a duration before now (`10m`)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only output before this time (same forms as --since)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Prefix each line with the time it was written
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// The container, by name or ID
    pub container: String,
}

/// `--since`/`--until` as unix seconds with nanoseconds.
pub fn parse_time(flag: &str, v: &str) -> Result<String, Failed> {
    let bad = |why: &str| Failed::Usage(format!("invalid {flag} {v:?}: {why}"));
    if let Some((secs, frac)) = v.split_once('.')
        && secs.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !secs.is_empty()
    {
        return Ok(v.to_string());
    }
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(v.to_string());
    }
    if v.contains('T') || v.contains('-') && v.len() >= 10 {
        let (secs, nanos) = parse_rfc3339(v).ok_or_else(|| {
            bad("want RFC 3339 (2026-11-29T10:00:00Z), unix seconds or a duration like 10m")
        })?;
        if secs < 0 {
            return Err(bad("times before 1970 are not taken"));
        }
        return Ok(if nanos == 0 {
            secs.to_string()
        } else {
            format!("{secs}.{nanos:09}")
        });
    }
    let d = servin::project::values::duration::parse_duration(v)
        .map_err(|e| bad(&format!("{e}; or give RFC 3339 or unix seconds")))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let then = now.saturating_sub(d);
    Ok(format!("{}.{:09}", then.as_secs(), then.subsec_nanos()))
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` as seconds since the epoch and
/// nanoseconds.
fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let b = s.as_bytes();
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
    {
        return None;
    }
    let (y, m, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hh, mm, ss) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if m == 0 || m > 12 || d == 0 || d > 31 || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut scale = 100_000_000;
        while let Some(digit) = b.get(i).filter(|c| c.is_ascii_digit()) {
            nanos += u32::from(digit - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == 20 {
            return None;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let v = num(i + 1, 2)? * 3600 + num(i + 4, 2)? * 60;
            if *sign == b'+' { v } else { -v }
        }
        _ => return None,
    };
    let end = match b.get(i) {
        Some(b'Z' | b'z') => i + 1,
        _ => i + 6,
    };
    if s.len() != end {
        return None;
    }
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss - offset, nanos))
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let opts = LogOptions {
        follow: args.follow,
        tail: args.tail.clone(),
        since: args
            .since
            .as_deref()
            .map(|s| parse_time("--since", s))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|s| parse_time("--until", s))
            .transpose()?,
        timestamps: args.timestamps,
    };
    if let Some(t) = &opts.tail
        && t != "all"
        && t.parse::<usize>().is_err()
    {
        return Err(Failed::Usage(format!(
            "invalid --tail {t:?}: want a number or all"
        )));
    }
    let engine = servin::client::Engine::connect()?;
    let info = engine.inspect_container(&args.container)?;
    let tty = info.config.as_ref().and_then(|c| c.tty).unwrap_or(false);
    let mut demux = Demux::default();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    engine.logs(&args.container, &opts, |chunk| {
        if tty {
            let _ = out.write_all(chunk);
            let _ = out.flush();
        } else {
            demux.feed(chunk, |stream, data| {
                if stream == 2 {
                    let _ = err.write_all(data);
                } else {
                    let _ = out.write_all(data);
                }
            });
            let _ = out.flush();
            let _ = err.flush();
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times_in_every_form() {
        assert!(matches!(
            parse_time("--since", "1700000000").as_deref(),
            Ok("1700000000")
        ));
        assert!(matches!(
            parse_time("--since", "1700000000.5").as_deref(),
            Ok("1700000000.5")
        ));
        assert!(matches!(
            parse_time("--since", "2023-11-14T22:13:20Z").as_deref(),
            Ok("1700000000")
        ));
        assert!(matches!(
            parse_time("--since", "2023-11-14T23:13:20.25+01:00").as_deref(),
            Ok("1700000000.250000000")
        ));
        assert!(matches!(
            parse_time("--until", "2026-11-29T10:00:00.000000001Z").as_deref(),
            Ok("1795946400.000000001")
        ));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let ten_minutes_ago: f64 = parse_time("--since", "10m").unwrap().parse().unwrap();
        assert!((now - 600.0 - ten_minutes_ago).abs() < 60.0);
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-11-29T10:00:00",
            "2026-11-29T10:00:00Zjunk",
            "2026-11-29T10:00:00.Z",
            "1969-12-31T23:59:59Z",
            "-5m",
        ] {
            assert!(
                matches!(parse_time("--since", bad), Err(Failed::Usage(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_time("--since", "yesterday"),
            Err(Failed::Usage(_))
        ));
    }
}
