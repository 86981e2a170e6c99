//! Frames are `event: <name>\r\ndata: <data>\r\n\r\n`.

use axum::body::Bytes;

pub fn event(name: &str, data: &[u8]) -> Bytes {
    let mut buf = Vec::with_capacity(name.len() + data.len() + 19);
    buf.extend_from_slice(b"event: ");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\r\ndata: ");
    buf.extend_from_slice(data);
    buf.extend_from_slice(b"\r\n\r\n");
    Bytes::from(buf)
}

/// An HTTP+SSE keepalive: a comment, which clients skip (an `event: keepalive` frame made the
/// official SDK log "Unknown SSE event" at every one).
pub fn keepalive() -> Bytes {
    Bytes::from_static(b": keepalive\r\n\r\n")
}

/// A keepalive as an SSE comment, which clients skip (Streamable HTTP's streams).
pub fn comment() -> Bytes {
    Bytes::from_static(b": keepalive\n\n")
}

pub fn shutdown() -> Bytes {
    Bytes::from_static(b"event: shutdown\r\ndata: {}\r\n\r\n")
}
