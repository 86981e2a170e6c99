//! Where a session-era session is in MCP's handshake, as the official SDKs keep it: a request other
//! than `initialize` and `ping` is refused until the client has sent `initialize` and then
//! `notifications/initialized` ("Received request before initialization was complete", -32602).

use std::sync::atomic::{AtomicU8, Ordering};

// A new session is 0, the `Default`.
const INITIALIZING: u8 = 1;
const READY: u8 = 2;

/// What a request sent too early is answered with.
pub const TOO_EARLY: &str = "Received request before initialization was complete";

/// One session's handshake.
#[derive(Debug, Default)]
pub struct Handshake(AtomicU8);

impl Handshake {
    /// Whether a message of `method` may be served now; the handshake's own messages move it on.
    pub fn admits(&self, method: &str) -> bool {
        match method {
            "initialize" => {
                self.0.store(INITIALIZING, Ordering::Release);
                true
            }
            "notifications/initialized" => {
                let _ = self
                    .0
                    .compare_exchange(INITIALIZING, READY, Ordering::AcqRel, Ordering::Acquire);
                true
            }
            "ping" => true,
            _ => self.0.load(Ordering::Acquire) == READY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_wait_for_initialize_and_then_initialized() {
        let h = Handshake::default();
        assert!(h.admits("ping") && !h.admits("tools/list"));
        // An `initialized` before `initialize` moves nothing on.
        assert!(h.admits("notifications/initialized") && !h.admits("tools/list"));
        assert!(
            h.admits("initialize") && !h.admits("tools/list"),
            "initialize alone is not enough"
        );
        assert!(h.admits("notifications/initialized") && h.admits("tools/list"));
    }
}
