//! Noticing when processes the engine did not necessarily start (monitors,
//! found again after an engine restart) exit.
//!
//! One thread waits on an epoll set of pidfds (a pidfd turns readable when
//! its process exits) and wakes the task waiting for each. This costs one
//! thread however many containers run, where a blocking wait per container
//! would cost a thread each.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustix::event::epoll;
use rustix::process::{Pid, PidfdFlags, WaitOptions};
use tokio::sync::oneshot;

struct Watcher {
    epoll: OwnedFd,
    waiting: Mutex<HashMap<u64, (OwnedFd, oneshot::Sender<()>)>>,
    next: Mutex<u64>,
}

fn watcher() -> Option<&'static Arc<Watcher>> {
    static WATCHER: OnceLock<Option<Arc<Watcher>>> = OnceLock::new();
    WATCHER
        .get_or_init(|| {
            let ep = epoll::create(epoll::CreateFlags::CLOEXEC).ok()?;
            let w = Arc::new(Watcher {
                epoll: ep,
                waiting: Mutex::new(HashMap::new()),
                next: Mutex::new(0),
            });
            let thread_w = Arc::clone(&w);
            std::thread::Builder::new()
                .name("servin-reaper".to_string())
                .spawn(move || run(&thread_w))
                .ok()?;
            Some(w)
        })
        .as_ref()
}

fn run(w: &Watcher) {
    let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
    loop {
        events.clear();
        if let Err(e) = epoll::wait(&w.epoll, rustix::buffer::spare_capacity(&mut events), None) {
            if e != rustix::io::Errno::INTR {
                tracing::warn!("waiting for processes: {e}");
                #[expect(
                    clippy::disallowed_methods,
                    reason = "the reaper is a thread of its own, off the async thread"
                )]
                std::thread::sleep(Duration::from_millis(100));
            }
            continue;
        }
        for ev in &events {
            let key = ev.data.u64();
            let entry = w.waiting.lock().ok().and_then(|mut m| m.remove(&key));
            if let Some((fd, tx)) = entry {
                let _ = epoll::delete(&w.epoll, &fd);
                let _ = tx.send(());
            }
        }
    }
}

/// Waits until process `pid` exits, and reaps it when it is the engine's
/// child. Returns at once when there is no such process.
pub async fn wait_for_exit(pid: i64) {
    let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    let registered = watcher().and_then(|w| {
        let fd = rustix::process::pidfd_open(raw, PidfdFlags::empty()).ok()?;
        let (tx, rx) = oneshot::channel();
        let key = {
            let mut n = w.next.lock().ok()?;
            *n += 1;
            *n
        };
        let mut waiting = w.waiting.lock().ok()?;
        epoll::add(
            &w.epoll,
            &fd,
            epoll::EventData::new_u64(key),
            epoll::EventFlags::IN,
        )
        .ok()?;
        waiting.insert(key, (fd, tx));
        Some(rx)
    });
    match registered {
        Some(rx) => {
            let _ = rx.await;
        }
        None => poll(raw).await,
    }
    let _ = rustix::process::waitpid(Some(raw), WaitOptions::NOHANG);
}

/// The fallback without pidfds: look every 200 ms.
async fn poll(pid: Pid) {
    loop {
        let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
        if rustix::process::test_kill_process(pid).is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn notices_a_child_exit() {
        let child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let pid = i64::from(child.id());
        tokio::time::timeout(Duration::from_secs(10), wait_for_exit(pid))
            .await
            .unwrap();
        // Reaped: no zombie is left.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        assert!(!status.contains("State:\tZ"), "{status}");
        drop(child);
    }
}
