//! `servin up` without `-d`: the project's output, each line prefixed with
//! its container's name in a colour of its own, until Ctrl-C (which stops
//! the containers) or until every container has stopped.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use servin::client::containers::{Demux, LogOptions};

use crate::ui::{self, Failed};

/// One container to follow.
pub struct Followed {
    /// Its engine name.
    pub name: String,
    /// Whether it has a terminal (its log is then not multiplexed).
    pub tty: bool,
}

/// The ANSI colours given to containers in turn.
pub(super) const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// Prints the output the containers write from `since` (unix seconds) on,
/// until Ctrl-C, which stops them, or until all have stopped.
pub fn follow(containers: &[Followed], since: &str) -> Result<(), Failed> {
    let width = containers.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failed::Error(Box::new(e)))?;
    // Listening before any output shows, so an early Ctrl-C is not lost.
    let mut interrupt = {
        let _in = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|e| Failed::Error(Box::new(e)))?
    };
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stopping = Arc::new(AtomicBool::new(false));
    for (i, c) in containers.iter().enumerate() {
        let prefix = format!("{:<width$} |", c.name);
        let prefix = if colour {
            format!("\x1b[{}m{prefix}\x1b[0m", COLOURS[i % COLOURS.len()])
        } else {
            prefix
        };
        let name = c.name.clone();
        let tty = c.tty;
        let since = since.to_string();
        let done_tx = done_tx.clone();
        let stopping = Arc::clone(&stopping);
        std::thread::spawn(move || {
            let result = stream(&name, tty, &since, &prefix);
            if let Err(e) = result
                && !stopping.load(Ordering::SeqCst)
            {
                ui::warning(&format!("logs of {name}: {e}"));
            }
            let _ = done_tx.send(name);
        });
    }
    drop(done_tx);
    let interrupted = rt.block_on(async {
        let all_done = async { while done_rx.recv().await.is_some() {} };
        tokio::select! {
            _ = interrupt.recv() => true,
            () = all_done => false,
        }
    });
    if !interrupted {
        ui::info("every container has stopped");
        return Ok(());
    }
    stopping.store(true, Ordering::SeqCst);
    ui::info("stopping the containers (Ctrl-C)");
    let engine = servin::client::Engine::connect()?;
    let mut failed = false;
    for c in containers.iter().rev() {
        if let Err(e) = engine.stop_container(&c.name, None, None) {
            ui::error(&format!("stop {}: {e}", c.name));
            failed = true;
        }
    }
    if failed {
        return Err(Failed::Reported);
    }
    ui::info("stopped");
    Ok(())
}

/// Follows one container's log, prefixing every line.
pub(super) fn stream(
    name: &str,
    tty: bool,
    since: &str,
    prefix: &str,
) -> Result<(), servin::client::Error> {
    let engine = servin::client::Engine::connect()?;
    let opts = LogOptions {
        follow: true,
        since: Some(since.to_string()),
        ..Default::default()
    };
    let mut demux = Demux::default();
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut emit = |stream: usize, data: &[u8]| {
        let buf = &mut pending[stream];
        buf.extend_from_slice(data);
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\n', '\r']);
            let _ = writeln!(std::io::stdout().lock(), "{prefix} {text}");
        }
    };
    engine.logs(name, &opts, |chunk| {
        if tty {
            emit(0, chunk);
        } else {
            demux.feed(chunk, |s, data| emit(usize::from(s == 2), data));
        }
        Ok(())
    })?;
    for buf in &pending {
        if !buf.is_empty() {
            let text = String::from_utf8_lossy(buf);
            let _ = writeln!(std::io::stdout().lock(), "{prefix} {text}");
        }
    }
    Ok(())
}
