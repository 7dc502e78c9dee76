//! `servin import`: converts a Docker Compose file into a `servin.toml`.
