//! Every open session of either transport, and every listen stream, by id. An HTTP+SSE session is
//! registered when its stream opens, a Streamable HTTP session when `initialize` succeeds, a listen
//! stream when `subscriptions/listen` is answered; each leaves the registry when its task ends — by whatever path: the [`Registration`] guard removes it on drop, so a return, an error
//! and a panic all count. Figures are kept per transport (the metrics' `transport` label).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use tokio::sync::{broadcast, mpsc, watch};

use super::caps::{Full, Held, SessionCaps};
use super::http_sse::Session;
use super::listen::{Change, ListenStream, Listening};
use super::producer::Producer;
use super::streamable_http::{Control, StreamableSession};
use crate::config::SseBehaviour;
use crate::conn::ConnHandle;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The client closed or reset its connection.
    ClientGone,
    /// The client stopped taking frames for longer than `SSE_SEND_TIMEOUT`.
    SendTimeout,
    /// The rapid-yield detector fired.
    SpinDetected,
    /// The gateway is shutting down.
    Shutdown,
    /// The producer ended any other way (a panic included).
    Error,
    /// Streamable HTTP: the client ended the session with `DELETE`.
    Deleted,
    /// Streamable HTTP: no request and no stream for the idle timeout.
    Expired,
}

impl EndReason {
    pub const ALL: [EndReason; 7] = [
        EndReason::ClientGone,
        EndReason::SendTimeout,
        EndReason::SpinDetected,
        EndReason::Shutdown,
        EndReason::Error,
        EndReason::Deleted,
        EndReason::Expired,
    ];

    pub fn label(self) -> &'static str {
        match self {
            EndReason::ClientGone => "client_gone",
            EndReason::SendTimeout => "send_timeout",
            EndReason::SpinDetected => "spin_detected",
            EndReason::Shutdown => "shutdown",
            EndReason::Error => "error",
            EndReason::Deleted => "deleted",
            EndReason::Expired => "expired",
        }
    }

    /// Whether the session ended with its client still connected but no longer served: its
    /// connection must be cut, or hyper would keep it (and the frames it holds) open.
    pub fn leaves_client_connected(self) -> bool {
        matches!(self, EndReason::SendTimeout | EndReason::SpinDetected)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The MCP transport a session came by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP+SSE (2024-11-05): `GET /sse`, then `POST /message`.
    Sse,
    /// Streamable HTTP's session era (2025-03-26 to 2025-11-25): `/mcp`.
    StreamableHttp,
    /// Streamable HTTP's stateless era (2026-07-28): a `subscriptions/listen` stream on `/mcp`.
    Listen,
}

impl Transport {
    pub const ALL: [Transport; 3] = [Transport::Sse, Transport::StreamableHttp, Transport::Listen];

    pub fn label(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::StreamableHttp => "streamable_http",
            Transport::Listen => "listen",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How to reach a session from a request.
#[derive(Clone)]
pub struct Entry {
    /// The subject of the token that opened it: the only one it answers.
    pub owner: Arc<str>,
    /// An HTTP+SSE session's replies (serialized `event: message` frames) for its producer; the
    /// other transports answer on the request's own response, so they have none.
    pub inbox: Option<mpsc::Sender<Bytes>>,
    pub server_id: Option<String>,
    /// A Streamable HTTP session's controls; `None` for HTTP+SSE.
    pub streamable: Option<Arc<Control>>,
    /// An HTTP+SSE session's handshake, when requests wait for it (`SSE_REQUIRE_INITIALIZE`).
    pub handshake: Option<Arc<protocol::handshake::Handshake>>,
    /// An HTTP+SSE session's messages being answered now, at most [`MESSAGES_IN_FLIGHT`].
    pub messages: Option<Arc<tokio::sync::Semaphore>>,
}

/// Messages of one HTTP+SSE session answered at once; more are refused (429) until one is done.
pub const MESSAGES_IN_FLIGHT: usize = INBOX_FRAMES;

/// Frames a client has not taken yet, per session; with the send timeout this bounds its memory.
const OUT_FRAMES: usize = 8;
/// Replies waiting for the producer, per session.
const INBOX_FRAMES: usize = 32;

/// Counters of one transport.
#[derive(Default)]
struct Counters {
    active: AtomicU64,
    total: AtomicU64,
    ends: [AtomicU64; EndReason::ALL.len()],
    refused: [AtomicU64; Full::LABELS.len()],
}

/// The sessions, and how many each subject holds, under one lock.
#[derive(Default)]
struct Sessions {
    by_id: HashMap<String, Entry>,
    held: Held,
}

pub struct Registry {
    sessions: Mutex<Sessions>,
    caps: SessionCaps,
    counters: [Counters; Transport::ALL.len()],
    shutdown: watch::Sender<bool>,
    behaviour: SseBehaviour,
    /// Streamable HTTP sessions end after this long without a request or a stream; `None`: never.
    idle_timeout: Option<Duration>,
    /// Catalogue changes, announced on every listen stream that asked for them.
    changes: broadcast::Sender<Change>,
}

/// Announcements a slow listen stream may fall behind by before it misses some (it then gets the
/// next one: a missed change says nothing the next does not).
const CHANGES_BACKLOG: usize = 64;

/// Figures of one transport for the metrics endpoint.
pub struct SessionCounts {
    pub transport: Transport,
    pub active: u64,
    pub total: u64,
    pub ends: [(EndReason, u64); EndReason::ALL.len()],
    /// Sessions refused at a cap, by cap (`Full::LABELS`).
    pub refused: [(&'static str, u64); Full::LABELS.len()],
}

impl Registry {
    pub fn new(behaviour: SseBehaviour, idle_timeout: Option<Duration>, caps: SessionCaps) -> Arc<Registry> {
        Arc::new(Registry {
            sessions: Mutex::default(),
            caps,
            counters: Default::default(),
            shutdown: watch::Sender::new(false),
            behaviour,
            idle_timeout,
            changes: broadcast::Sender::new(CHANGES_BACKLOG),
        })
    }

    /// Tell every listen stream that asked of `change`.
    pub fn changed(&self, change: Change) {
        // No receiver is no listener: nothing to tell.
        let _ = self.changes.send(change);
    }

    /// Add a session to the map and the counts, unless a cap refuses it; its registration removes it
    /// again.
    fn register(self: &Arc<Self>, entry: Entry, transport: Transport) -> Result<(String, Registration), Full> {
        let id = crate::model::new_id();
        let owner = Arc::clone(&entry.owner);
        let counters = &self.counters[transport.index()];
        {
            let mut sessions = self.sessions.lock().expect("registry lock");
            let held = sessions.by_id.len();
            if let Err(full) = sessions.held.admit(self.caps, held, &owner) {
                counters.refused[full.index()].fetch_add(1, Ordering::Relaxed);
                return Err(full);
            }
            sessions.by_id.insert(id.clone(), entry);
        }
        counters.total.fetch_add(1, Ordering::Relaxed);
        counters.active.fetch_add(1, Ordering::Relaxed);
        let registration = Registration {
            registry: Arc::clone(self),
            id: id.clone(),
            owner,
            transport,
            reason: EndReason::Error,
        };
        Ok((id, registration))
    }

    /// Register a new session: answers its id, its producer (to be spawned) and the receiving end of
    /// its frames (the response body).
    pub fn open(
        self: &Arc<Self>,
        owner: Arc<str>,
        server_id: Option<String>,
        conn: ConnHandle,
    ) -> Result<(String, Session, mpsc::Receiver<Bytes>), Full> {
        let (inbox_tx, inbox_rx) = mpsc::channel(INBOX_FRAMES);
        let (out_tx, out_rx) = mpsc::channel(OUT_FRAMES);
        let entry = Entry {
            owner,
            inbox: Some(inbox_tx),
            server_id,
            streamable: None,
            handshake: self.behaviour.require_initialize.then(Arc::default),
            messages: Some(Arc::new(tokio::sync::Semaphore::new(MESSAGES_IN_FLIGHT))),
        };
        let (id, registration) = self.register(entry, Transport::Sse)?;
        let producer = Producer::new(Some(inbox_rx), self.shutdown.subscribe(), self.behaviour);
        Ok((id, Session::new(registration, producer, out_tx, conn), out_rx))
    }

    /// Register a Streamable HTTP session: answers its id and its task (to be spawned).
    pub fn open_streamable(
        self: &Arc<Self>,
        owner: Arc<str>,
        server_id: Option<String>,
    ) -> Result<(String, StreamableSession), Full> {
        let (control, commands) = Control::new();
        let entry = Entry {
            owner,
            inbox: None,
            server_id,
            streamable: Some(Arc::clone(&control)),
            handshake: None,
            messages: None,
        };
        let (id, registration) = self.register(entry, Transport::StreamableHttp)?;
        let producer = Producer::new(None, self.shutdown.subscribe(), self.behaviour);
        let session = StreamableSession::new(registration, producer, control, commands, self.idle_timeout);
        Ok((id, session))
    }

    /// Register a listen stream for request `id` asking for `filter`: answers its task (to be
    /// spawned) and the receiving end of its frames (the response body).
    pub fn open_listen(
        self: &Arc<Self>,
        owner: Arc<str>,
        server_id: Option<String>,
        conn: ConnHandle,
        id: &serde_json::Value,
        filter: &serde_json::Value,
    ) -> Result<(ListenStream, mpsc::Receiver<Bytes>), Full> {
        let (out, out_rx) = mpsc::channel(OUT_FRAMES);
        let entry = Entry {
            owner,
            inbox: None,
            server_id,
            streamable: None,
            handshake: None,
            messages: None,
        };
        let (_, registration) = self.register(entry, Transport::Listen)?;
        let (listening, ack) = Listening::new(self.changes.subscribe(), id, filter);
        let producer = Producer::new(None, self.shutdown.subscribe(), self.behaviour).listening(listening);
        let stream = ListenStream {
            registration,
            producer,
            out,
            conn,
            ack,
        };
        Ok((stream, out_rx))
    }

    /// A new stream's frame channel: the producer's end and the response body's.
    pub fn stream_channel() -> (mpsc::Sender<Bytes>, mpsc::Receiver<Bytes>) {
        mpsc::channel(OUT_FRAMES)
    }

    /// Whether the session is held here (no copy of its entry: the forward layer asks on every
    /// session request).
    pub fn holds(&self, id: &str) -> bool {
        self.sessions.lock().expect("registry lock").by_id.contains_key(id)
    }

    /// The session `id`, if `owner` opened it: to anyone else it does not exist.
    pub fn lookup(&self, id: &str, owner: &str) -> Option<Entry> {
        let sessions = self.sessions.lock().expect("registry lock");
        sessions.by_id.get(id).filter(|e| &*e.owner == owner).cloned()
    }

    /// Ask every session to send its final frame and end.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn active(&self) -> usize {
        self.sessions.lock().expect("registry lock").by_id.len()
    }

    pub fn counts(&self) -> [SessionCounts; Transport::ALL.len()] {
        Transport::ALL.map(|transport| {
            let c = &self.counters[transport.index()];
            SessionCounts {
                transport,
                active: c.active.load(Ordering::Relaxed),
                total: c.total.load(Ordering::Relaxed),
                ends: EndReason::ALL.map(|r| (r, c.ends[r.index()].load(Ordering::Relaxed))),
                refused: [0, 1].map(|i| (Full::LABELS[i], c.refused[i].load(Ordering::Relaxed))),
            }
        })
    }
}

/// A session's place in the registry, held by its producer; dropping it ends the session.
pub struct Registration {
    registry: Arc<Registry>,
    id: String,
    owner: Arc<str>,
    transport: Transport,
    reason: EndReason,
}

impl Registration {
    pub fn set_reason(&mut self, reason: EndReason) {
        self.reason = reason;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        {
            let mut sessions = self.registry.sessions.lock().expect("registry lock");
            sessions.by_id.remove(&self.id);
            sessions.held.release(&self.owner);
        }
        let counters = &self.registry.counters[self.transport.index()];
        counters.active.fetch_sub(1, Ordering::Relaxed);
        counters.ends[self.reason.index()].fetch_add(1, Ordering::Relaxed);
    }
}
