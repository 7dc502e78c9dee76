//! Parsers for the small string languages inside a project file (ports, mounts, durations, sizes, image references, interpolation).

pub mod duration;
pub mod size;

pub use duration::{format_duration, parse_duration};
pub use size::{format_size, parse_size};
