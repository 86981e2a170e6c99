//! Every open SSE session, by id. A session is registered when its stream opens and leaves the
//! registry when its producer task ends — by whatever path: the [`Registration`] guard removes it on
//! drop, so a return, an error and a panic all count.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use tokio::sync::{mpsc, watch};

use super::session::Session;
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
}

impl EndReason {
    pub const ALL: [EndReason; 5] = [
        EndReason::ClientGone,
        EndReason::SendTimeout,
        EndReason::SpinDetected,
        EndReason::Shutdown,
        EndReason::Error,
    ];

    pub fn label(self) -> &'static str {
        match self {
            EndReason::ClientGone => "client_gone",
            EndReason::SendTimeout => "send_timeout",
            EndReason::SpinDetected => "spin_detected",
            EndReason::Shutdown => "shutdown",
            EndReason::Error => "error",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How to reach a session from `POST /message`.
#[derive(Clone)]
pub struct Entry {
    /// Serialized `event: message` frames for the session's producer.
    pub inbox: mpsc::Sender<Bytes>,
    pub server_id: Option<String>,
}

/// Frames a client has not taken yet, per session; with the send timeout this bounds its memory.
const OUT_FRAMES: usize = 8;
/// Replies waiting for the producer, per session.
const INBOX_FRAMES: usize = 32;

pub struct Registry {
    sessions: Mutex<HashMap<String, Entry>>,
    total: AtomicU64,
    ends: [AtomicU64; EndReason::ALL.len()],
    shutdown: watch::Sender<bool>,
    behaviour: SseBehaviour,
}

/// Figures for the metrics endpoint.
pub struct SseCounts {
    pub active: usize,
    pub total: u64,
    pub ends: [(EndReason, u64); EndReason::ALL.len()],
}

impl Registry {
    pub fn new(behaviour: SseBehaviour) -> Arc<Registry> {
        Arc::new(Registry {
            sessions: Mutex::default(),
            total: AtomicU64::new(0),
            ends: Default::default(),
            shutdown: watch::Sender::new(false),
            behaviour,
        })
    }

    /// Register a new session: answers its id, its producer (to be spawned) and the receiving end of
    /// its frames (the response body).
    pub fn open(
        self: &Arc<Self>,
        server_id: Option<String>,
        conn: ConnHandle,
    ) -> (String, Session, mpsc::Receiver<Bytes>) {
        let id = crate::model::new_id();
        let (inbox_tx, inbox_rx) = mpsc::channel(INBOX_FRAMES);
        let (out_tx, out_rx) = mpsc::channel(OUT_FRAMES);
        self.sessions.lock().expect("registry lock").insert(
            id.clone(),
            Entry {
                inbox: inbox_tx,
                server_id,
            },
        );
        self.total.fetch_add(1, Ordering::Relaxed);
        let registration = Registration {
            registry: Arc::clone(self),
            id: id.clone(),
            reason: EndReason::Error,
        };
        let session = Session::new(
            registration,
            inbox_rx,
            out_tx,
            self.shutdown.subscribe(),
            self.behaviour,
            conn,
        );
        (id, session, out_rx)
    }

    pub fn lookup(&self, id: &str) -> Option<Entry> {
        self.sessions.lock().expect("registry lock").get(id).cloned()
    }

    /// Ask every session to send its final frame and end.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn active(&self) -> usize {
        self.sessions.lock().expect("registry lock").len()
    }

    pub fn counts(&self) -> SseCounts {
        SseCounts {
            active: self.active(),
            total: self.total.load(Ordering::Relaxed),
            ends: EndReason::ALL.map(|r| (r, self.ends[r.index()].load(Ordering::Relaxed))),
        }
    }
}

/// A session's place in the registry, held by its producer; dropping it ends the session.
pub struct Registration {
    registry: Arc<Registry>,
    id: String,
    reason: EndReason,
}

impl Registration {
    pub fn set_reason(&mut self, reason: EndReason) {
        self.reason = reason;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.sessions.lock().expect("registry lock").remove(&self.id);
        self.registry.ends[self.reason.index()].fetch_add(1, Ordering::Relaxed);
    }
}
