//! A stream's producer: the task that writes its frames, whatever the transport.
//!
//! Fixed (`SSE_DISCONNECT_DETECTION=on`): every iteration of the loop also waits on the body's
//! receiver closing, so a client that goes away — FIN or RST, which hyper notices and answers by
//! dropping the response body — ends the session at once, not at the next keepalive. A client that
//! stops reading fills the bounded frame channel; a send that cannot complete within `SSE_SEND_TIMEOUT`
//! ends the session. The rapid-yield detector ends a session whose loop spins.
//!
//! Legacy (`off`): the producer never looks at the receiver, and a failed send is treated as
//! transient and retried. Each retry yields to the scheduler (as a generator re-polled by its server
//! does), so an abandoned session burns CPU without freezing the runtime — the field's post-load CPU.

use std::collections::VecDeque;
use std::time::Duration;

use axum::body::Bytes;
use tokio::sync::mpsc::error::SendError;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::frame;
use super::listen::Listening;
use super::registry::EndReason;
use crate::config::{Detection, SseBehaviour};

/// Whether a frame answers the client (a reply) or is the producer's own (keepalive, retry): only the
/// producer's own count as yields for the rapid-yield detector, since replies come at the client's pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Client,
    Producer,
}

/// The frame loop every stream runs, whatever its transport: replies from the inbox, keepalives,
/// the fixed profile's disconnect detection and send timeout, the legacy profile's retry, the
/// rapid-yield detector. It outlives one stream: a Streamable HTTP session runs it for each GET.
pub struct Producer {
    /// An HTTP+SSE session's replies.
    inbox: Option<mpsc::Receiver<Bytes>>,
    shutdown: watch::Receiver<bool>,
    cfg: SseBehaviour,
    detector: RapidYield,
    /// A listen stream's subscription: the change notifications it writes.
    listening: Option<Listening>,
}

impl Producer {
    pub(super) fn new(
        inbox: Option<mpsc::Receiver<Bytes>>,
        shutdown: watch::Receiver<bool>,
        cfg: SseBehaviour,
    ) -> Producer {
        Producer {
            inbox,
            shutdown,
            detector: RapidYield::new(&cfg),
            cfg,
            listening: None,
        }
    }

    /// The same, writing the change notifications a listen stream asked for.
    pub(super) fn listening(mut self, listening: Listening) -> Producer {
        self.listening = Some(listening);
        self
    }

    /// Whether the gateway is shutting down.
    pub async fn shutting_down(&mut self) {
        let _ = self.shutdown.wait_for(|stop| *stop).await;
    }

    /// Serve one stream until it ends: `first` frames, then replies and keepalives. `stop` ends it
    /// from outside (a Streamable HTTP session deleted) with its own reason.
    pub async fn stream(
        &mut self,
        out: &mpsc::Sender<Bytes>,
        first: &[Bytes],
        keepalive: fn() -> Bytes,
        stop: impl Future<Output = EndReason>,
    ) -> EndReason {
        for frame in first {
            if let Err(reason) = self.deliver(out, frame.clone(), Origin::Client).await {
                return reason;
            }
        }
        let detect = self.cfg.detection == Detection::On;
        let mut stop = std::pin::pin!(stop);
        loop {
            let keepalive_at = Instant::now() + self.cfg.keepalive;
            let (next, origin) = tokio::select! {
                biased;
                _ = async { let _ = self.shutdown.wait_for(|stop| *stop).await; } => {
                    // Best effort: a final frame to a client that still reads.
                    let _ = tokio::time::timeout(Duration::from_millis(200), out.send(frame::shutdown())).await;
                    return EndReason::Shutdown;
                }
                reason = &mut stop => return reason,
                _ = out.closed(), if detect => return EndReason::ClientGone,
                Some(reply) = next_reply(&mut self.inbox) => (reply, Origin::Client),
                // Announcements come at the catalogue's pace, not the loop's: not a yield.
                change = next_change(&mut self.listening) => (change, Origin::Client),
                _ = tokio::time::sleep_until(keepalive_at) => (keepalive(), Origin::Producer),
            };
            if let Err(reason) = self.deliver(out, next, origin).await {
                return reason;
            }
        }
    }

    async fn deliver(&mut self, out: &mpsc::Sender<Bytes>, mut next: Bytes, origin: Origin) -> Result<(), EndReason> {
        if origin == Origin::Producer && self.detector.spinning(Instant::now()) {
            return Err(EndReason::SpinDetected);
        }
        loop {
            let sent = match self.cfg.send_timeout {
                Some(limit) => tokio::time::timeout(limit, out.send(next))
                    .await
                    .map_err(|_| EndReason::SendTimeout)?,
                None => out.send(next).await,
            };
            match (sent, self.cfg.detection) {
                (Ok(()), _) => return Ok(()),
                (Err(_), Detection::On) => return Err(EndReason::ClientGone),
                (Err(SendError(frame)), Detection::Off) => {
                    // Legacy: "transient", try again.
                    next = frame;
                    if *self.shutdown.borrow() {
                        return Err(EndReason::Shutdown);
                    }
                    if self.detector.spinning(Instant::now()) {
                        return Err(EndReason::SpinDetected);
                    }
                    // A send on a closed channel returns at once without spending the task's budget:
                    // without this yield the retry would monopolise its worker thread.
                    tokio::task::yield_now().await;
                }
            }
        }
    }
}

/// The last line of defence: a producer that yields too often is spinning.
struct RapidYield {
    window: Duration,
    max: Option<u32>,
    consecutive: Option<u32>,
    recent: VecDeque<Instant>,
    last: Option<Instant>,
    streak: u32,
}

const CLOSE_YIELD: Duration = Duration::from_millis(100);

impl RapidYield {
    fn new(cfg: &SseBehaviour) -> Self {
        RapidYield {
            window: cfg.rapid_yield_window,
            max: cfg.rapid_yield_max,
            consecutive: cfg.rapid_yield_consecutive,
            // Grown by yields, not reserved: a quiet stream holds none.
            recent: VecDeque::new(),
            last: None,
            streak: 0,
        }
    }

    /// Record one yield at `now`; true when either rule says the loop is spinning.
    fn spinning(&mut self, now: Instant) -> bool {
        let mut spin = false;
        if let Some(n) = self.consecutive {
            self.streak = match self.last {
                Some(prev) if now.duration_since(prev) < CLOSE_YIELD => self.streak + 1,
                _ => 0,
            };
            spin |= self.streak >= n;
        }
        self.last = Some(now);
        if let Some(max) = self.max {
            while self
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) > self.window)
            {
                self.recent.pop_front();
            }
            self.recent.push_back(now);
            spin |= self.recent.len() > max as usize;
        }
        spin
    }
}

/// The next reply of an HTTP+SSE session; pending for any other stream.
async fn next_reply(inbox: &mut Option<mpsc::Receiver<Bytes>>) -> Option<Bytes> {
    match inbox {
        Some(inbox) => inbox.recv().await,
        None => std::future::pending().await,
    }
}

/// The next change a listen stream asked for; pending for any other stream.
async fn next_change(listening: &mut Option<Listening>) -> Bytes {
    match listening {
        Some(l) => l.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector(max: Option<u32>, consecutive: Option<u32>) -> RapidYield {
        RapidYield::new(&SseBehaviour {
            detection: Detection::On,
            send_timeout: None,
            keepalive: Duration::from_secs(30),
            rapid_yield_window: Duration::from_millis(1000),
            rapid_yield_max: max,
            rapid_yield_consecutive: consecutive,
            require_initialize: true,
        })
    }

    #[test]
    fn consecutive_close_yields_trip_the_detector() {
        let mut d = detector(None, Some(3));
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert!(!d.spinning(at(0)));
        assert!(!d.spinning(at(50)));
        assert!(!d.spinning(at(300)), "a gap of 100 ms or more breaks the streak");
        assert!(!d.spinning(at(310)));
        assert!(!d.spinning(at(320)));
        assert!(d.spinning(at(330)), "three consecutive yields under 100 ms");
    }

    #[test]
    fn too_many_yields_in_the_window_trip_the_detector() {
        let mut d = detector(Some(5), None);
        let t0 = Instant::now();
        for i in 0..5 {
            assert!(!d.spinning(t0 + Duration::from_millis(i * 150)));
        }
        assert!(
            d.spinning(t0 + Duration::from_millis(760)),
            "six yields within one second"
        );
        let mut d = detector(Some(5), None);
        for i in 0..20 {
            assert!(
                !d.spinning(t0 + Duration::from_millis(i * 250)),
                "four a second is fine"
            );
        }
    }

    #[test]
    fn no_rules_never_trip() {
        let mut d = detector(None, None);
        let t0 = Instant::now();
        assert!((0..10_000).all(|_| !d.spinning(t0)));
    }
}
