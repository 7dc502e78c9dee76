//! Parsers for the small string languages inside a project file (ports, mounts, durations, sizes, image references, interpolation).
