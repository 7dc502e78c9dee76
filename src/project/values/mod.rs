//! Parsers for the small string languages inside a project file (ports, mounts, durations, sizes, image references, interpolation).
//!
//! Each parser is a pure function; errors are short lowercase messages that
//! name what is wrong and, where it helps, what is accepted. The languages
//! the engine reads too (sizes, ports, mounts, image references) live in the
//! `servin-values` crate both sides share, and are re-exported here so the
//! project code names every small language from one place.
//!
//! - [`duration`]: [`parse_duration`] / [`format_duration`], Go and Compose
//!   durations such as `"1m30s"`.
//! - [`size`]: [`parse_size`] / [`format_size`], byte sizes such as `"512m"`.
//! - [`port`]: [`parse_port`] for `ports` (`"127.0.0.1:8080:80/udp"`) giving a
//!   [`PortSpec`] that [`PortSpec::expand`]s to [`Port`]s, and
//!   [`parse_expose`] for `expose`.
//! - [`mount`]: [`parse_mount`] for short volume syntax (`"data:/var/lib:ro"`)
//!   and [`parse_tmpfs`] (`"/run:size=64m,mode=1777"`).
//! - [`reference`](mod@reference): [`ImageRef::parse`] for image references.
//! - [`interpolate`](mod@interpolate): [`interpolate()`] for `$VAR`,
//!   `${VAR:-default}` and friends.
//! - [`dotenv`]: [`parse_dotenv`] for `.env` and `env_file` files.
//! - [`signal`]: [`parse_signal`] (`"term"` → `"SIGTERM"`), with
//!   [`signal_number`] and [`signal_name`].
//! - [`capability`]: [`normalize_capability`] (`"cap_net_admin"` →
//!   `"NET_ADMIN"`).
//! - [`misc`]: [`parse_restart`] ([`RestartPolicy`]), [`is_dns_label`],
//!   [`dns_label_error`], [`to_dns_label`], [`parse_extra_host`],
//!   [`parse_key_value`], [`parse_platform`] and [`parse_cpus`].

pub mod capability;
pub mod dotenv;
pub mod duration;
pub mod interpolate;
pub mod misc;
pub mod signal;

pub use servin_values::{mount, port, reference, size};

pub use capability::{CAPABILITIES, normalize_capability};
pub use dotenv::{DotenvError, parse_dotenv};
pub use duration::{format_duration, parse_duration};
pub use interpolate::{InterpolationError, InterpolationErrorKind, interpolate};
pub use misc::{
    RestartPolicy, dns_label_error, is_dns_label, parse_cpus, parse_extra_host, parse_key_value,
    parse_platform, parse_restart, to_dns_label,
};
pub use mount::{MountSource, MountSpec, TmpfsSpec, parse_mount, parse_tmpfs};
pub use port::{Port, PortRange, PortSpec, Protocol, parse_expose, parse_port};
pub use reference::ImageRef;
pub use signal::{parse_signal, signal_name, signal_number};
pub use size::{format_size, parse_size};
