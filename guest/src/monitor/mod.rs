//! The per-container monitor: a small process (the engine binary in monitor
//! mode) that starts the runtime, owns the container's stdio, writes its log
//! and records its exit, so containers outlive an engine restart.
