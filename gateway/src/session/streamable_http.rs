//! A Streamable HTTP session (MCP 2025-03-26): created by `initialize`, reached by its
//! `Mcp-Session-Id`, ended by `DELETE`, by the idle timeout, or by the end of its `GET` stream.
//!
//! The session is one task. While no stream is open it waits for a command (a `GET` attaching its
//! stream, a `DELETE`) or for the idle timeout; a `GET` runs the same [`Producer`] as an HTTP+SSE
//! session, so both transports share the fixed profile's disconnect detection and the legacy
//! profile's spin. The stream's end is the session's: a client that went away under its stream
//! without a `DELETE` is gone (the fixed profile's `client_gone`); one that comes back is answered
//! 404 and starts a new session, as the specification provides.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::frame;
use super::producer::Producer;
use super::registry::{EndReason, Registration};
use crate::conn::ConnHandle;

/// What a request asks of a session's task.
pub enum Command {
    /// Serve this stream (the `GET`'s body is the receiving end) on this connection.
    Attach(mpsc::Sender<Bytes>, ConnHandle),
    Delete,
}

/// A session's controls, shared by the requests that reach it and its task.
pub struct Control {
    commands: mpsc::Sender<Command>,
    /// Whether a `GET` stream is open (the specification allows one per session here).
    streaming: AtomicBool,
    /// Milliseconds since `epoch` of the last request, for the idle timeout.
    last_seen: AtomicU64,
    /// Requests being answered now: a session is not idle while one runs, however long.
    in_flight: AtomicUsize,
    epoch: Instant,
}

/// A request running in a session; touches it when it starts and when it ends.
pub struct InFlight<'a>(&'a Control);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a command could not be given.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The session has ended (or is ending).
    Ended,
    /// A `GET` stream is already open.
    Streaming,
}

impl Control {
    pub(super) fn new() -> (Arc<Control>, mpsc::Receiver<Command>) {
        let (commands, rx) = mpsc::channel(4);
        let control = Control {
            commands,
            streaming: AtomicBool::new(false),
            last_seen: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            epoch: Instant::now(),
        };
        (Arc::new(control), rx)
    }

    /// A request reached the session: it is not idle until the guard is dropped.
    pub fn begin(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        InFlight(self)
    }

    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_seen.store(ms, Ordering::Relaxed);
    }

    fn last_seen(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_seen.load(Ordering::Relaxed))
    }

    /// Hand a `GET` stream to the session's task.
    pub async fn attach(&self, out: mpsc::Sender<Bytes>, conn: ConnHandle) -> Result<(), Refused> {
        if self.streaming.swap(true, Ordering::AcqRel) {
            return Err(Refused::Streaming);
        }
        self.touch();
        self.commands
            .send(Command::Attach(out, conn))
            .await
            .map_err(|_| Refused::Ended)
    }

    pub async fn delete(&self) -> Result<(), Refused> {
        self.commands.send(Command::Delete).await.map_err(|_| Refused::Ended)
    }
}

pub struct StreamableSession {
    registration: Registration,
    producer: Producer,
    control: Arc<Control>,
    commands: mpsc::Receiver<Command>,
    idle_timeout: Option<Duration>,
}

impl StreamableSession {
    pub(super) fn new(
        registration: Registration,
        producer: Producer,
        control: Arc<Control>,
        commands: mpsc::Receiver<Command>,
        idle_timeout: Option<Duration>,
    ) -> StreamableSession {
        control.touch();
        StreamableSession {
            registration,
            producer,
            control,
            commands,
            idle_timeout,
        }
    }

    /// Run until the session ends; the registration (and the registry entry) goes with it.
    pub async fn run(mut self) {
        let reason = self.serve().await;
        tracing::debug!(reason = reason.label(), "Streamable HTTP session ended");
        self.registration.set_reason(reason);
    }

    async fn serve(&mut self) -> EndReason {
        loop {
            let idle_at = self.idle_timeout.map(|t| self.control.last_seen() + t);
            let command = tokio::select! {
                biased;
                _ = self.producer.shutting_down() => return EndReason::Shutdown,
                command = self.commands.recv() => command,
                _ = sleep_until(idle_at) => {
                    // A request may have come meanwhile, or be running: then sleep again from it.
                    let timeout = self.idle_timeout.unwrap_or_default();
                    let busy = self.control.in_flight.load(Ordering::Acquire) > 0;
                    if !busy && self.control.last_seen() + timeout <= Instant::now() {
                        return EndReason::Expired;
                    }
                    continue;
                }
            };
            match command {
                None | Some(Command::Delete) => return EndReason::Deleted,
                Some(Command::Attach(out, conn)) => {
                    let commands = &mut self.commands;
                    // A DELETE while the stream is open ends both.
                    let deleted = async move {
                        loop {
                            match commands.recv().await {
                                None | Some(Command::Delete) => return EndReason::Deleted,
                                Some(Command::Attach(..)) => {}
                            }
                        }
                    };
                    let reason = self.producer.stream(&out, &[], frame::comment, deleted).await;
                    if reason.leaves_client_connected() {
                        conn.abort();
                    }
                    return reason;
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
