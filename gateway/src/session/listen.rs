//! A `subscriptions/listen` stream (MCP 2026-07-28): the stateless era's way to hear of changes. The
//! request's response is the stream: its first frame acknowledges the notifications the client
//! asked for (each frame tagged with the request's id as the subscription id), then come the change
//! notifications it asked for as the gateway's catalogue changes, and keepalive comments. Closing
//! the stream is the client's cancellation. It runs the same [`Producer`] as every session's
//! stream, so the fixed profile ends it the moment its client is gone and the legacy profile keeps
//! it spinning, as the field's SSE producers did.

use axum::body::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc};

use super::frame;
use super::producer::Producer;
use super::registry::Registration;
use crate::conn::ConnHandle;

/// A change to the catalogue a listen stream can be told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Tools,
    Prompts,
    Resources,
}

impl Change {
    pub const ALL: [Change; 3] = [Change::Tools, Change::Prompts, Change::Resources];

    /// The filter flag that asks for it, and the notification that announces it.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Change::Tools => ("toolsListChanged", "notifications/tools/list_changed"),
            Change::Prompts => ("promptsListChanged", "notifications/prompts/list_changed"),
            Change::Resources => ("resourcesListChanged", "notifications/resources/list_changed"),
        }
    }
}

/// What one stream listens for: the receiving end of the changes, and the frame each becomes
/// (`None`: not asked for), rendered once when the stream opens.
pub struct Listening {
    changes: broadcast::Receiver<Change>,
    frames: [Option<Bytes>; Change::ALL.len()],
}

impl Listening {
    /// The subscription asked for in `filter` (`params.notifications`) by request `id`: the frames,
    /// and the acknowledgement that opens the stream.
    pub(super) fn new(changes: broadcast::Receiver<Change>, id: &Value, filter: &Value) -> (Listening, Bytes) {
        let meta = json!({protocol::envelope::SUBSCRIPTION_ID_KEY: id});
        let mut honored = Map::new();
        let frames = Change::ALL.map(|change| {
            let (flag, method) = change.names();
            (filter.get(flag) == Some(&Value::Bool(true))).then(|| {
                honored.insert(flag.to_owned(), Value::Bool(true));
                let note = json!({"jsonrpc": "2.0", "method": method, "params": {"_meta": meta}});
                frame::event("message", note.to_string().as_bytes())
            })
        });
        let ack = json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
                         "params": {"_meta": meta, "notifications": honored}});
        let ack = frame::event("message", ack.to_string().as_bytes());
        (Listening { changes, frames }, ack)
    }

    /// The next change this stream asked for, as its frame; pending once the changes end.
    pub(super) async fn next(&mut self) -> Bytes {
        loop {
            match self.changes.recv().await {
                Ok(change) => {
                    if let Some(frame) = &self.frames[change as usize] {
                        return frame.clone();
                    }
                }
                // Missed announcements say the same as the next one: keep going.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}

/// One listen stream: its end is the subscription's.
pub struct ListenStream {
    pub(super) registration: Registration,
    pub(super) producer: Producer,
    pub(super) out: mpsc::Sender<Bytes>,
    pub(super) conn: ConnHandle,
    pub(super) ack: Bytes,
}

impl ListenStream {
    /// Run until the stream ends; the registration goes with it.
    pub async fn run(mut self) {
        let first = [self.ack.clone()];
        let reason = self
            .producer
            .stream(&self.out, &first, frame::comment, std::future::pending())
            .await;
        tracing::debug!(reason = reason.label(), "listen stream ended");
        if reason.leaves_client_connected() {
            self.conn.abort();
        }
        self.registration.set_reason(reason);
    }
}
