//! Waiting for what the engine does in the background.

use std::time::{Duration, Instant};

/// Polls `f` until it returns true (up to 30 s); panics naming `what`.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}
