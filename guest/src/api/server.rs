//! The unix socket listener.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

use super::routes::route;
use crate::engine::Engine;
use crate::error::{Error, Result};

/// The group that may use the socket besides root, when it exists.
pub const SOCKET_GROUP: &str = "servin";

fn group_id(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.split(':');
        let n = parts.next()?;
        let _password = parts.next()?;
        let gid = parts.next()?;
        (n == name).then(|| gid.parse().ok()).flatten()
    })
}

/// Binds the socket at `path`: refuses when another engine answers there,
/// removes a stale socket, and sets mode 0660 (root and the `servin` group).
pub async fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(Error::AlreadyListening(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(Error::io("remove stale socket", path))?;
    }
    let listener = UnixListener::bind(path).map_err(Error::io("listen on", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(Error::io("chmod", path))?;
    if let Some(gid) = group_id(SOCKET_GROUP) {
        std::os::unix::fs::chown(path, Some(0), Some(gid)).map_err(Error::io("chown", path))?;
    }
    Ok(listener)
}

/// Serves the API until SIGINT, SIGTERM or [`Engine::shutdown`], then
/// removes the socket.
pub async fn serve(engine: Arc<Engine>) -> Result<()> {
    let path = engine.config.socket.clone();
    let listener = bind(&path).await?;
    tracing::info!(socket = %path.display(), root = %engine.config.root.display(), "servin engine listening");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(Error::io("install signal handler", Path::new("SIGTERM")))?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("accept on {}: {e}", path.display());
                        continue;
                    }
                };
                let engine = Arc::clone(&engine);
                tokio::spawn(async move {
                    let service = service_fn(move |req| route(Arc::clone(&engine), req));
                    if let Err(e) = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await
                    {
                        tracing::debug!("connection: {e}");
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = engine.shutdown.notified() => break,
        }
    }
    let _ = std::fs::remove_file(&path);
    engine.containers.shutdown();
    tracing::info!("servin engine stopped; containers keep running under their monitors");
    Ok(())
}
