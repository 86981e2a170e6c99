//! Talking to the client while a request runs (session era): notifications (log messages, progress)
//! and server→client requests (sampling, elicitation) go out before the request's answer — on the
//! POST's reply stream (Streamable HTTP) or the session's stream (HTTP+SSE) — and the client's answers
//! to those requests, posted back as JSON-RPC responses, find the request waiting for them by id.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// How long a server→client request waits for the client's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a request's messages to the client go before its answer.
#[derive(Clone)]
pub struct Outbox(pub mpsc::Sender<String>);

impl Outbox {
    /// Send one message; `false` when the client has gone.
    pub async fn send(&self, msg: &Value) -> bool {
        self.0.send(msg.to_string()).await.is_ok()
    }
}

/// The server→client requests waiting for their answers, and the logging level clients asked for.
#[derive(Default)]
pub struct Peers {
    next_id: AtomicU64,
    waiting: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    /// The least severe level sent (`logging/setLevel`); one for the whole server, whose clients are
    /// tests, not tenants.
    level: AtomicU8,
}

/// RFC 5424's levels, least severe first, as MCP names them.
const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

impl Peers {
    /// `logging/setLevel`: `Err` for a level MCP does not name.
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        let i = LEVELS
            .iter()
            .position(|l| *l == level)
            .ok_or_else(|| format!("unknown logging level: {level}"))?;
        self.level.store(i as u8, Ordering::Relaxed);
        Ok(())
    }

    /// Whether a message at `level` is sent.
    pub fn logs(&self, level: &str) -> bool {
        LEVELS
            .iter()
            .position(|l| *l == level)
            .is_some_and(|i| i as u8 >= self.level.load(Ordering::Relaxed))
    }

    /// Whether a message at `level` passes a `least` level asked for.
    pub fn lets_through(least: &str, level: &str) -> bool {
        let at = |l: &str| LEVELS.iter().position(|x| *x == l);
        at(level).zip(at(least)).is_some_and(|(l, least)| l >= least)
    }

    /// Send a request to the client and wait for its answer (`result` or `error`, as sent).
    pub async fn ask(&self, out: &Outbox, method: &str, params: Value) -> Result<Value, String> {
        let id = format!("stampede-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().expect("peers lock").insert(id.clone(), tx);
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let answer = if out.send(&request).await {
            tokio::time::timeout(ASK_TIMEOUT, rx).await.ok().and_then(Result::ok)
        } else {
            None
        };
        self.waiting.lock().expect("peers lock").remove(&id);
        let answer = answer.ok_or_else(|| format!("the client did not answer {method}"))?;
        match answer.get("result") {
            Some(result) => Ok(result.clone()),
            None => Err(format!("the client refused {method}: {}", answer["error"])),
        }
    }

    /// A response the client posted: to the request waiting for it, if one is. `false` when none is.
    pub fn answered(&self, response: &Value) -> bool {
        let id = match &response["id"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let waiting = self.waiting.lock().expect("peers lock").remove(&id);
        waiting.is_some_and(|tx| tx.send(response.clone()).is_ok())
    }
}

/// Whether `msg` is a response (to a server→client request), not a request or a notification.
pub fn is_response(msg: &Value) -> bool {
    msg.get("method").is_none()
        && msg.get("id").is_some()
        && (msg.get("result").is_some() || msg.get("error").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_to_the_client_gets_the_answer_posted_back_with_its_id() {
        let peers = std::sync::Arc::new(Peers::default());
        let (tx, mut rx) = mpsc::channel(4);
        let asking = tokio::spawn({
            let peers = std::sync::Arc::clone(&peers);
            async move { peers.ask(&Outbox(tx), "sampling/createMessage", json!({})).await }
        });
        let sent: Value = serde_json::from_str(&rx.recv().await.unwrap()).unwrap();
        assert_eq!(sent["method"], "sampling/createMessage");
        let response = json!({"jsonrpc": "2.0", "id": sent["id"], "result": {"content": {"text": "hi"}}});
        assert!(is_response(&response) && !is_response(&sent));
        assert!(peers.answered(&response));
        assert_eq!(asking.await.unwrap().unwrap()["content"]["text"], "hi");
        // Nobody waits for it any more.
        assert!(!peers.answered(&response));
    }

    #[test]
    fn messages_below_the_level_asked_for_are_not_sent() {
        let peers = Peers::default();
        assert!(peers.logs("debug"));
        peers.set_level("warning").unwrap();
        assert!(!peers.logs("info") && peers.logs("error"));
        assert!(peers.set_level("loud").is_err());
    }
}
