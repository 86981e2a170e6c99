//! MCP sessions and their streams (docs/api.md, "SSE sessions", "Streamable HTTP"): the registry of
//! open sessions of both transports, the producer every stream runs, the Streamable HTTP session
//! task, the bus that finds a session held by another replica, and the frame format. The HTTP handlers are in `api::mcp` and `api::streamable`.

pub mod bus;
mod registry;
mod session;
mod streamable;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use tokio::sync::mpsc;

use crate::conn::Streaming;

pub use bus::Bus;
pub use registry::{EndReason, Entry, Registry, SseCounts, Transport};
pub use streamable::{Control, Refused};

/// Frames are `event: <name>\r\ndata: <data>\r\n\r\n`.
pub mod frame {
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

    pub fn keepalive() -> Bytes {
        Bytes::from_static(b"event: keepalive\r\ndata: {}\r\n\r\n")
    }

    pub fn shutdown() -> Bytes {
        Bytes::from_static(b"event: shutdown\r\ndata: {}\r\n\r\n")
    }
}

/// The response body of a session: its frames as they come; it ends when the producer does. While
/// it lives, its connection is not idle (`conn::Streaming`).
pub struct FrameStream {
    frames: mpsc::Receiver<Bytes>,
    _streaming: Streaming,
}

impl FrameStream {
    pub fn new(frames: mpsc::Receiver<Bytes>, streaming: Streaming) -> FrameStream {
        FrameStream {
            frames,
            _streaming: streaming,
        }
    }
}

impl futures_core::Stream for FrameStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.frames.poll_recv(cx).map(|f| f.map(Ok))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn frames_use_crlf() {
        assert_eq!(
            &super::frame::event("message", b"{}")[..],
            b"event: message\r\ndata: {}\r\n\r\n"
        );
    }
}
