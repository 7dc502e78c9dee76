//! Loading a project: find the file, read it, check it, normalise it.
//!
//! - [`tree`]: the source-neutral spanned document both formats are read into
//!   ([`toml_source`], [`kdl_source`]).
//! - [`model`]: every key of the file format; the JSON Schema comes from it.
//! - [`schema`]: the structural check of a tree against that schema.
//! - [`values`]: parsers for ports, mounts, durations, sizes, references, `${VAR}`.
//! - [`normalise`]: meaning and semantic checks, giving the canonical
//!   [`normal::Project`].
//! - [`diagnostic`]: problems as miette diagnostics and as JSON.
//! - [`load`]: the pipeline that ties them together.
//! - [`desired`]: the normalised project as the desired state the engine
//!   plans and applies.
//! - [`container_body`]: one normalised container as Docker's create body,
//!   for a project's containers and for `servin run`'s.
//! - [`lock`]: `servin.lock`, the image digests the project runs.

pub mod container_body;
pub mod desired;
pub mod diagnostic;
pub mod kdl_source;
pub mod load;
pub mod lock;
pub mod model;
pub mod normal;
pub mod normalise;
pub mod schema;
pub mod toml_source;
pub mod tree;
pub mod values;

pub use load::{FILE_NAMES, Failure, FindError, LoadOptions, Loaded, find, load, load_str};
