//! `servin logs`.

use std::io::{IsTerminal, Write};

use servin::client::containers::{Demux, LogOptions};

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Print a container's output
///
/// Standard output and standard error go to this command's own, line by
/// line as the container wrote them. The log is kept by the container's
/// monitor, rotated by size (see the book's "Running containers").
///
/// In a project folder (or with `-f` / `-p` before the command), takes
/// services instead: `servin logs [-f] [SERVICE]...` prints the output of
/// the services' containers (all the project's without SERVICE),
/// interleaved in time order, each line prefixed with its service (and
/// replica number when there are several) in its own colour.
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
    /// The container, by name or ID; in a project folder, services of the
    /// project (none: all of them)
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
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

/// An RFC 3339 time (any offset, any number of fraction digits) as
/// seconds since the epoch and nanoseconds; chrono's parser, as the
/// engine's.
fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some((t.timestamp(), t.timestamp_subsec_nanos()))
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
    let project = if args.containers.is_empty() {
        match super::services::context(cli) {
            Some((name, _)) => Some(super::services::of_project(&engine, &name)?),
            None => {
                return Err(Failed::Usage(
                    "logs takes a container (or, in a project folder, services)".to_string(),
                ));
            }
        }
    } else if super::services::containers(cli, &engine, &args.containers)?.is_some() {
        let (name, _) = super::services::context(cli).unwrap_or_default();
        let all = super::services::of_project(&engine, &name)?;
        Some(
            all.into_iter()
                .filter(|c| args.containers.contains(&c.0))
                .collect(),
        )
    } else {
        None
    };
    if let Some(list) = project {
        return many(&list, &opts);
    }
    let [container] = args.containers.as_slice() else {
        return Err(Failed::Usage(
            "logs takes one container (several only as services, in a project folder)".to_string(),
        ));
    };
    let info = engine.inspect_container(container)?;
    let tty = info.config.as_ref().and_then(|c| c.tty).unwrap_or(false);
    let mut demux = Demux::default();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    engine.logs(container, &opts, |chunk| {
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

/// One line of a container's log.
struct Line {
    /// Unix seconds and nanoseconds, for the order.
    time: (i64, u32),
    /// The time as written, for `-t`.
    stamp: String,
    /// 2 for standard error.
    stream: u8,
    text: Vec<u8>,
}

/// Splits a `timestamps=1` log line into its time and text.
fn line_of(stream: u8, data: &[u8]) -> Line {
    let (stamp, text) = match data.iter().position(|b| *b == b' ') {
        Some(i) => (
            String::from_utf8_lossy(&data[..i]).to_string(),
            &data[i + 1..],
        ),
        None => (String::new(), data),
    };
    let time = parse_rfc3339(&stamp).unwrap_or((0, 0));
    Line {
        time,
        stamp,
        stream,
        text: text.to_vec(),
    }
}

/// The lines of one container's log chunks (a frame per line, or raw bytes
/// with a terminal).
fn lines_of(tty: bool, demux: &mut Demux, pending: &mut Vec<u8>, chunk: &[u8]) -> Vec<Line> {
    let mut out = Vec::new();
    if tty {
        pending.extend_from_slice(chunk);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            out.push(line_of(1, &line));
        }
    } else {
        demux.feed(chunk, |stream, data| out.push(line_of(stream, data)));
    }
    out
}

/// Prints one line with its prefix.
fn print_line(prefix: &str, line: &Line, timestamps: bool) {
    let mut text = Vec::with_capacity(prefix.len() + line.text.len() + 40);
    text.extend_from_slice(prefix.as_bytes());
    text.push(b' ');
    if timestamps {
        text.extend_from_slice(line.stamp.as_bytes());
        text.push(b' ');
    }
    text.extend_from_slice(&line.text);
    if !text.ends_with(b"\n") {
        text.push(b'\n');
    }
    if line.stream == 2 {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&text);
        let _ = err.flush();
    } else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&text);
        let _ = out.flush();
    }
}

/// The prefixes of a project's containers: `service |`, or `service-N |`
/// for a service with several, padded and coloured in turn.
fn prefixes(list: &[(String, u32, String)]) -> Vec<String> {
    let labels: Vec<String> = list
        .iter()
        .map(|(service, replica, _)| {
            if list.iter().filter(|c| &c.0 == service).count() > 1 {
                format!("{service}-{replica}")
            } else {
                service.clone()
            }
        })
        .collect();
    let width = labels.iter().map(String::len).max().unwrap_or(0);
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let p = format!("{l:<width$} |");
            if colour {
                format!(
                    "\x1b[{}m{p}\x1b[0m",
                    super::attach::COLOURS[i % super::attach::COLOURS.len()]
                )
            } else {
                p
            }
        })
        .collect()
}

/// The logs of several containers (service, replica, name): what is
/// written so far, merged in time order, then with `-f` new lines as they
/// come until every container stopped (or Ctrl-C).
fn many(list: &[(String, u32, String)], opts: &LogOptions) -> Result<(), Failed> {
    let prefixes = prefixes(list);
    let history = LogOptions {
        follow: false,
        timestamps: true,
        ..opts.clone()
    };
    let engine = servin::client::Engine::connect()?;
    let mut lines: Vec<(usize, Line)> = Vec::new();
    let mut ttys = Vec::new();
    let mut last: Vec<Option<(i64, u32)>> = Vec::new();
    for (i, (_, _, name)) in list.iter().enumerate() {
        let info = engine.inspect_container(name)?;
        let tty = info.config.as_ref().and_then(|c| c.tty).unwrap_or(false);
        ttys.push(tty);
        let mut demux = Demux::default();
        let mut pending = Vec::new();
        let mut mine = Vec::new();
        engine.logs(name, &history, |chunk| {
            mine.extend(lines_of(tty, &mut demux, &mut pending, chunk));
            Ok(())
        })?;
        last.push(mine.last().map(|l| l.time));
        lines.extend(mine.into_iter().map(|l| (i, l)));
    }
    lines.sort_by_key(|(i, l)| (l.time, *i));
    for (i, l) in &lines {
        print_line(&prefixes[*i], l, opts.timestamps);
    }
    if !opts.follow {
        return Ok(());
    }
    // Follow each container from just after the last line shown.
    let want_stamps = opts.timestamps;
    let threads: Vec<_> = list
        .iter()
        .enumerate()
        .map(|(i, (_, _, name))| {
            let name = name.clone();
            let prefix = prefixes[i].clone();
            let tty = ttys[i];
            let since = last[i].map(|(s, n)| {
                let (s, n) = if n >= 999_999_999 {
                    (s + 1, 0)
                } else {
                    (s, n + 1)
                };
                format!("{s}.{n:09}")
            });
            let opts = LogOptions {
                follow: true,
                timestamps: true,
                tail: None,
                since: since.or_else(|| opts.since.clone()),
                until: opts.until.clone(),
            };
            std::thread::spawn(move || -> Result<(), servin::client::Error> {
                let engine = servin::client::Engine::connect()?;
                let mut demux = Demux::default();
                let mut pending = Vec::new();
                engine.logs(&name, &opts, |chunk| {
                    for l in lines_of(tty, &mut demux, &mut pending, chunk) {
                        print_line(&prefix, &l, want_stamps);
                    }
                    Ok(())
                })
            })
        })
        .collect();
    let mut failed = false;
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                ui::error_chain(&e);
                failed = true;
            }
            Err(_) => failed = true,
        }
    }
    if failed {
        Err(Failed::Reported)
    } else {
        Ok(())
    }
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
