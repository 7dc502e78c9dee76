//! The `control` stream: one command per line, one answer line each
//! (`ok ...` or `error: ...`).
//!
//! | command | answer |
//! |---|---|
//! | `ping` | `ok pong` |
//! | `settime SECS[.NANOS]` | sets the guest's clock (the host's time at boot and after it wakes): `ok` |
//! | `uptime` | `ok SECONDS` since the guest booted |
//! | `poweroff` | `ok`, then SIGTERM to the VM's init, which stops the engine and powers off |

use std::time::Duration;

use servin_mux::MuxStream;

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ping,
    SetTime(Duration),
    Uptime,
    Poweroff,
}

impl Command {
    pub fn parse(line: &str) -> Result<Self, String> {
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let arg = words.next();
        let extra = words.next();
        let no_args = |c: Command| match (arg, extra) {
            (None, _) => Ok(c),
            _ => Err(format!("{cmd} takes no arguments")),
        };
        match cmd {
            "ping" => no_args(Self::Ping),
            "uptime" => no_args(Self::Uptime),
            "poweroff" => no_args(Self::Poweroff),
            "settime" => {
                let (Some(arg), None) = (arg, extra) else {
                    return Err("settime: want SECS since the epoch".into());
                };
                parse_time(arg)
                    .map(Self::SetTime)
                    .ok_or_else(|| format!("settime: {arg:?} is not SECS[.NANOS] since the epoch"))
            }
            "" => Err("empty command".into()),
            other => Err(format!(
                "unknown command {other:?}: want ping, settime, uptime or poweroff"
            )),
        }
    }
}

fn parse_time(arg: &str) -> Option<Duration> {
    let (secs, frac) = arg.split_once('.').unwrap_or((arg, ""));
    let secs: u64 = secs.parse().ok()?;
    let nanos = if frac.is_empty() {
        0
    } else {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{frac:0<9}").parse().ok()?
    };
    // Refuse a clock before 2001: a host that sends that is broken.
    (secs >= 1_000_000_000).then(|| Duration::new(secs, nanos))
}

fn run(command: &Command, init_pid: i32) -> Result<String, String> {
    match command {
        Command::Ping => Ok("pong".into()),
        Command::Uptime => {
            let text = std::fs::read_to_string("/proc/uptime")
                .map_err(|e| format!("read /proc/uptime: {e}"))?;
            Ok(text.split_whitespace().next().unwrap_or("0").to_string())
        }
        Command::SetTime(t) => {
            let ts = rustix::time::Timespec {
                tv_sec: t.as_secs() as i64,
                tv_nsec: i64::from(t.subsec_nanos()),
            };
            rustix::time::clock_settime(rustix::time::ClockId::Realtime, ts)
                .map_err(|e| format!("set the clock: {e}"))?;
            Ok(String::new())
        }
        Command::Poweroff => {
            let pid = rustix::process::Pid::from_raw(init_pid)
                .ok_or_else(|| format!("no init process {init_pid}"))?;
            rustix::process::kill_process(pid, rustix::process::Signal::TERM)
                .map_err(|e| format!("signal init (pid {init_pid}): {e}"))?;
            Ok(String::new())
        }
    }
}

/// Serves commands until the host ends the stream.
pub async fn serve(stream: MuxStream, init_pid: i32) {
    let (mut reader, mut writer) = stream.into_split();
    let mut pending = Vec::new();
    loop {
        let data = match reader.read().await {
            Ok(Some(data)) => data,
            Ok(None) | Err(_) => return,
        };
        pending.extend_from_slice(&data);
        if pending.len() > 4096 && !pending.contains(&b'\n') {
            let _ = writer.write(b"error: line too long\n").await;
            return;
        }
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let answer = match Command::parse(line.trim()).and_then(|c| run(&c, init_pid)) {
                Ok(text) if text.is_empty() => "ok\n".to_string(),
                Ok(text) => format!("ok {text}\n"),
                Err(message) => format!("error: {message}\n"),
            };
            if writer.write(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(Command::parse("ping"), Ok(Command::Ping));
        assert_eq!(
            Command::parse("settime 1765000000"),
            Ok(Command::SetTime(Duration::new(1_765_000_000, 0)))
        );
        assert_eq!(
            Command::parse("settime 1765000000.25"),
            Ok(Command::SetTime(Duration::new(1_765_000_000, 250_000_000)))
        );
        assert_eq!(
            Command::parse("settime 12"),
            Err("settime: \"12\" is not SECS[.NANOS] since the epoch".into())
        );
        assert_eq!(
            Command::parse("settime"),
            Err("settime: want SECS since the epoch".into())
        );
        assert_eq!(
            Command::parse("poweroff now"),
            Err("poweroff takes no arguments".into())
        );
        assert_eq!(
            Command::parse("reboot"),
            Err("unknown command \"reboot\": want ping, settime, uptime or poweroff".into())
        );
    }
}
