//! Opening the dashboard's address in the user's browser: `$BROWSER`,
//! else `xdg-open` (Linux) or `open` (macOS).

use std::process::{Command, Stdio};

/// Opens `url`; the command that did, or why none could.
pub fn open(url: &str) -> Result<String, String> {
    let mut tried = Vec::new();
    let mut candidates: Vec<String> = Vec::new();
    if let Some(b) = std::env::var_os("BROWSER").filter(|b| !b.is_empty()) {
        // $BROWSER may list several commands, separated by `:`.
        candidates.extend(b.to_string_lossy().split(':').map(String::from));
    }
    candidates.push(
        if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        }
        .to_string(),
    );
    for cmd in candidates.iter().filter(|c| !c.is_empty()) {
        // The secret goes as an argument, never through a shell.
        let spawned = Command::new(cmd)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(mut child) => {
                // Reaped when it ends (xdg-open returns at once; a browser
                // started directly may live on), so that no zombie stays.
                std::thread::spawn(move || child.wait());
                return Ok(cmd.clone());
            }
            Err(e) => tried.push(format!("{cmd} ({e})")),
        }
    }
    Err(format!(
        "no browser could be opened: tried {}",
        tried.join(", ")
    ))
}
