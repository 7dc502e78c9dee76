//! `servin-guest channel PORT ENGINE_SOCK`: the guest end of the host-VM
//! channel.
//!
//! In VM mode the host reaches the engine through one virtio-serial port
//! (`/dev/virtio-ports/servin.channel`), a single byte stream carrying many
//! streams ([`servin_mux`]). This serves the streams the host opens:
//!
//! | target | what the stream reaches |
//! |---|---|
//! | `engine` | a new connection to the engine's socket, copied both ways |
//! | `tcp:ADDR:PORT` | a TCP connection made inside the guest (published ports answer on the guest's `127.0.0.1:HOSTPORT`) |
//! | `udp:ADDR:PORT` | a UDP socket connected inside the guest; the stream carries datagrams, each framed by [`servin_mux::datagram`], both ways |
//! | `control` | line commands, see [`control`] |
//!
//! When the host end goes away (the port reads end of file) the session's
//! streams are reset and the port is opened again for the next session.
//! `PORT` may also be `unix:PATH`, a unix socket to connect to, which is how
//! the tests run this without a VM.

pub mod control;

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use servin_mux::{Incoming, Mux};
use tokio::net::{TcpStream, UdpSocket, UnixStream};

/// How long to wait before opening the port again after a session ended.
const REOPEN_DELAY: Duration = Duration::from_millis(200);

/// Where the channel's byte stream comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Port {
    /// A character device (the virtio-serial port) or any file opened for
    /// reading and writing.
    Device(PathBuf),
    /// A unix socket to connect to.
    Unix(PathBuf),
}

impl Port {
    pub fn parse(arg: &str) -> Self {
        match arg.strip_prefix("unix:") {
            Some(path) => Self::Unix(PathBuf::from(path)),
            None => Self::Device(PathBuf::from(arg)),
        }
    }

    fn display(&self) -> String {
        match self {
            Self::Device(p) => p.display().to_string(),
            Self::Unix(p) => format!("unix:{}", p.display()),
        }
    }

    /// Opens the byte stream and starts a server session on it.
    async fn open(&self) -> io::Result<(Mux, servin_mux::Acceptor)> {
        match self {
            Self::Unix(path) => {
                let (r, w) = UnixStream::connect(path).await?.into_split();
                Ok(Mux::server(r, w))
            }
            Self::Device(path) => {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
                    .open(path)?;
                if rustix::termios::isatty(&file) {
                    raw_mode(&file)?;
                }
                let writer = file.try_clone()?;
                Ok(Mux::server(
                    tokio::fs::File::from_std(file),
                    tokio::fs::File::from_std(writer),
                ))
            }
        }
    }
}

use std::os::unix::fs::OpenOptionsExt;

/// A terminal (a pty in tests, a serial console) passes bytes unchanged.
fn raw_mode(file: &std::fs::File) -> io::Result<()> {
    let mut t = rustix::termios::tcgetattr(file)?;
    t.make_raw();
    rustix::termios::tcsetattr(file, rustix::termios::OptionalActions::Now, &t)?;
    Ok(())
}

/// What the channel serves.
#[derive(Debug, Clone)]
pub struct Targets {
    /// The engine's socket.
    pub engine: PathBuf,
    /// The process `poweroff` signals (PID 1, the VM's init).
    pub init_pid: i32,
}

/// Runs the channel until the process is killed.
pub fn run(port: &str, engine: &Path) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Tests point `poweroff` at a process of their own.
    let init_pid = std::env::var("SERVIN_CHANNEL_INIT_PID")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let targets = Targets {
        engine: engine.to_path_buf(),
        init_pid,
    };
    runtime.block_on(serve(Port::parse(port), targets));
    ExitCode::SUCCESS
}

/// Serves sessions on the port, one after another.
pub async fn serve(port: Port, targets: Targets) {
    let mut last_error = String::new();
    loop {
        match port.open().await {
            Ok((mux, mut acceptor)) => {
                last_error.clear();
                while let Some(incoming) = acceptor.next().await {
                    tokio::spawn(handle(incoming, targets.clone()));
                }
                mux.closed().await;
            }
            Err(e) => {
                // Say it once, not every REOPEN_DELAY.
                let message = e.to_string();
                if message != last_error {
                    eprintln!("servin-guest channel: open {}: {message}", port.display());
                    last_error = message;
                }
            }
        }
        tokio::time::sleep(REOPEN_DELAY).await;
    }
}

/// A stream target the host named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Engine,
    Tcp(String, u16),
    Udp(String, u16),
    Control,
}

impl Target {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "engine" => Ok(Self::Engine),
            "control" => Ok(Self::Control),
            _ => {
                let (udp, rest) = match (s.strip_prefix("tcp:"), s.strip_prefix("udp:")) {
                    (Some(rest), _) => (false, rest),
                    (None, Some(rest)) => (true, rest),
                    (None, None) => {
                        return Err(format!(
                            "unknown target {s:?}: want engine, control, tcp:ADDR:PORT or udp:ADDR:PORT"
                        ));
                    }
                };
                let proto = if udp { "udp" } else { "tcp" };
                let (addr, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| format!("target {s:?}: want {proto}:ADDR:PORT"))?;
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("target {s:?}: port {port:?} is not 1-65535"))?;
                let addr = addr.trim_start_matches('[').trim_end_matches(']');
                if addr.is_empty() {
                    return Err(format!("target {s:?}: no address"));
                }
                Ok(if udp {
                    Self::Udp(addr.to_string(), port)
                } else {
                    Self::Tcp(addr.to_string(), port)
                })
            }
        }
    }
}

async fn handle(incoming: Incoming, targets: Targets) {
    let target = match Target::parse(incoming.target()) {
        Ok(t) => t,
        Err(message) => return incoming.refuse(&message),
    };
    match target {
        Target::Engine => match UnixStream::connect(&targets.engine).await {
            Ok(conn) => {
                if let Some(stream) = incoming.accept() {
                    let _ = stream.bridge(conn).await;
                }
            }
            Err(e) => incoming.refuse(&format!(
                "connect to the engine at {}: {e}",
                targets.engine.display()
            )),
        },
        Target::Tcp(addr, port) => match TcpStream::connect((addr.as_str(), port)).await {
            Ok(conn) => {
                let _ = conn.set_nodelay(true);
                if let Some(stream) = incoming.accept() {
                    let _ = stream.bridge(conn).await;
                }
            }
            Err(e) => incoming.refuse(&format!("connect to {addr}:{port} in the VM: {e}")),
        },
        Target::Udp(addr, port) => match udp_connect(&addr, port).await {
            Ok(socket) => {
                if let Some(stream) = incoming.accept() {
                    relay_datagrams(stream, socket).await;
                }
            }
            Err(e) => incoming.refuse(&format!("udp {addr}:{port} in the VM: {e}")),
        },
        Target::Control => {
            if let Some(stream) = incoming.accept() {
                control::serve(stream, targets.init_pid).await;
            }
        }
    }
}

/// A UDP socket of the guest connected to `addr:port`.
async fn udp_connect(addr: &str, port: u16) -> io::Result<UdpSocket> {
    let target = tokio::net::lookup_host((addr, port))
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such address"))?;
    let local = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(target).await?;
    Ok(socket)
}

/// Sends each datagram the stream carries on `socket`, and each one
/// `socket` receives back on the stream, until the stream ends (the host
/// ends it when its peer has been quiet a while).
async fn relay_datagrams(stream: servin_mux::MuxStream, socket: UdpSocket) {
    use servin_mux::datagram::{self, Deframer};
    let (mut reader, mut writer) = stream.into_split();
    let mut frames = Deframer::default();
    let mut buf = vec![0u8; datagram::MAX_DATAGRAM];
    loop {
        tokio::select! {
            chunk = reader.read() => {
                let Ok(Some(chunk)) = chunk else { break };
                frames.push(&chunk);
                while let Some(d) = frames.next_datagram() {
                    // A datagram the other side cannot take is lost, as
                    // UDP's are.
                    let _ = socket.send(&d).await;
                }
            }
            got = socket.recv(&mut buf) => {
                // An error is an ICMP answer to an earlier datagram (no one
                // listening yet): the next may find someone.
                let Ok(n) = got else { continue };
                let Some(framed) = datagram::frame(&buf[..n]) else { continue };
                if writer.write(&framed).await.is_err() {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(Target::parse("engine"), Ok(Target::Engine));
        assert_eq!(Target::parse("control"), Ok(Target::Control));
        assert_eq!(
            Target::parse("udp:127.0.0.1:53"),
            Ok(Target::Udp("127.0.0.1".into(), 53))
        );
        assert_eq!(
            Target::parse("tcp:127.0.0.1:8080"),
            Ok(Target::Tcp("127.0.0.1".into(), 8080))
        );
        assert_eq!(
            Target::parse("tcp:[::1]:80"),
            Ok(Target::Tcp("::1".into(), 80))
        );
        assert_eq!(
            Target::parse("tcp:127.0.0.1:0"),
            Err("target \"tcp:127.0.0.1:0\": port \"0\" is not 1-65535".into())
        );
        assert_eq!(
            Target::parse("tcp:8080"),
            Err("target \"tcp:8080\": want tcp:ADDR:PORT".into())
        );
        assert_eq!(
            Target::parse("ssh"),
            Err(
                "unknown target \"ssh\": want engine, control, tcp:ADDR:PORT or udp:ADDR:PORT"
                    .into()
            )
        );
        assert_eq!(Port::parse("unix:/tmp/s"), Port::Unix("/tmp/s".into()));
        assert_eq!(
            Port::parse("/dev/virtio-ports/servin.channel"),
            Port::Device("/dev/virtio-ports/servin.channel".into())
        );
    }
}
