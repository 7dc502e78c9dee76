//! The OCI runtime side of a container: the runtime binary (runc or crun),
//! the bundle's `config.json` built with `oci-spec`, and the overlayfs root
//! filesystem.
