//! `kind = "sse"`: open a stream on the user's own connection, wait for the endpoint event, start the
//! MCP session (`initialize`, then `notifications/initialized`; by default when there are requests,
//! `handshake` says otherwise), send JSON-RPC requests through the session's message endpoint and
//! time the replies that arrive on the stream, hold (reading what the server sends), then close —
//! abruptly (the connection dropped at once, with a TCP reset when `rst = true`) or gracefully
//! (closed in order).
//!
//! On the stream, a message with a method is the server's, never a reply: a notification is counted
//! and skipped; a request is answered as a client must (`ping` with an empty result, anything else
//! with −32601). A request whose method starts with `notifications/` is sent without an id and not
//! waited for.
//!
//! The stream is read by the request loop's own HTTP/1.1 client (`conn/stream.rs`) and parsed by
//! `events.rs`, as Streamable HTTP's `GET` stream is: one 4 KiB read buffer a stream, where a hyper
//! connection of its own costs about 30 KiB (dispatch channel, read buffer, connection state, two
//! tasks; docs/bench.md has the measured figures per stream).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use super::conn::{Answer, Conn};
use super::events::EventParser;
use super::http::url_template;
use super::jsonrpc::{self, Message, Reply};
use super::request::{Scratch, render};
use super::{ActionSpec, At, CloseMode, Ended, Env, Kind, Slots, error_chain};
use crate::data::FailureKind;
use crate::lang::{DurRange, Problem, Template, Values, Var, json_template, problem};
use crate::record::{Outcome, Sample, StreamGauges};

#[derive(Debug, Clone)]
pub struct Sse {
    pub path: Template,
    /// `initialize` and `notifications/initialized` before the requests.
    pub handshake: bool,
    pub requests: Vec<SseRequest>,
    pub hold: DurRange,
    pub close: CloseMode,
    pub rst: bool,
}

#[derive(Debug, Clone)]
pub struct SseRequest {
    pub method: String,
    /// The whole JSON-RPC request except its id, which the session numbers itself.
    pub params: Option<Template>,
}

fn default_path(a: &ActionSpec) -> &'static str {
    if a.server == Some(true) {
        "/servers/{server_id}/sse"
    } else {
        "/sse"
    }
}

impl Kind for Sse {
    const FIELDS: &'static [&'static str] = &["path", "server", "handshake", "requests", "hold", "close", "rst"];

    fn plan(a: &ActionSpec, at: At, problems: &mut Vec<Problem>) -> Option<Self> {
        let path = url_template(at, "path", a.path.as_deref().unwrap_or(default_path(a)), problems);
        let mut requests = Vec::new();
        for (j, r) in a.requests.iter().flatten().enumerate() {
            let params = r.params.as_ref().and_then(|p| {
                json_template(p)
                    .map_err(|e| problems.push(problem(at.field(&format!("requests[{j}].params")), e)))
                    .ok()
            });
            requests.push(SseRequest {
                method: r.method.clone(),
                params,
            });
        }
        if a.close == Some(CloseMode::Delete) {
            problems.push(problem(
                at.field("close"),
                "\"delete\" applies only to kind = \"mcp\" (an SSE session ends when its stream does)",
            ));
        }
        if a.rst == Some(true) && a.close == Some(CloseMode::Graceful) {
            problems.push(problem(at.field("rst"), "applies only to close = \"abrupt\""));
        }
        Some(Sse {
            path: path?,
            // A session that sends requests starts as MCP says; one that only holds a stream need not.
            handshake: a.handshake.unwrap_or(!requests.is_empty()),
            requests,
            hold: a.hold.unwrap_or_default(),
            close: a.close.unwrap_or_default(),
            rst: a.rst.unwrap_or(false),
        })
    }

    fn default_name(a: &ActionSpec) -> String {
        format!("sse {}", a.path.as_deref().unwrap_or(default_path(a)))
    }

    fn vars(&self, vars: &mut BTreeSet<Var>) {
        vars.extend(self.path.vars());
        for r in &self.requests {
            if let Some(p) = &r.params {
                vars.extend(p.vars());
            }
        }
    }

    fn series(&self) -> Vec<String> {
        let mut series = Vec::new();
        if !self.requests.is_empty() {
            series.push("reply".to_owned());
        }
        if self.handshake {
            series.push("initialize".to_owned());
        }
        series
    }

    async fn run(
        &self,
        env: &Env,
        slots: Slots,
        values: &mut (impl Values + Send),
        scratch: &mut Scratch,
        intended: Instant,
    ) -> Ended {
        // Boxed: a session's state is large, and unboxed it would size every user's task, HTTP-only
        // ones included.
        Box::pin(session(self, env, slots, values, scratch, intended)).await
    }
}

/// Parser buffers grown past this by a large reply are given back before the hold.
const KEEP_EVENT: usize = 4 << 10;

/// Why a session ended before its endpoint event: the kind, the status when there was one, the text.
type Refused = (FailureKind, Option<u16>, String);

/// How a stream stopped before the client ended it: the server ended it (closed it, or said it is
/// shutting down), or it broke (unreadable framing, an event over the parser's bound, a bad message).
#[derive(Debug)]
enum StreamEnd {
    Ended(&'static str),
    /// Broken: how (`protocol`, or `too_large` for an event past the parser's cap) and why.
    Broken(FailureKind, String),
}

impl StreamEnd {
    fn message(&self) -> String {
        match self {
            StreamEnd::Ended(why) => (*why).to_owned(),
            StreamEnd::Broken(_, msg) => msg.clone(),
        }
    }

    /// The failure a message cut off by this end counts as.
    fn kind(&self) -> FailureKind {
        match self {
            StreamEnd::Ended(_) => FailureKind::Protocol,
            StreamEnd::Broken(kind, _) => *kind,
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionEnd {
    Client,
    Server,
    Error,
}

impl From<&StreamEnd> for SessionEnd {
    fn from(end: &StreamEnd) -> SessionEnd {
        match end {
            StreamEnd::Ended(_) => SessionEnd::Server,
            StreamEnd::Broken(..) => SessionEnd::Error,
        }
    }
}

/// The session's stream: the connection it is read from and the parser of its events.
struct Stream<'a> {
    conn: &'a mut Conn,
    events: &'a mut EventParser,
}

impl Stream<'_> {
    /// Read until `pick` answers `Some` for an event; `Err` when the stream ends or breaks first.
    async fn next_event<T>(&mut self, mut pick: impl FnMut(&[u8], &str) -> Option<T>) -> Result<T, StreamEnd> {
        loop {
            match self.conn.next_data().await {
                Ok(Some(bytes)) => {
                    if let Some(found) = self
                        .events
                        .feed(bytes, &mut pick)
                        .map_err(|e| StreamEnd::Broken(e.kind(), e.to_string()))?
                    {
                        return Ok(found);
                    }
                }
                Ok(None) => return Err(StreamEnd::Ended("the server ended the stream")),
                Err((kind, msg)) => return Err(StreamEnd::Broken(kind, msg)),
            }
        }
    }
}

/// Open, talk, hold, close. Records the connect sample and one sample per reply.
async fn session(
    a: &Sse,
    env: &Env,
    slots: Slots,
    values: &mut (impl Values + Send),
    scratch: &mut Scratch,
    intended: Instant,
) -> Ended {
    let Scratch { url, conn, events, .. } = scratch;
    render(url, &env.base_path, &a.path, values);
    events.reset();
    let mut stream = Stream { conn, events };

    // 1. The stream and its endpoint event.
    let opened = tokio::time::timeout(env.timeout, open(env, &mut stream, url)).await;
    let endpoint = match opened {
        Err(_) => {
            stream.conn.discard();
            let timed_out = (FailureKind::Timeout, None, "no endpoint event in time".into());
            return fail(env, slots.main, intended, timed_out);
        }
        Ok(Err(refused)) => {
            stream.conn.discard();
            return fail(env, slots.main, intended, refused);
        }
        Ok(Ok(endpoint)) => endpoint,
    };
    env.recorder.record(
        slots.main,
        &Sample {
            latency: intended.elapsed(),
            outcome: Outcome::Ok,
            status: Some(200),
            rpc_error: None,
            error: None,
            bytes: None,
            served_by: stream.conn.served_by(),
        },
    );
    let gauges = &env.recorder.gauges.sse;
    gauges.open.fetch_add(1, Ordering::Relaxed);
    gauges.opened.fetch_add(1, Ordering::Relaxed);

    // 2. The handshake, then requests through the session, replies timed on the stream.
    let mut end = SessionEnd::Client;
    let init_slot = if a.requests.is_empty() {
        slots.extra(0)
    } else {
        slots.extra(1)
    };
    if let Some(slot) = init_slot.filter(|_| a.handshake) {
        end = handshake(env, slot, &endpoint, &mut stream).await;
    }
    if end == SessionEnd::Client
        && let Some(reply_slot) = slots.extra(0).filter(|_| !a.requests.is_empty())
    {
        end = talk(a, env, reply_slot, &endpoint, &mut stream, values).await;
    }

    // 3. Hold (the end of the load shortens it), 4. close.
    stream.events.trim(KEEP_EVENT);
    if end == SessionEnd::Client {
        let held = Instant::now();
        if let Some(stopped) = hold(env, a.hold, &mut stream).await {
            end = SessionEnd::from(&stopped);
            // A stream that broke while held is a failure of the session, with its reason.
            if let StreamEnd::Broken(kind, msg) = &stopped {
                env.recorder.record(
                    slots.main,
                    &Sample {
                        latency: held.elapsed(),
                        outcome: Outcome::Failed(*kind),
                        status: Some(200),
                        rpc_error: None,
                        error: Some(msg),
                        bytes: None,
                        served_by: None,
                    },
                );
            }
        }
    }
    let counter = close_counter(gauges, end, a.close, a.rst);
    // Either way the connection goes: the stream never ends by itself. Abrupt with `rst` resets it.
    stream.conn.cut(a.close == CloseMode::Abrupt && a.rst);
    counter.fetch_add(1, Ordering::Relaxed);
    gauges.open.fetch_sub(1, Ordering::Relaxed);
    Ended::Done(Outcome::Ok)
}

/// `GET` the stream and wait for `event: endpoint`; answer its URL (made absolute), or the failure.
async fn open(env: &Env, stream: &mut Stream<'_>, url: &str) -> Result<String, Refused> {
    let headers = [("accept", "text/event-stream"), ("cache-control", "no-cache")];
    let head = match stream.conn.open(&env.endpoint, "GET", url, &headers, None).await {
        Ok(head) => head,
        Err(Answer::Failed(kind, msg)) => return Err((kind, None, msg)),
        Err(Answer::Answered(status)) => return Err((FailureKind::Status, Some(status), format!("HTTP {status}"))),
    };
    if head.status != 200 {
        let status = head.status;
        return Err((FailureKind::Status, Some(status), format!("HTTP {status}")));
    }
    let endpoint = stream
        .next_event(|name, data| (name == b"endpoint").then(|| data.to_owned()))
        .await
        .map_err(|end| match end {
            StreamEnd::Ended(_) => (
                FailureKind::Protocol,
                None,
                "stream ended before the endpoint event".to_owned(),
            ),
            StreamEnd::Broken(kind, msg) => (kind, None, msg),
        })?;
    absolute(&env.base, &endpoint).ok_or_else(|| {
        (
            FailureKind::Protocol,
            None,
            format!("the endpoint event is not a URL on the target's origin: {endpoint:?}"),
        )
    })
}

/// The endpoint as a URL to post to: absolute as sent, or a path on the target's origin. An absolute
/// one on another origin is refused: the messages (and the target's token) go to the target only.
fn absolute(base: &str, endpoint: &str) -> Option<String> {
    let base = reqwest::Url::parse(base).ok()?;
    let url = base.join(endpoint.trim()).ok()?;
    (url.origin() == base.origin()).then(|| url.into())
}

/// What one message sent through the session came to.
struct Exchanged {
    outcome: Outcome,
    status: Option<u16>,
    rpc_error: Option<i64>,
    error: Option<String>,
    end: SessionEnd,
    /// The replica that took the message.
    served_by: Option<reqwest::header::HeaderValue>,
}

impl Exchanged {
    fn failed(kind: FailureKind, status: Option<u16>, error: String) -> Exchanged {
        Exchanged {
            outcome: Outcome::Failed(kind),
            status,
            rpc_error: None,
            error: Some(error),
            end: SessionEnd::Client,
            served_by: None,
        }
    }

    fn record(&self, env: &Env, slot: usize, latency: std::time::Duration) {
        env.recorder.record(
            slot,
            &Sample {
                latency,
                outcome: self.outcome,
                status: self.status,
                rpc_error: self.rpc_error,
                error: self.error.as_deref(),
                bytes: None,
                served_by: self.served_by.as_ref().map(|v| v.as_bytes()),
            },
        );
    }
}

/// POST `body` to the session's endpoint; with `awaits`, wait on the stream for the reply with that
/// id (answering what the server asks meanwhile).
async fn exchange(env: &Env, endpoint: &str, stream: &mut Stream<'_>, body: String, awaits: Option<u64>) -> Exchanged {
    let post = post(env, endpoint, body).await;
    let (accepted, served_by) = match post {
        Err(e) => return Exchanged::failed(classify_reqwest(&e), None, error_chain(&e)),
        // The session's endpoint does not know it (behind a balancer: another replica): its stream
        // lives on, but the session cannot be talked to.
        Ok((404, served_by)) => {
            let mut lost = Exchanged::failed(FailureKind::SessionNotFound, Some(404), String::new());
            lost.error = None;
            lost.end = SessionEnd::Server;
            lost.served_by = served_by;
            return lost;
        }
        Ok((status, served_by)) if status != 202 => {
            let mut failed = Exchanged::failed(FailureKind::Status, Some(status), String::new());
            failed.error = None;
            failed.served_by = served_by;
            return failed;
        }
        Ok(taken) => taken,
    };
    let mut done = replied(env, endpoint, stream, accepted, awaits).await;
    done.served_by = served_by;
    done
}

/// What a message the server took came to: at once for a notification, else its reply on the stream.
async fn replied(env: &Env, endpoint: &str, stream: &mut Stream<'_>, accepted: u16, awaits: Option<u64>) -> Exchanged {
    let Some(id) = awaits else {
        return Exchanged {
            outcome: Outcome::Ok,
            status: Some(accepted),
            rpc_error: None,
            error: None,
            end: SessionEnd::Client,
            served_by: None,
        };
    };
    match tokio::time::timeout(env.timeout, reply_event(env, endpoint, stream, id)).await {
        Err(_) => Exchanged::failed(FailureKind::Timeout, Some(202), "no reply on the stream in time".into()),
        Ok(Err(stopped)) => {
            let mut failed = Exchanged::failed(stopped.kind(), Some(202), stopped.message());
            failed.end = SessionEnd::from(&stopped);
            failed
        }
        Ok(Ok(Some(code))) => Exchanged {
            outcome: Outcome::Failed(FailureKind::JsonRpc),
            status: Some(202),
            rpc_error: Some(code),
            error: None,
            end: SessionEnd::Client,
            served_by: None,
        },
        Ok(Ok(None)) => Exchanged {
            outcome: Outcome::Ok,
            status: Some(202),
            rpc_error: None,
            error: None,
            end: SessionEnd::Client,
            served_by: None,
        },
    }
}

/// POST a message; its status, and the replica that took it when the target names one.
async fn post(
    env: &Env,
    endpoint: &str,
    body: String,
) -> Result<(u16, Option<reqwest::header::HeaderValue>), reqwest::Error> {
    let resp = env
        .http
        .post(endpoint)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await?;
    let served_by = (env.endpoint.served_by.as_deref()).and_then(|name| resp.headers().get(name).cloned());
    Ok((resp.status().as_u16(), served_by))
}

/// `initialize` (id 0) and its reply, then `notifications/initialized`; timed together in the
/// `initialize` series.
async fn handshake(env: &Env, slot: usize, endpoint: &str, stream: &mut Stream<'_>) -> SessionEnd {
    let sent = Instant::now();
    let init = format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"2024-11-05","capabilities":{{}},"clientInfo":{{"name":"stampede","version":"{}"}}}}}}"#,
        env!("CARGO_PKG_VERSION")
    );
    let mut done = exchange(env, endpoint, stream, init, Some(0)).await;
    if done.outcome == Outcome::Ok {
        let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned();
        done = exchange(env, endpoint, stream, note, None).await;
    }
    done.record(env, slot, sent.elapsed());
    match done.outcome {
        Outcome::Ok => SessionEnd::Client,
        // A session that did not start goes no further.
        _ if done.end == SessionEnd::Client => SessionEnd::Error,
        _ => done.end,
    }
}

/// Send each request through the session and time its reply on the stream (a notification is only
/// posted); answers how the session stands: still the client's, or ended on the way.
async fn talk(
    a: &Sse,
    env: &Env,
    reply_slot: usize,
    endpoint: &str,
    stream: &mut Stream<'_>,
    values: &mut (impl Values + Send),
) -> SessionEnd {
    for (n, request) in a.requests.iter().enumerate() {
        let id = n as u64 + 1;
        let notification = request.method.starts_with("notifications/");
        let mut body = String::from(r#"{"jsonrpc":"2.0","#);
        if !notification {
            body.push_str(&format!(r#""id":{id},"#));
        }
        body.push_str(&format!(
            r#""method":{}"#,
            serde_json::Value::from(request.method.as_str())
        ));
        if let Some(params) = &request.params {
            body.push_str(",\"params\":");
            params.render_into(&mut body, values);
        }
        body.push('}');
        let sent = Instant::now();
        let done = exchange(env, endpoint, stream, body, (!notification).then_some(id)).await;
        done.record(env, reply_slot, sent.elapsed());
        if done.end != SessionEnd::Client {
            return done.end;
        }
    }
    SessionEnd::Client
}

/// Keep the stream open for a sampled time, or until the load ends, reading (and parsing) what the
/// server sends; answers how the stream stopped if it did first.
async fn hold(env: &Env, hold: DurRange, stream: &mut Stream<'_>) -> Option<StreamEnd> {
    let hold = hold.sample(&mut fastrand::Rng::new());
    let mut stop = env.soft_stop.clone();
    tokio::select! {
        _ = tokio::time::sleep(hold) => None,
        _ = stop.wait_for(|s| *s) => None,
        // Nothing is ever picked: this ends only with the stream.
        end = stream.next_event(|_, _| None::<()>) => end.err(),
    }
}

/// The counter a session's end goes to.
fn close_counter(g: &StreamGauges, end: SessionEnd, close: CloseMode, rst: bool) -> &AtomicU64 {
    match end {
        SessionEnd::Server => return &g.server_closed,
        SessionEnd::Error => return &g.errored,
        SessionEnd::Client => {}
    }
    match (close, rst) {
        (CloseMode::Abrupt, true) => &g.closed_rst,
        (CloseMode::Abrupt, false) => &g.closed_abrupt,
        // `delete` is refused for SSE when planning.
        (CloseMode::Graceful | CloseMode::Delete, _) => &g.closed_graceful,
    }
}

/// The failure kind of a reqwest error, by type.
fn classify_reqwest(e: &reqwest::Error) -> FailureKind {
    if e.is_timeout() {
        FailureKind::Timeout
    } else if e.is_connect() {
        FailureKind::Connect
    } else {
        FailureKind::Protocol
    }
}

/// What the stream said while a reply was awaited.
enum Seen {
    /// The reply: its JSON-RPC error code, if any.
    Reply(Option<i64>),
    /// A request from the server, to answer.
    Request(serde_json::Value, bool),
}

/// Wait for the response whose id is `id`; answer its JSON-RPC error code, if any. Notifications are
/// counted and skipped; the server's requests answered (`ping`: an empty result; others: −32601).
async fn reply_event(env: &Env, endpoint: &str, stream: &mut Stream<'_>, id: u64) -> Result<Option<i64>, StreamEnd> {
    let messages = &env.recorder.gauges.sse.stream_messages;
    loop {
        let seen = stream
            .next_event(|name, data| match name {
                b"message" => match jsonrpc::message(data.as_bytes()) {
                    Err(e) => Some(Err(StreamEnd::Broken(
                        FailureKind::Protocol,
                        format!("bad message: {e}"),
                    ))),
                    Ok(Message::Response {
                        id: Some(reply_id),
                        reply,
                    }) if reply_id == id => Some(Ok(Seen::Reply(match reply {
                        Reply::Error(code) => Some(code),
                        Reply::Result | Reply::Neither => None,
                    }))),
                    Ok(Message::Request { id, method }) => {
                        messages.fetch_add(1, Ordering::Relaxed);
                        Some(Ok(Seen::Request(id, method == "ping")))
                    }
                    Ok(Message::Notification) => {
                        messages.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                    Ok(Message::Response { .. }) => None,
                },
                b"shutdown" => Some(Err(StreamEnd::Ended("the server is shutting down"))),
                _ => None,
            })
            .await??;
        match seen {
            Seen::Reply(code) => return Ok(code),
            Seen::Request(request_id, ping) => {
                let answer = if ping {
                    serde_json::json!({"jsonrpc": "2.0", "id": request_id, "result": {}})
                } else {
                    serde_json::json!({"jsonrpc": "2.0", "id": request_id,
                        "error": {"code": -32601, "message": "Method not found"}})
                };
                // The answer's fate is the server's business; the reply is still awaited.
                let _ = post(env, endpoint, answer.to_string()).await;
            }
        }
    }
}

fn fail(env: &Env, slot: usize, intended: Instant, (kind, status, msg): Refused) -> Ended {
    env.recorder.record(
        slot,
        &Sample {
            latency: intended.elapsed(),
            outcome: Outcome::Failed(kind),
            status,
            rpc_error: None,
            error: Some(&msg),
            bytes: None,
            served_by: None,
        },
    );
    if kind == FailureKind::Connect {
        Ended::Unreachable
    } else {
        Ended::Done(Outcome::Failed(kind))
    }
}

#[cfg(test)]
mod tests {
    use super::absolute;

    #[test]
    fn an_endpoint_is_made_absolute_on_the_target_origin_and_no_other() {
        let abs = |b, e| absolute(b, e);
        assert_eq!(
            abs("http://h:1/prefix", "/message?session_id=x").as_deref(),
            Some("http://h:1/message?session_id=x")
        );
        assert_eq!(abs("http://h:1", "/m").as_deref(), Some("http://h:1/m"));
        assert_eq!(abs("http://h:1", "http://h:1/m").as_deref(), Some("http://h:1/m"));
        // Another port, host or scheme would receive the messages and the target's token.
        assert_eq!(abs("http://h:1", "http://h:2/m"), None);
        assert_eq!(abs("http://h:1", "http://o:1/m"), None);
        assert_eq!(abs("http://h:1", "https://h:1/m"), None);
        assert_eq!(abs("http://h:1", "//o:1/m"), None);
    }
}
