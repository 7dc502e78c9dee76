//! Docker's small languages, parsed once for both sides: the `servin` CLI
//! (project files, `servin run` flags) and the `servin-guest` engine (the
//! Docker API it serves). Two parsers of one language drift apart (the
//! engine once read `docker.io/busybox` as a different image than the CLI
//! did); one parser cannot.
//!
//! Each parser is a pure function; errors are short lowercase messages that
//! name what is wrong and, where it helps, what is accepted. The CLI wraps
//! them in its diagnostics, the engine in its API errors.
//!
//! - [`reference`](mod@reference): [`ImageRef::parse`] for image references,
//!   normalised as Docker does (`busybox` is
//!   `docker.io/library/busybox:latest`).
//! - [`size`]: [`parse_size`] / [`format_size`], byte sizes such as
//!   `"512m"`, with checked arithmetic.
//! - [`port`]: [`parse_port`] for published ports
//!   (`"127.0.0.1:8080:80/udp"`) giving a [`PortSpec`] that
//!   [`PortSpec::expand`]s to [`Port`]s, [`parse_publish`] for `-p` (which
//!   also takes a host range for one port), and [`parse_expose`] for
//!   exposed ones.
//! - [`mount`]: [`parse_mount`] for the short volume syntax
//!   (`"data:/var/lib:ro"`), [`parse_tmpfs`] (`"/run:size=64m,mode=1777"`)
//!   and [`BindSpec::split`] for Docker's `-v SRC:DST[:OPTS]` binds.
//! - [`mountinfo`]: the mount points below a folder, from
//!   `/proc/self/mountinfo`.
//! - [`share`]: host folders shared into servin's VM: the allowed ones,
//!   the path-under-share check, and their kernel command-line words.
//! - [`stream`]: the 8-byte framing of multiplexed stdout/stderr streams,
//!   [`stream::frame`] and [`stream::Demux`].

pub mod mount;
pub mod mountinfo;
pub mod port;
pub mod reference;
pub mod share;
pub mod size;
pub mod stream;

pub use mount::{BindSpec, MountSource, MountSpec, TmpfsSpec, parse_mount, parse_tmpfs};
pub use port::{Port, PortRange, PortSpec, Protocol, parse_expose, parse_port, parse_publish};
pub use reference::ImageRef;
pub use size::{format_size, parse_size};
