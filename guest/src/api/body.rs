//! Request bodies: every call that takes a JSON body reads it here, under
//! one limit, and an upload streams to a file under its own.
//!
//! - A JSON body (create a container or an exec, start an exec, create,
//!   connect or disconnect a network, create a volume, log in, a project's
//!   desired state) is read whole, at most [`MAX_JSON_BODY`] bytes: 16 MiB,
//!   far above any real one (the desired state of a hundred services is a
//!   few hundred KiB), low enough that no client makes the engine hold
//!   gigabytes in memory.
//! - An upload (`POST /images/load`) is written to a file as it arrives,
//!   at most [`MAX_UPLOAD`] bytes (64 GiB): a bound on disk, not memory.
//!
//! Over a limit the call answers 413 Payload Too Large with a message that
//! names the limit. Docker (moby) decodes JSON bodies without a limit and
//! answers 400 to one it cannot read; an unreadable or malformed body is a
//! 400 here too, while for a body over the limit 413 is HTTP's own status
//! (the docker CLI prints its message as for any 4xx).

use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body;
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, RequestError, Result};

/// The largest JSON body any call takes.
pub const MAX_JSON_BODY: usize = 16 * 1024 * 1024;

/// The largest upload (`POST /images/load`).
pub const MAX_UPLOAD: u64 = 64 * 1024 * 1024 * 1024;

/// The body of the `what` call, whole.
pub async fn read<B>(body: B, what: &str) -> Result<Bytes>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    read_at_most(body, what, MAX_JSON_BODY).await
}

/// A JSON body as `T`: an empty one is malformed.
pub async fn json<T, B>(body: B, what: &str) -> Result<T>
where
    T: DeserializeOwned,
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let bytes = read(body, what).await?;
    parse(&bytes, what)
}

/// A JSON body as `T`, or `T::default()` for an empty one (only white
/// space), as Docker takes create calls without a body.
pub async fn json_or_default<T, B>(body: B, what: &str) -> Result<T>
where
    T: DeserializeOwned + Default,
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let bytes = read(body, what).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse(&bytes, what)
}

/// Writes an upload to `file` (at `path`) as it arrives and flushes it;
/// returns its size.
pub async fn upload<B>(body: B, file: &mut tokio::fs::File, path: &Path) -> Result<u64>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    upload_at_most(body, file, path, MAX_UPLOAD).await
}

fn parse<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::from(RequestError::Invalid(format!("invalid {what} body: {e}"))))
}

async fn read_at_most<B>(body: B, what: &str, limit: usize) -> Result<Bytes>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        Error::from(RequestError::TooLarge(format!(
            "the {what} body is over the engine's limit of {} for a request body",
            size_text(u64::try_from(limit).unwrap_or(u64::MAX))
        )))
    };
    // A declared length over the limit is refused before any is read.
    if body.size_hint().lower() > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err(Error::from(RequestError::Invalid(format!(
            "read the {what} body: {e}"
        )))),
    }
}

async fn upload_at_most<B>(
    mut body: B,
    file: &mut tokio::fs::File,
    path: &Path,
    limit: u64,
) -> Result<u64>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let too_large = || {
        Error::from(RequestError::TooLarge(format!(
            "the upload is over the engine's limit of {} for an upload",
            size_text(limit)
        )))
    };
    // A declared length over the limit is refused before any is written.
    if body.size_hint().lower() > limit {
        return Err(too_large());
    }
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| Error::from(RequestError::Invalid(format!("reading the upload: {e}"))))?;
        if let Some(data) = frame.data_ref() {
            size = size.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
            if size > limit {
                return Err(too_large());
            }
            file.write_all(data)
                .await
                .map_err(Error::io("write", path))?;
        }
    }
    file.flush().await.map_err(Error::io("write", path))?;
    Ok(size)
}

/// `16 MiB`, `64 GiB`, or bytes.
fn size_text(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use http_body_util::{Full, StreamBody};
    use hyper::StatusCode;
    use hyper::body::Frame;

    use super::*;
    use crate::api::status::status_of;

    /// A body in `chunks` pieces of `size` bytes, with no declared length.
    fn chunked(
        chunks: usize,
        size: usize,
    ) -> impl Body<Data = Bytes, Error = std::io::Error> + Unpin {
        let frames = (0..chunks).map(move |_| Ok(Frame::data(Bytes::from(vec![b' '; size]))));
        StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn json_bodies_stop_at_the_one_limit() {
        let at_limit = Full::new(Bytes::from(vec![b' '; MAX_JSON_BODY]));
        let v: serde_json::Value = json_or_default(at_limit, "volume create").await.unwrap();
        assert_eq!(v, serde_json::Value::Null);
        for over in [
            read(
                Full::new(Bytes::from(vec![b' '; MAX_JSON_BODY + 1])),
                "volume create",
            )
            .await,
            read(chunked(17, 1024 * 1024), "volume create").await,
        ] {
            let e = over.unwrap_err();
            assert_eq!(status_of(&e), StatusCode::PAYLOAD_TOO_LARGE);
            assert_eq!(
                e.to_string(),
                "the volume create body is over the engine's limit of 16 MiB for a request body"
            );
        }
        let e = json::<serde_json::Value, _>(Full::new(Bytes::from_static(b"{")), "login")
            .await
            .unwrap_err();
        assert_eq!(status_of(&e), StatusCode::BAD_REQUEST);
        assert!(e.to_string().starts_with("invalid login body: "), "{e}");
    }

    #[tokio::test]
    async fn uploads_stop_at_their_own_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload");
        let mut file = tokio::fs::File::create(&path).await.unwrap();
        let size = upload_at_most(chunked(4, 10), &mut file, &path, 40)
            .await
            .unwrap();
        assert_eq!(size, 40);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 40);
        let e = upload_at_most(chunked(5, 10), &mut file, &path, 40)
            .await
            .unwrap_err();
        assert_eq!(status_of(&e), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            e.to_string(),
            "the upload is over the engine's limit of 40 bytes for an upload"
        );
        let declared = Full::new(Bytes::from(vec![0u8; 41]));
        let e = upload_at_most(declared, &mut file, &path, 40)
            .await
            .unwrap_err();
        assert_eq!(status_of(&e), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(size_text(MAX_UPLOAD), "64 GiB");
    }
}
