//! A gate in front of the registry: a loopback TCP proxy that forwards each
//! request to the registry, except that it holds the requests whose request
//! line contains a pattern until the test opens the gate. It counts those
//! requests, so a test can make two pulls overlap for certain and see what
//! each asked for while they did.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

pub struct Gate {
    pub port: u16,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    upstream: u16,
    pattern: String,
    seen: AtomicUsize,
    open: AtomicBool,
    stop: AtomicBool,
}

impl Gate {
    /// A closed gate forwarding to the registry on `upstream`, holding the
    /// requests whose line contains `pattern`.
    pub fn start(upstream: u16, pattern: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream,
            pattern: pattern.to_string(),
            seen: AtomicUsize::new(0),
            open: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let s = Arc::clone(&s);
                        std::thread::spawn(move || {
                            let _ = forward(conn, &s);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            port,
            shared,
            thread: Some(thread),
        }
    }

    /// The registry's address through the gate.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How many requests matching the pattern arrived so far.
    pub fn seen(&self) -> usize {
        self.shared.seen.load(Ordering::SeqCst)
    }

    /// Lets the held requests (and all later ones) through.
    pub fn open(&self) {
        self.shared.open.store(true, Ordering::SeqCst);
    }
}

/// Reads one request head (through the blank line) from `conn`.
fn read_head(conn: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    Ok(Some(head))
}

/// Serves one client connection: one request at a time, each over a new
/// upstream connection closed after its answer, which ends the client
/// connection too.
fn forward(mut conn: TcpStream, s: &Shared) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    let Some(head) = read_head(&mut conn)? else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut out = format!("{request_line}\r\n");
    let mut length = 0usize;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("connection") {
            continue;
        }
        if name.trim().eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().unwrap_or(0);
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body)?;
    if request_line.contains(&s.pattern) {
        s.seen.fetch_add(1, Ordering::SeqCst);
        while !s.open.load(Ordering::SeqCst) && !s.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut upstream = TcpStream::connect(("127.0.0.1", s.upstream))?;
    upstream.write_all(out.as_bytes())?;
    upstream.write_all(&body)?;
    std::io::copy(&mut upstream, &mut conn)?;
    conn.flush()?;
    conn.shutdown(Shutdown::Both)
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
