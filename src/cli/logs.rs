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
        let secs = parse_rfc3339(v).ok_or_else(|| {
            bad("want RFC 3339 (2026-11-29T10:00:00Z), unix seconds or a duration like 10m")
        })?;
        return Ok(secs.to_string());
    }
    let d = servin::project::values::duration::parse_duration(v)
        .map_err(|e| bad(&format!("{e}; or give RFC 3339 or unix seconds")))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let then = now.saturating_sub(d);
    Ok(format!("{}.{:09}", then.as_secs(), then.subsec_nanos()))
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` as seconds since the epoch.
fn parse_rfc3339(s: &str) -> Option<i64> {
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
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
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
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss - offset)
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
        assert!(parse_time("--since", "10m").is_ok());
        assert!(matches!(
            parse_time("--since", "yesterday"),
            Err(Failed::Usage(_))
        ));
    }
}
