//! A shell in a container, in the page: an exec with a pty whose stream is
//! bridged to a websocket. Binary messages carry the terminal's bytes both
//! ways; a text message `{"cols":N,"rows":N}` resizes the pty.

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::{Body, full, json_error};
use crate::client::{Engine, encode};

/// The shell the terminal runs: the first of these the container has.
const SHELL: &str = "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi";

/// Answers a websocket upgrade with a shell in `container`: the exec is
/// made first, so that a stopped container or a missing shell is an
/// ordinary error answer, then the connection is taken over.
pub async fn open(
    engine: &'static Engine,
    container: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    let Some(key) = req
        .headers()
        .get(SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes().to_vec())
    else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "the terminal is a websocket: the request has no Sec-WebSocket-Key",
        );
    };
    let query = req.uri().query().unwrap_or("");
    let size = |k| {
        super::guard::query_value(query, k)
            .and_then(|v| v.parse::<u16>().ok())
            .filter(|v| *v > 0)
    };
    let (cols, rows) = (size("cols").unwrap_or(80), size("rows").unwrap_or(24));
    let exec = match create_exec(engine, container).await {
        Ok(id) => id,
        Err((status, msg)) => return json_error(status, &msg),
    };
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        bridge(engine, &exec, ws, cols, rows).await;
    });
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        UPGRADE,
        hyper::header::HeaderValue::from_static("websocket"),
    );
    h.insert(
        CONNECTION,
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    if let Ok(v) = derive_accept_key(&key).parse() {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

async fn create_exec(engine: &Engine, container: &str) -> Result<String, (StatusCode, String)> {
    let step = format!("open a terminal in {container}");
    let config = serde_json::json!({
        "AttachStdin": true,
        "AttachStdout": true,
        "AttachStderr": true,
        "Tty": true,
        "Env": ["TERM=xterm-256color"],
        "Cmd": ["sh", "-c", SHELL],
    });
    let headers = [(CONTENT_TYPE.as_str(), "application/json".to_string())];
    let resp = engine
        .send_async(
            Method::POST,
            &format!("/containers/{}/exec", encode(container)),
            &headers,
            Bytes::from(config.to_string()),
            &step,
        )
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if !status.is_success() {
        let msg = v
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("failed");
        return Err((status, format!("{step}: {msg}")));
    }
    v.get("Id")
        .and_then(|i| i.as_str())
        .map(String::from)
        .ok_or((
            StatusCode::BAD_GATEWAY,
            format!("{step}: the engine gave no exec ID"),
        ))
}

/// Copies between the websocket and the exec until either side ends.
async fn bridge<S>(engine: &Engine, exec: &str, ws: WebSocketStream<S>, cols: u16, rows: u16)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut to_page, mut from_page) = ws.split();
    let body = serde_json::json!({ "Detach": false, "Tty": true, "ConsoleSize": [rows, cols] });
    let step = "start the terminal's shell";
    let conn = match engine
        .hijack(
            &format!("/exec/{}/start", encode(exec)),
            Bytes::from(body.to_string()),
            step,
        )
        .await
    {
        Ok(c) => c,
        Err(e) => {
            let _ = to_page.send(Message::text(format!("\r\n{e}\r\n"))).await;
            let _ = to_page.close().await;
            return;
        }
    };
    resize(engine, exec, cols, rows).await;
    let (mut out, mut input) = tokio::io::split(conn);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            n = out.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to_page.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            },
            msg = from_page.next() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    if input.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    let dim = |k: &str| v.get(k).and_then(|n| n.as_u64()).and_then(|n| u16::try_from(n).ok());
                    if let (Some(c), Some(r)) = (dim("cols"), dim("rows")) {
                        resize(engine, exec, c, r).await;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = to_page.send(Message::Close(None)).await;
}

async fn resize(engine: &Engine, exec: &str, cols: u16, rows: u16) {
    if cols == 0 || rows == 0 {
        return;
    }
    let path = format!("/exec/{}/resize?h={rows}&w={cols}", encode(exec));
    if let Ok(resp) = engine
        .send_async(
            Method::POST,
            &path,
            &[],
            Bytes::new(),
            "resize the terminal",
        )
        .await
    {
        let _ = resp.into_body().collect().await;
    }
}
