//! The guest's clock follows the host's: set when each channel session
//! starts (the VM booted, or the host end reconnected) and again when the
//! host's wall clock jumps against its monotonic clock — the host slept
//! (CLOCK_MONOTONIC stops while suspended) or its time was stepped.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::channel::{self, Session};

/// How often the supervisor compares the two clocks.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// A jump larger than this resets the guest's clock.
pub const JUMP: Duration = Duration::from_secs(1);
/// The guest's clock is set again this often anyway (an emulated guest's
/// clock drifts).
pub const RESYNC_EVERY: Duration = Duration::from_secs(600);

/// Wall clock minus monotonic clock, in nanoseconds: constant while neither
/// sleeps nor steps.
pub fn offset_nanos() -> i128 {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let mono = i128::from(mono.tv_sec) * 1_000_000_000 + i128::from(mono.tv_nsec);
    wall - mono
}

/// Whether the offset moved by more than [`JUMP`].
pub fn jumped(before: i128, now: i128) -> bool {
    (now - before).unsigned_abs() > JUMP.as_nanos()
}

/// `settime SECS.NANOS` with the host's time now.
pub fn settime_command() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("settime {}.{:09}", now.as_secs(), now.subsec_nanos())
}

async fn set(session: &Session, why: &str) {
    match channel::control(session, &[settime_command()]).await {
        Ok(lines) if lines.first().is_some_and(|l| l.starts_with("ok")) => {
            channel::log(&format!("guest clock set ({why})"));
        }
        Ok(lines) => channel::log(&format!("guest clock not set: {}", lines.join("; "))),
        Err(e) => channel::log(&format!("guest clock not set: {e}")),
    }
}

/// Keeps the guest's clock in step for as long as the supervisor runs.
pub async fn keep(mut session: Session) {
    let mut offset = offset_nanos();
    let mut last_set = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(CHECK_EVERY);
    loop {
        tokio::select! {
            changed = session.changed() => {
                if changed.is_err() {
                    return;
                }
                let up = session.borrow_and_update().is_some();
                if up {
                    set(&session, "new channel session").await;
                    last_set = tokio::time::Instant::now();
                }
            }
            _ = tick.tick() => {
                let now = offset_nanos();
                let stale = last_set.elapsed() > RESYNC_EVERY;
                if (jumped(offset, now) || stale) && session.borrow().is_some() {
                    let why = if stale { "periodic" } else { "the host's clock jumped (sleep or step)" };
                    set(&session, why).await;
                    last_set = tokio::time::Instant::now();
                }
                offset = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps() {
        assert!(!jumped(0, 500_000_000));
        assert!(jumped(0, 5_000_000_000));
        assert!(jumped(5_000_000_000, 0));
        let a = offset_nanos();
        let b = offset_nanos();
        assert!(!jumped(a, b));
        let cmd = settime_command();
        let (secs, nanos) = cmd["settime ".len()..].split_once('.').unwrap_or(("", ""));
        assert!(
            secs.parse::<u64>().is_ok_and(|s| s > 1_700_000_000),
            "{cmd}"
        );
        assert_eq!(nanos.len(), 9);
    }
}
