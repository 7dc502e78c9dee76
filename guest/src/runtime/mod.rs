//! The OCI runtime side of a container: the runtime binary (runc or crun)
//! behind a narrow trait, the bundle's `config.json` built with `oci-spec`,
//! the files generated for its `/etc`, and the overlayfs root filesystem.
//!
//! - [`error`]: [`error::SpecError`], configurations a spec cannot be built
//!   from.
//! - [`oci`]: the [`OciRuntime`] trait (the calls the engine makes:
//!   `kill`, `delete`, `state`, `pause`, `resume`, `update`) and a recording
//!   fake for unit tests.
//! - [`runc`]: [`Runtime`], the real runc or crun, picked by cgroup
//!   version or `SERVIN_RUNTIME`; the monitor runs its `run` itself (see
//!   [`crate::monitor`]).
//! - [`spec`]: Docker's create body, the image config and the host's
//!   facts turned into an OCI runtime spec, one file per part (process,
//!   capabilities, mounts, namespaces, security).
//! - [`host`]: [`HostFacts`](host::HostFacts), what the spec needs of the
//!   host, read in one place so building a spec reads nothing else.
//! - [`etc`]: the generated `/etc/hosts`, `/etc/hostname` and
//!   `/etc/resolv.conf`.
//! - [`resources`] and [`devices`]: cgroup limits, rlimits, sysctls and
//!   device rules, checked as Docker checks them.
//! - [`rootfs`]: overlay mounts and safe lookups inside a root.
//! - [`cgroup`]: where a running container's cgroup is and what its
//!   controllers count (stats, top).
//! - [`user`]: users and groups from the image's `/etc/passwd` and
//!   `/etc/group`.

pub mod cgroup;
pub mod devices;
pub mod error;
pub mod etc;
pub mod host;
pub mod oci;
pub mod resources;
pub mod rootfs;
pub mod runc;
pub mod spec;
pub mod user;

use std::path::Path;

pub use self::oci::{OciRuntime, RuntimeState};
pub use self::runc::Runtime;

/// Whether the host has only the unified cgroup v2 hierarchy.
pub fn cgroup_v2_only() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}
