//! What can be wrong with a request itself: its query, its body, or a call
//! the engine does not serve. Domain refusals come from the modules' own
//! errors; [`super::status`] maps both to HTTP statuses.

/// A request the API refuses before any domain code runs.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A query parameter or body that is missing or malformed; the message
    /// names it.
    #[error("{0}")]
    Invalid(String),
    /// The body is over its limit (see [`super::body`]).
    #[error("{0}")]
    TooLarge(String),
    /// A Swarm call: this engine is in no swarm (Docker's answer, 503).
    #[error("This node is not part of a swarm")]
    NoSwarm,
    /// The call is not served by this engine.
    #[error("{0} is not served by the servin engine")]
    NotServed(String),
}
