//! One Streamable HTTP session on the user's own connection (`conn::Conn::open`/`next_data`), its
//! buffers kept in the user's scratch so a warm session allocates nothing per request: the request
//! is rendered into the scratch body, a JSON reply read into a kept buffer, a streamed reply parsed
//! as it arrives, the session id and protocol version kept in kept strings.
//!
//! Every answer is classified, never trusted: a content type other than JSON or an event stream, a
//! reply larger than 1 MiB, a stream cut inside an event, data that is not UTF-8, a session id that
//! changes — each is a protocol failure with its message, and the session ends as "by an error".

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::Mcp;
use super::events::{EventParser, MAX_EVENT};
use crate::actions::conn::{Answer, Conn, Head};
use crate::actions::jsonrpc::{self, Reply};
use crate::actions::request::{Scratch, render};
use crate::actions::{CloseMode, Ended, Env, Slots};
use crate::data::FailureKind;
use crate::lang::{DurRange, Values};
use crate::record::{Outcome, Sample};

/// The version asked for in `initialize`; the server's answer is sent from then on.
const PROTOCOL_VERSION: &str = "2025-03-26";
const ACCEPT_BOTH: &str = "application/json, text/event-stream";
/// After its reply, how long a reply stream may take to end before its connection is dropped.
const DRAIN: Duration = Duration::from_secs(1);
/// A reply buffer grown past this is given back after the session.
const KEEP_REPLY: usize = 64 << 10;

/// A session's buffers, kept in the user's scratch between sessions.
#[derive(Default)]
pub struct State {
    session_id: String,
    version: String,
    parser: EventParser,
    /// A JSON reply's body.
    reply: Vec<u8>,
    /// The second connection a listening session's `DELETE` goes on (its first holds the stream).
    side: Conn,
    next_id: u64,
}

impl State {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client ended it (`close`).
    Client,
    /// The server did: its stream ended, or the session was gone again after a new start.
    Server,
    /// A failure on the way (broken connection, malformed answer, timeout).
    Error,
}

/// What an exchange came to when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answered {
    /// 202: a notification taken.
    Accepted,
    Reply(u16, Reply),
    /// 404: the session is unknown or ended.
    Gone,
}

/// A failed exchange, as recorded.
#[derive(Debug)]
struct Failed {
    kind: FailureKind,
    status: Option<u16>,
    rpc_error: Option<i64>,
    message: String,
}

impl Failed {
    fn protocol(status: Option<u16>, message: impl Into<String>) -> Failed {
        Failed {
            kind: FailureKind::Protocol,
            status,
            rpc_error: None,
            message: message.into(),
        }
    }

    fn from_answer(answer: Answer) -> Failed {
        match answer {
            Answer::Failed(kind, message) => Failed {
                kind,
                status: None,
                rpc_error: None,
                message,
            },
            Answer::Answered(status) => Failed::protocol(Some(status), "unexpected answer"),
        }
    }

    /// Whether the session can go on after it (a JSON-RPC error or a refused request can).
    fn ends_session(&self) -> bool {
        !matches!(self.kind, FailureKind::JsonRpc | FailureKind::Status)
    }
}

/// Which reply an exchange waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaits {
    /// A notification: 202 and no reply.
    Nothing,
    Reply(u64),
    /// `initialize`'s reply: it also gives the session id and the protocol version.
    Initialize(u64),
}

pub async fn run(
    a: &Mcp,
    env: &Env,
    slots: Slots,
    values: &mut (impl Values + Send),
    scratch: &mut Scratch,
    intended: Instant,
) -> Ended {
    let Scratch {
        url, body, conn, mcp, ..
    } = scratch;
    let st = mcp;
    render(url, &env.base_path, &a.endpoint, values);
    st.next_id = 0;

    // 1. Start: initialize and the initialized notification, timed as the action's own series.
    if let Err(f) = start(env, conn, url, body, st).await {
        let kind = f.kind;
        record(env, slots.main, intended.elapsed(), &Err(f));
        return if kind == FailureKind::Connect {
            Ended::Unreachable
        } else {
            Ended::Done(Outcome::Failed(kind))
        };
    }
    record(env, slots.main, intended.elapsed(), &Ok((Outcome::Ok, 200, None)));
    let g = &env.recorder.gauges.mcp;
    g.opened.fetch_add(1, Ordering::Relaxed);
    g.open.fetch_add(1, Ordering::Relaxed);

    // 2. The requests, each timed in its method's series.
    let mut end = End::Client;
    for r in &a.requests {
        let id = st.next_id();
        body.clear();
        let _ = write!(body, r#"{{"jsonrpc":"2.0","id":{id},"method":{}"#, r.method_json);
        if let Some(params) = &r.params {
            body.push_str(",\"params\":");
            params.render_into(body, values);
        }
        body.push('}');
        let sent = Instant::now();
        let mut answered = exchange(env, conn, url, body, st, Awaits::Reply(id)).await;
        if let Ok(Answered::Gone) = answered {
            // The session expired: start a new one, once, and ask again.
            g.reinitialized.fetch_add(1, Ordering::Relaxed);
            let saved = std::mem::take(body);
            answered = match start(env, conn, url, body, st).await {
                Ok(()) => {
                    *body = saved;
                    exchange(env, conn, url, body, st, Awaits::Reply(id)).await
                }
                Err(f) => {
                    *body = saved;
                    Err(f)
                }
            };
        }
        let judged = judge(answered, &a.expected_errors);
        record(
            env,
            slots.extra(r.series).expect("a series per method"),
            sent.elapsed(),
            &judged,
        );
        match judged {
            Err(f) if f.status == Some(404) => {
                end = End::Server;
                break;
            }
            Err(f) if f.ends_session() => {
                end = End::Error;
                break;
            }
            _ => {}
        }
    }

    // 3. Hold: on the session's GET stream when listening.
    let mut listening = false;
    if end == End::Client {
        match a.listen_series().and_then(|i| slots.extra(i)) {
            Some(slot) => {
                let (held, end_of_hold) = listen(env, slot, conn, url, st, a.hold).await;
                listening = held;
                end = end_of_hold;
            }
            None => hold(env, a.hold).await,
        }
    }

    // 4. The end.
    let counter = match end {
        End::Client => match a.close {
            CloseMode::Delete => {
                let slot = a.delete_series().and_then(|i| slots.extra(i));
                let delete_conn = if listening { &mut st.side } else { &mut *conn };
                let sent = Instant::now();
                let deleted = delete(env, delete_conn, url, &st.session_id, &st.version).await;
                if let Some(slot) = slot {
                    record(env, slot, sent.elapsed(), &deleted);
                }
                if listening {
                    conn.cut(false);
                }
                &g.closed_delete
            }
            _ => {
                conn.cut(a.rst);
                if a.rst { &g.closed_rst } else { &g.closed_abrupt }
            }
        },
        End::Server => {
            if conn.mid_answer() {
                conn.cut(false);
            }
            &g.server_closed
        }
        End::Error => {
            conn.discard();
            &g.errored
        }
    };
    counter.fetch_add(1, Ordering::Relaxed);
    g.open.fetch_sub(1, Ordering::Relaxed);
    if st.reply.capacity() > KEEP_REPLY {
        st.reply = Vec::new();
    }
    Ended::Done(Outcome::Ok)
}

/// `initialize`, then `notifications/initialized`; keeps the session id and the version.
async fn start(env: &Env, conn: &mut Conn, url: &str, body: &mut String, st: &mut State) -> Result<(), Failed> {
    st.session_id.clear();
    st.version.clear();
    let id = st.next_id();
    body.clear();
    let _ = write!(
        body,
        r#"{{"jsonrpc":"2.0","id":{id},"method":"initialize","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"stampede","version":"{}"}}}}}}"#,
        env!("CARGO_PKG_VERSION")
    );
    match exchange(env, conn, url, body, st, Awaits::Initialize(id)).await? {
        Answered::Reply(_, Reply::Result) => {}
        Answered::Reply(status, Reply::Error(code)) => {
            return Err(Failed {
                kind: FailureKind::JsonRpc,
                status: Some(status),
                rpc_error: Some(code),
                message: format!("initialize refused with JSON-RPC error {code}"),
            });
        }
        Answered::Reply(status, Reply::Neither) => {
            return Err(Failed::protocol(
                Some(status),
                "initialize answered neither a result nor an error",
            ));
        }
        Answered::Accepted => return Err(Failed::protocol(Some(202), "initialize answered 202 without a reply")),
        Answered::Gone => return Err(status_failure(404, "initialize answered 404")),
    }
    if st.version.is_empty() {
        st.version.push_str(PROTOCOL_VERSION);
    }
    body.clear();
    body.push_str(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    match exchange(env, conn, url, body, st, Awaits::Nothing).await? {
        Answered::Gone => Err(status_failure(404, "the session was gone at once")),
        Answered::Accepted | Answered::Reply(..) => Ok(()),
    }
}

fn status_failure(status: u16, message: &str) -> Failed {
    Failed {
        kind: FailureKind::Status,
        status: Some(status),
        rpc_error: None,
        message: message.to_owned(),
    }
}

/// An exchange as recorded: the outcome, status and JSON-RPC error code, or the failure.
type Judged = Result<(Outcome, u16, Option<i64>), Failed>;

/// A request's answer as an outcome: a result is ok, an error is a failure unless expected.
fn judge(answered: Result<Answered, Failed>, expected_errors: &[i64]) -> Judged {
    match answered? {
        Answered::Reply(status, Reply::Result) => Ok((Outcome::Ok, status, None)),
        Answered::Reply(status, Reply::Error(code)) if expected_errors.contains(&code) => {
            Ok((Outcome::Expected, status, Some(code)))
        }
        Answered::Reply(status, Reply::Error(code)) => Err(Failed {
            kind: FailureKind::JsonRpc,
            status: Some(status),
            rpc_error: Some(code),
            message: String::new(),
        }),
        Answered::Reply(status, Reply::Neither) => Err(Failed::protocol(
            Some(status),
            "a reply with neither a result nor an error",
        )),
        Answered::Accepted => Err(Failed::protocol(Some(202), "a request answered 202 without a reply")),
        Answered::Gone => Err(status_failure(
            404,
            "the session is gone (404), even after starting again",
        )),
    }
}

fn record(env: &Env, slot: usize, latency: Duration, judged: &Judged) {
    let sample = match judged {
        Ok((outcome, status, rpc_error)) => Sample {
            latency,
            outcome: *outcome,
            status: Some(*status),
            rpc_error: *rpc_error,
            error: None,
        },
        Err(f) => Sample {
            latency,
            outcome: Outcome::Failed(f.kind),
            status: f.status,
            rpc_error: f.rpc_error,
            error: (!f.message.is_empty()).then_some(f.message.as_str()),
        },
    };
    env.recorder.record(slot, &sample);
}

/// One POST within the endpoint's timeout; a late answer never reuses the connection.
async fn exchange(
    env: &Env,
    conn: &mut Conn,
    url: &str,
    body: &str,
    st: &mut State,
    awaits: Awaits,
) -> Result<Answered, Failed> {
    match tokio::time::timeout(env.timeout, post(env, conn, url, body, st, awaits)).await {
        Ok(answered) => {
            if answered.is_err() && conn.mid_answer() {
                conn.discard();
            }
            answered
        }
        Err(_) => {
            conn.discard();
            Err(Failed {
                kind: FailureKind::Timeout,
                status: None,
                rpc_error: None,
                message: "timed out".into(),
            })
        }
    }
}

/// What a content type says the body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Json,
    Events,
    Other,
}

fn body_kind(content_type: Option<&[u8]>) -> Body {
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
    awaits: Awaits,
) -> Result<Answered, Failed> {
    let mut headers = [("accept", ACCEPT_BOTH), ("", ""), ("", "")];
    let mut n = 1;
    for (name, value) in [
        ("mcp-session-id", &st.session_id),
        ("mcp-protocol-version", &st.version),
    ] {
        if !value.is_empty() {
            headers[n] = (name, value.as_str());
            n += 1;
        }
    }
    let head = conn
        .open(&env.endpoint, "POST", url, &headers[..n], Some(body))
        .await
        .map_err(Failed::from_answer)?;
    check_session_id(conn, &head, st, matches!(awaits, Awaits::Initialize(_)))?;
    let status = head.status;
    match status {
        202 => return drain(conn, status).await.map(|()| Answered::Accepted),
        404 => return drain(conn, status).await.map(|()| Answered::Gone),
        s if !(200..300).contains(&s) => {
            drain(conn, status).await?;
            return Err(status_failure(s, ""));
        }
        _ => {}
    }
    let id = match awaits {
        Awaits::Nothing => return drain(conn, status).await.map(|()| Answered::Accepted),
        Awaits::Reply(id) | Awaits::Initialize(id) => id,
    };
    let want_version = matches!(awaits, Awaits::Initialize(_));
    match body_kind(head.content_type.as_ref().map(|r| conn.head_value(r))) {
        Body::Json => json_reply(conn, st, status, id, want_version).await,
        Body::Events => stream_reply(conn, st, status, id, want_version).await,
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
async fn drain(conn: &mut Conn, status: u16) -> Result<(), Failed> {
    while conn
        .next_data()
        .await
        .map_err(|(kind, message)| Failed {
            kind,
            status: Some(status),
            rpc_error: None,
            message,
        })?
        .is_some()
    {}
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
}

/// What one JSON-RPC message says, when it is the reply to `id`; keeps the version of an
/// `initialize` reply.
fn reply_to(bytes: &[u8], id: u64, version: Option<&mut String>) -> Result<Option<Reply>, String> {
    let (reply_id, reply) = jsonrpc::parse(bytes).map_err(|e| format!("a message that is not JSON-RPC: {e}"))?;
    if reply_id.and_then(|v| v.as_u64()) != Some(id) || reply == Reply::Neither {
        // A notification, or a request from the server: not the reply.
        return Ok(None);
    }
    if let Some(version) = version
        && let Ok(InitReply { result: Some(r) }) = serde_json::from_slice::<InitReply>(bytes)
        && let Some(v) = r.protocol_version
    {
        version.clear();
        version.push_str(v);
    }
    Ok(Some(reply))
}

async fn json_reply(
    conn: &mut Conn,
    st: &mut State,
    status: u16,
    id: u64,
    want_version: bool,
) -> Result<Answered, Failed> {
    st.reply.clear();
    loop {
        let data = conn.next_data().await.map_err(|(kind, message)| Failed {
            kind,
            status: Some(status),
            rpc_error: None,
            message,
        })?;
        let Some(data) = data else { break };
        if st.reply.len() + data.len() > MAX_EVENT {
            conn.discard();
            return Err(Failed::protocol(
                Some(status),
                format!("a reply larger than {} KiB", MAX_EVENT >> 10),
            ));
        }
        st.reply.extend_from_slice(data);
    }
    let version = want_version.then_some(&mut st.version);
    match reply_to(&st.reply, id, version) {
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
    want_version: bool,
) -> Result<Answered, Failed> {
    st.parser.reset();
    let State { parser, version, .. } = st;
    let mut version = want_version.then_some(version);
    let found = loop {
        let data = conn.next_data().await.map_err(|(kind, message)| Failed {
            kind,
            status: Some(status),
            rpc_error: None,
            message,
        })?;
        let Some(data) = data else {
            let message = if parser.pending() {
                "the stream ended inside an event"
            } else {
                "the stream ended before the reply"
            };
            return Err(Failed::protocol(Some(status), message));
        };
        let fed = parser.feed(data, |name, payload| {
            if name != b"message" {
                return None;
            }
            reply_to(payload.as_bytes(), id, version.as_deref_mut()).transpose()
        });
        match fed {
            Ok(None) => {}
            Ok(Some(Ok(reply))) => break reply,
            Ok(Some(Err(message))) | Err(message) => {
                conn.discard();
                return Err(Failed::protocol(Some(status), message));
            }
        }
    };
    // The server should end the stream after the reply; one that does not loses the connection.
    if tokio::time::timeout(DRAIN, drain(conn, status)).await.is_err() {
        conn.discard();
    }
    Ok(Answered::Reply(status, found))
}

/// Open the session's GET stream (timed in the `listen` series) and read it for the hold; answers
/// whether the stream was held, and how the session stands after it.
async fn listen(env: &Env, slot: usize, conn: &mut Conn, url: &str, st: &mut State, hold_for: DurRange) -> (bool, End) {
    let mut headers = [("accept", "text/event-stream"), ("", ""), ("", "")];
    let mut n = 1;
    for (name, value) in [
        ("mcp-session-id", &st.session_id),
        ("mcp-protocol-version", &st.version),
    ] {
        if !value.is_empty() {
            headers[n] = (name, value.as_str());
            n += 1;
        }
    }
    let sent = Instant::now();
    let opened = tokio::time::timeout(env.timeout, conn.open(&env.endpoint, "GET", url, &headers[..n], None)).await;
    let head = match opened {
        Err(_) => {
            conn.discard();
            let f = Failed {
                kind: FailureKind::Timeout,
                status: None,
                rpc_error: None,
                message: "no stream in time".into(),
            };
            record(env, slot, sent.elapsed(), &Err(f));
            return (false, End::Error);
        }
        Ok(Err(answer)) => {
            record(env, slot, sent.elapsed(), &Err(Failed::from_answer(answer)));
            return (false, End::Error);
        }
        Ok(Ok(head)) => head,
    };
    let kind = body_kind(head.content_type.as_ref().map(|r| conn.head_value(r)));
    let refused = match head.status {
        200 if kind == Body::Events => None,
        200 => Some(Failed::protocol(Some(200), "the GET stream is not an event stream")),
        404 => Some(status_failure(404, "the session is gone (404)")),
        405 => Some(status_failure(405, "the server offers no GET stream (405)")),
        s => Some(status_failure(s, "")),
    };
    if let Some(f) = refused {
        let end = match f.status {
            Some(404) => End::Server,
            Some(200) => End::Error,
            _ => End::Client,
        };
        record(env, slot, sent.elapsed(), &Err(f));
        if end == End::Error || tokio::time::timeout(DRAIN, drain(conn, head.status)).await.is_err() {
            conn.discard();
        }
        if end == End::Client {
            hold(env, hold_for).await;
        }
        return (false, end);
    }
    record(env, slot, sent.elapsed(), &Ok((Outcome::Ok, 200, None)));

    // Held: read (and parse) whatever the server sends until the hold ends.
    st.parser.reset();
    let hold_for = hold_for.sample(&mut fastrand::Rng::new());
    let mut stop = env.soft_stop.clone();
    let until = tokio::time::sleep(hold_for);
    tokio::pin!(until);
    loop {
        tokio::select! {
            biased;
            _ = &mut until => return (true, End::Client),
            _ = stop.wait_for(|s| *s) => return (true, End::Client),
            data = conn.next_data() => match data {
                Ok(Some(bytes)) => {
                    if st.parser.feed(bytes, |_, _| None::<()>).is_err() {
                        return (true, End::Error);
                    }
                }
                // The server ended the stream (or its connection) before the hold did.
                Ok(None) | Err(_) => return (false, End::Server),
            },
        }
    }
}

/// Keep the session for a sampled time, or until the load ends.
async fn hold(env: &Env, hold: DurRange) {
    let hold = hold.sample(&mut fastrand::Rng::new());
    let mut stop = env.soft_stop.clone();
    tokio::select! {
        _ = tokio::time::sleep(hold) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
}

/// `DELETE` the session: 2xx ends it; 404 (already gone) and 405 (the server does not let
/// clients end sessions) are expected answers, not failures.
async fn delete(env: &Env, conn: &mut Conn, url: &str, session_id: &str, version: &str) -> Judged {
    let headers = [("mcp-session-id", session_id), ("mcp-protocol-version", version)];
    let n = if session_id.is_empty() { 0 } else { 2 };
    let sent = tokio::time::timeout(env.timeout, async {
        let head = conn
            .open(&env.endpoint, "DELETE", url, &headers[..n], None)
            .await
            .map_err(Failed::from_answer)?;
        drain(conn, head.status).await?;
        Ok::<u16, Failed>(head.status)
    })
    .await;
    match sent {
        Err(_) => {
            conn.discard();
            Err(Failed {
                kind: FailureKind::Timeout,
                status: None,
                rpc_error: None,
                message: "timed out".into(),
            })
        }
        Ok(Err(f)) => Err(f),
        Ok(Ok(s)) if (200..300).contains(&s) => Ok((Outcome::Ok, s, None)),
        Ok(Ok(s @ (404 | 405))) => Ok((Outcome::Expected, s, None)),
        Ok(Ok(s)) => Err(status_failure(s, "")),
    }
}
