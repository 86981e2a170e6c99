//! The session layer: MCP sessions of both transports and their streams (docs/api.md, "SSE sessions",
//! "Streamable HTTP"). The registry of open sessions and listen streams, the producer every stream
//! runs, one file per transport (`http_sse`, `streamable_http`) and the stateless era's listen
//! streams (`listen`), the bus that finds a session held by another replica, and the frame format.
//! The HTTP handlers are `api::sse` and `api::mcp`.

pub mod bus;
mod caps;
pub mod frame;
mod http_sse;
mod listen;
mod producer;
mod registry;
mod streamable_http;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use tokio::sync::mpsc;

use crate::conn::Streaming;

pub use bus::Bus;
pub use caps::{Full, SessionCaps};
pub use listen::Change;
pub use registry::{EndReason, Entry, MESSAGES_IN_FLIGHT, Registry, SessionCounts, Transport};
pub use streamable_http::{Control, Refused};

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
