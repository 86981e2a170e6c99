//! An HTTP+SSE session (MCP 2024-11-05): one stream, opened by `GET /sse`, whose end is the session's.

use axum::body::Bytes;
use tokio::sync::mpsc;

use super::frame;
use super::producer::Producer;
use super::registry::Registration;
use crate::conn::ConnHandle;

/// An HTTP+SSE session: one stream, whose end is the session's.
pub struct Session {
    registration: Registration,
    producer: Producer,
    out: mpsc::Sender<Bytes>,
    conn: ConnHandle,
}

impl Session {
    pub(super) fn new(
        registration: Registration,
        producer: Producer,
        out: mpsc::Sender<Bytes>,
        conn: ConnHandle,
    ) -> Session {
        Session {
            registration,
            producer,
            out,
            conn,
        }
    }

    /// Run until the session ends; the registration (and with it the registry entry) goes with it.
    pub async fn run(mut self, endpoint: Bytes) {
        let first = [endpoint, frame::keepalive()];
        let reason = self
            .producer
            .stream(&self.out, &first, frame::keepalive, std::future::pending())
            .await;
        tracing::debug!(reason = reason.label(), "SSE session ended");
        if reason.leaves_client_connected() {
            // The client is still connected but not being served: cut the connection, or hyper would
            // keep it (and the frames it holds) open for as long as the client likes.
            self.conn.abort();
        }
        self.registration.set_reason(reason);
    }
}
