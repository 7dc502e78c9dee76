//! Containers: records, state, lifecycle, restart policies and health.
