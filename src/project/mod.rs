//! Loading a project: find the file, read it, check it, normalise it.

pub mod diagnostic;
pub mod kdl_source;
pub mod model;
pub mod schema;
pub mod toml_source;
pub mod tree;
pub mod values;
