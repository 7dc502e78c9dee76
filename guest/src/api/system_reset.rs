//! `POST /servin/v1/reset`: removes everything the engine made (see
//! [`crate::reset`]), answers with the report, then stops the engine.

use std::sync::Arc;
use std::time::Duration;

use hyper::{Response, StatusCode};

use super::routes::{Body, json};
use crate::engine::Engine;

/// How long the engine keeps serving after the answer, so that the answer
/// reaches the client before the process ends.
const ANSWER_GRACE: Duration = Duration::from_millis(300);

/// `POST /servin/v1/reset`.
pub async fn reset(engine: &Arc<Engine>) -> Response<Body> {
    let report = crate::reset::reset(engine).await;
    let engine = Arc::clone(engine);
    tokio::spawn(async move {
        tokio::time::sleep(ANSWER_GRACE).await;
        tracing::info!("stopping after the reset");
        engine.shutdown.notify_one();
    });
    json(StatusCode::OK, &report)
}
