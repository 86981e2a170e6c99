//! One HTTP exchange of an MCP session on the user's connection: a `POST` with the session's headers,
//! its answer classified — 202, 404 (in the session era: the session is gone), another status, or a
//! reply read as JSON (into the session's kept buffer) or as an event stream (parsed as it arrives,
//! notifications and other messages skipped until the reply to this request). In the stateless era
//! a refusal is a JSON-RPC error under its HTTP status (400, 404), read as the reply it is. Every way
//! an answer can be wrong is a `Failed` with its kind and message.

use std::time::Duration;

use protocol::{Era, Version};
use serde::Deserialize;

use super::session::State;
use crate::actions::Env;
use crate::actions::conn::{Answer, Conn, Head};
use crate::actions::events::MAX_EVENT;
use crate::actions::jsonrpc::{self, Reply};
use crate::data::FailureKind;

const ACCEPT_BOTH: &str = "application/json, text/event-stream";
/// After its reply, how long a reply stream may take to end before its connection is dropped.
pub(super) const DRAIN: Duration = Duration::from_secs(1);
/// What an exchange came to when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answered {
    /// 202: a notification taken.
    Accepted,
    Reply(u16, Reply),
    /// The session is unknown or ended: 404, or a 4xx −32001 error (its status).
    Gone(u16),
}

/// A failed exchange, as recorded.
#[derive(Debug)]
pub(super) struct Failed {
    pub(super) kind: FailureKind,
    pub(super) status: Option<u16>,
    pub(super) rpc_error: Option<i64>,
    pub(super) message: String,
}

impl Failed {
    pub(super) fn new(kind: FailureKind, status: Option<u16>, message: impl Into<String>) -> Failed {
        Failed {
            kind,
            status,
            rpc_error: None,
            message: message.into(),
        }
    }

    pub(super) fn protocol(status: Option<u16>, message: impl Into<String>) -> Failed {
        Failed::new(FailureKind::Protocol, status, message)
    }

    /// The server did not know the session: 404, or a −32001 refusal under `status`.
    pub(super) fn session_not_found(status: u16, message: &str) -> Failed {
        Failed {
            kind: FailureKind::SessionNotFound,
            status: Some(status),
            rpc_error: (status != 404).then_some(SESSION_NOT_FOUND),
            message: message.into(),
        }
    }

    pub(super) fn timeout(message: &str) -> Failed {
        Failed::new(FailureKind::Timeout, None, message)
    }

    pub(super) fn json_rpc(status: u16, code: i64, message: String) -> Failed {
        Failed {
            kind: FailureKind::JsonRpc,
            status: Some(status),
            rpc_error: Some(code),
            message,
        }
    }

    /// A body that could not be read, under the answer's status.
    fn reading(status: u16) -> impl FnOnce((FailureKind, String)) -> Failed {
        move |(kind, message)| Failed::new(kind, Some(status), message)
    }

    pub(super) fn from_answer(answer: Answer) -> Failed {
        match answer {
            Answer::Failed(kind, message) => Failed::new(kind, None, message),
            Answer::Answered(status) => Failed::protocol(Some(status), "unexpected answer"),
        }
    }

    /// Whether the session can go on after it (a JSON-RPC error or a refused request can).
    pub(super) fn ends_session(&self) -> bool {
        !matches!(self.kind, FailureKind::JsonRpc | FailureKind::Status)
    }
}

/// Which reply an exchange waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Awaits {
    /// A notification: 202 and no reply.
    Nothing,
    Reply(u64),
    /// `initialize`'s reply: it also gives the session id and the protocol version.
    Initialize(u64),
    /// `server/discover`'s reply: it also gives the versions the server speaks.
    Discover(u64),
}

pub(super) fn status_failure(status: u16, message: &str) -> Failed {
    Failed::new(FailureKind::Status, Some(status), message)
}

/// One POST within the endpoint's timeout; a late answer never reuses the connection.
pub(super) async fn exchange(
    env: &Env,
    conn: &mut Conn,
    url: &str,
    body: &str,
    st: &mut State,
    method: &str,
    awaits: Awaits,
) -> Result<Answered, Failed> {
    match tokio::time::timeout(env.timeout, post(env, conn, url, body, st, method, awaits)).await {
        Ok(answered) => {
            if answered.is_err() && conn.mid_answer() {
                conn.discard();
            }
            answered
        }
        Err(_) => {
            conn.discard();
            Err(Failed::timeout("timed out"))
        }
    }
}

/// What a content type says the body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    Json,
    Events,
    Other,
}

pub(super) fn body_kind(content_type: Option<&[u8]>) -> Body {
    let Some(ct) = content_type else { return Body::Other };
    let essence = ct.split(|b| *b == b';').next().unwrap_or(ct).trim_ascii();
    if essence.eq_ignore_ascii_case(b"application/json") {
        Body::Json
    } else if essence.eq_ignore_ascii_case(b"text/event-stream") {
        Body::Events
    } else {
        Body::Other
    }
}

async fn post(
    env: &Env,
    conn: &mut Conn,
    url: &str,
    body: &str,
    st: &mut State,
    method: &str,
    awaits: Awaits,
) -> Result<Answered, Failed> {
    st.captured.hints = jsonrpc::Hints::default();
    let (headers, n) = headers(ACCEPT_BOTH, st, method);
    let head = conn
        .open(&env.endpoint, "POST", url, &headers[..n], Some(body))
        .await
        .map_err(Failed::from_answer)?;
    check_session_id(conn, &head, st, matches!(awaits, Awaits::Initialize(_)))?;
    let status = head.status;
    let kind = body_kind(head.content_type.as_ref().map(|r| conn.head_value(r)));
    // A stateless refusal is a JSON-RPC error under its status: read, not just counted.
    let refusal_to_read = st.era == Era::Stateless && kind == Body::Json && matches!(status, 400..=499);
    match status {
        202 => return drain(conn, status).await.map(|()| Answered::Accepted),
        404 if st.era == Era::Session => return drain(conn, status).await.map(|()| Answered::Gone(404)),
        // Some servers say "session not found" with another 4xx and a −32001 error.
        400..=499 if st.era == Era::Session && kind == Body::Json && !st.session_id.is_empty() => {
            return session_refusal(conn, st, status).await;
        }
        s if !(200..300).contains(&s) && !refusal_to_read => {
            drain(conn, status).await?;
            return Err(status_failure(s, ""));
        }
        _ => {}
    }
    let id = match awaits {
        Awaits::Nothing => return drain(conn, status).await.map(|()| Answered::Accepted),
        Awaits::Reply(id) | Awaits::Initialize(id) | Awaits::Discover(id) => id,
    };
    let capture = match awaits {
        Awaits::Initialize(_) => Capture::Negotiated,
        Awaits::Discover(_) => Capture::Discovered,
        _ if st.era == Era::Stateless => Capture::Result,
        _ => Capture::Nothing,
    };
    match kind {
        Body::Json => json_reply(conn, st, status, id, capture).await,
        Body::Events => stream_reply(conn, st, status, id, capture).await,
        Body::Other => {
            let ct = head.content_type.as_ref().map_or("no content type".to_owned(), |r| {
                String::from_utf8_lossy(conn.head_value(r)).into_owned()
            });
            conn.discard();
            Err(Failed::protocol(
                Some(status),
                format!("answered {ct}, not JSON or an event stream"),
            ))
        }
    }
}

/// A request's headers (the first `n`): `Accept`, then the session's id and version once it has
/// them; in the stateless era also the routing headers, `Mcp-Method` and, for a method that names
/// something, `Mcp-Name` (the session keeps its value, encoded, in `name`).
pub(super) fn headers<'a>(accept: &'a str, st: &'a State, method: &'a str) -> ([(&'static str, &'a str); 5], usize) {
    let mut headers = [("accept", accept), ("", ""), ("", ""), ("", ""), ("", "")];
    let mut n = 1;
    let stateless = st.era == Era::Stateless;
    for (name, value) in [
        ("mcp-session-id", st.session_id.as_str()),
        ("mcp-protocol-version", st.version.as_str()),
        ("mcp-method", if stateless { method } else { "" }),
        ("mcp-name", if stateless { st.name.as_str() } else { "" }),
    ] {
        if !value.is_empty() {
            headers[n] = (name, value);
            n += 1;
        }
    }
    (headers, n)
}

/// The session id an answer carries must be the session's; `initialize`'s answer gives it.
fn check_session_id(conn: &Conn, head: &Head, st: &mut State, initializing: bool) -> Result<(), Failed> {
    let Some(range) = &head.session_id else { return Ok(()) };
    let id = conn.head_value(range);
    if initializing {
        st.session_id.clear();
        st.session_id.push_str(&String::from_utf8_lossy(id));
        return Ok(());
    }
    if id != st.session_id.as_bytes() {
        return Err(Failed::protocol(
            Some(head.status),
            format!(
                "the session id changed mid-session (was {:?}, now {:?})",
                st.session_id,
                String::from_utf8_lossy(id)
            ),
        ));
    }
    Ok(())
}

/// Read the rest of a body, keeping nothing.
pub(super) async fn drain(conn: &mut Conn, status: u16) -> Result<(), Failed> {
    while conn.next_data().await.map_err(Failed::reading(status))?.is_some() {}
    Ok(())
}

#[derive(Deserialize)]
struct InitReply<'a> {
    #[serde(borrow, default)]
    result: Option<InitResult<'a>>,
}

#[derive(Deserialize)]
struct InitResult<'a> {
    #[serde(borrow, default, rename = "protocolVersion")]
    protocol_version: Option<&'a str>,
    #[serde(borrow, default, rename = "supportedVersions")]
    supported_versions: Vec<&'a str>,
}

/// What a start's reply gives the session besides its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Capture {
    Nothing,
    /// `initialize`: the version the server chose.
    Negotiated,
    /// `server/discover`: the newest stateless-era version the server lists (none: it speaks none).
    Discovered,
    /// A stateless-era result: whether it asks for input (and what), its caching hints.
    Result,
}

/// What a stateless-era reply said of itself (`Capture::Result`).
#[derive(Debug, Default)]
pub(super) struct Captured {
    pub(super) hints: jsonrpc::Hints,
    /// An `input_required` result's `inputRequests` and `requestState`.
    pub(super) input_requests: serde_json::Value,
    pub(super) request_state: Option<serde_json::Value>,
}

impl Captured {
    fn take(&mut self, bytes: &[u8], hints: jsonrpc::Hints) {
        #[derive(Deserialize)]
        struct Asking {
            result: AskingResult,
        }
        #[derive(Deserialize)]
        struct AskingResult {
            #[serde(default, rename = "inputRequests")]
            input_requests: serde_json::Value,
            #[serde(default, rename = "requestState")]
            request_state: Option<serde_json::Value>,
        }
        self.hints = hints;
        if hints.input_required
            && let Ok(Asking { result }) = serde_json::from_slice::<Asking>(bytes)
        {
            self.input_requests = result.input_requests;
            self.request_state = result.request_state;
        }
    }
}

/// What one JSON-RPC message says, when it is the reply to `id`; keeps the version a start's reply
/// gives in `version`, and what a stateless result says of itself in `captured`.
fn reply_to(
    bytes: &[u8],
    id: u64,
    capture: Capture,
    version: &mut String,
    captured: &mut Captured,
) -> Result<Option<Reply>, String> {
    let (reply_id, reply, hints) =
        jsonrpc::parse_hinted(bytes).map_err(|e| format!("a message that is not JSON-RPC: {e}"))?;
    if reply_id.and_then(|v| v.as_u64()) != Some(id) || reply == Reply::Neither {
        // A notification, or a request from the server: not the reply.
        return Ok(None);
    }
    if capture == Capture::Result {
        captured.take(bytes, hints);
    } else if capture != Capture::Nothing
        && let Ok(InitReply { result: Some(r) }) = serde_json::from_slice::<InitReply>(bytes)
    {
        let chosen = match capture {
            Capture::Negotiated => r.protocol_version,
            _ => r
                .supported_versions
                .iter()
                .filter_map(|v| Version::parse(v))
                .filter(|v| v.era() == Era::Stateless)
                .max()
                .map(Version::as_str),
        };
        version.clear();
        version.push_str(chosen.unwrap_or_default());
    }
    Ok(Some(reply))
}

/// The JSON-RPC error code servers answer an unknown session with, beside (or instead of) 404.
const SESSION_NOT_FOUND: i64 = -32001;

/// A session-era 4xx with a JSON body: `Gone` when it is the −32001 "session not found" error,
/// else a failure of its status.
async fn session_refusal(conn: &mut Conn, st: &mut State, status: u16) -> Result<Answered, Failed> {
    st.reply.clear();
    while let Some(data) = conn.next_data().await.map_err(Failed::reading(status))? {
        if st.reply.len() + data.len() > MAX_EVENT {
            conn.discard();
            return Err(status_failure(status, ""));
        }
        st.reply.extend_from_slice(data);
    }
    match jsonrpc::parse(&st.reply) {
        Ok((_, Reply::Error(SESSION_NOT_FOUND))) => Ok(Answered::Gone(status)),
        _ => Err(status_failure(status, "")),
    }
}

async fn json_reply(
    conn: &mut Conn,
    st: &mut State,
    status: u16,
    id: u64,
    capture: Capture,
) -> Result<Answered, Failed> {
    st.reply.clear();
    loop {
        let data = conn.next_data().await.map_err(Failed::reading(status))?;
        let Some(data) = data else { break };
        if st.reply.len() + data.len() > MAX_EVENT {
            conn.discard();
            return Err(Failed::new(
                FailureKind::TooLarge,
                Some(status),
                format!("a reply larger than {} KiB", MAX_EVENT >> 10),
            ));
        }
        st.reply.extend_from_slice(data);
    }
    match reply_to(&st.reply, id, capture, &mut st.version, &mut st.captured) {
        Ok(Some(reply)) => Ok(Answered::Reply(status, reply)),
        Ok(None) => Err(Failed::protocol(
            Some(status),
            "the answer is not the reply to the request",
        )),
        Err(message) => Err(Failed::protocol(Some(status), message)),
    }
}

async fn stream_reply(
    conn: &mut Conn,
    st: &mut State,
    status: u16,
    id: u64,
    capture: Capture,
) -> Result<Answered, Failed> {
    st.parser.reset();
    let State {
        parser,
        version,
        captured,
        ..
    } = st;
    let found = loop {
        let data = conn.next_data().await.map_err(Failed::reading(status))?;
        let Some(data) = data else {
            let message = if parser.pending() {
                "the stream ended inside an event"
            } else {
                "the stream ended before the reply"
            };
            return Err(Failed::protocol(Some(status), message));
        };
        let fed = parser.feed(data, |name, payload| {
            // An event with no data (2025-11-25's priming event, carrying only an id) is no message.
            if name != b"message" || payload.trim().is_empty() {
                return None;
            }
            reply_to(payload.as_bytes(), id, capture, version, captured).transpose()
        });
        match fed {
            Ok(None) => {}
            Ok(Some(Ok(reply))) => break reply,
            Ok(Some(Err(message))) => {
                conn.discard();
                return Err(Failed::protocol(Some(status), message));
            }
            Err(refused) => {
                conn.discard();
                return Err(Failed::new(refused.kind(), Some(status), refused.to_string()));
            }
        }
    };
    // The server should end the stream after the reply; one that does not loses the connection.
    if tokio::time::timeout(DRAIN, drain(conn, status)).await.is_err() {
        conn.discard();
    }
    Ok(Answered::Reply(status, found))
}
