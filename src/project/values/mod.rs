//! Parsers for the small string languages inside a project file (ports, mounts, durations, sizes, image references, interpolation).

pub mod dotenv;
pub mod duration;
pub mod interpolate;
pub mod mount;
pub mod port;
pub mod reference;
pub mod size;

pub use dotenv::{DotenvError, parse_dotenv};
pub use duration::{format_duration, parse_duration};
pub use interpolate::{InterpolationError, InterpolationErrorKind, interpolate};
pub use mount::{MountSource, MountSpec, TmpfsSpec, parse_mount, parse_tmpfs};
pub use port::{Port, PortRange, PortSpec, Protocol, parse_expose, parse_port};
pub use reference::ImageRef;
pub use size::{format_size, parse_size};
