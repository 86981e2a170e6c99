//! `kind = "sse"`: open a stream on the user's own connection, wait for the endpoint event, send
//! JSON-RPC requests through the session's message endpoint and time the replies that arrive on the
//! stream, hold (reading what the server sends), then close — abruptly (the connection dropped at
//! once, with a TCP reset when `rst = true`) or gracefully (closed in order).
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
use super::jsonrpc::{self, Reply};
use super::request::{Scratch, render};
use super::{ActionSpec, At, CloseMode, Ended, Env, Kind, Slots, error_chain};
use crate::data::FailureKind;
use crate::lang::{DurRange, Problem, Template, Values, Var, json_template, problem};
use crate::record::{Outcome, Sample, StreamGauges};

#[derive(Debug, Clone)]
pub struct Sse {
    pub path: Template,
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
    const FIELDS: &'static [&'static str] = &["path", "server", "requests", "hold", "close", "rst"];

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
        if self.requests.is_empty() {
            Vec::new()
        } else {
            vec!["reply".to_owned()]
        }
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
    Broken(String),
}

impl StreamEnd {
    fn message(&self) -> String {
        match self {
            StreamEnd::Ended(why) => (*why).to_owned(),
            StreamEnd::Broken(msg) => msg.clone(),
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
            StreamEnd::Broken(_) => SessionEnd::Error,
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
                    if let Some(found) = self.events.feed(bytes, &mut pick).map_err(StreamEnd::Broken)? {
                        return Ok(found);
                    }
                }
                Ok(None) => return Err(StreamEnd::Ended("the server ended the stream")),
                Err((_, msg)) => return Err(StreamEnd::Broken(msg)),
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
        },
    );
    let gauges = &env.recorder.gauges.sse;
    gauges.open.fetch_add(1, Ordering::Relaxed);
    gauges.opened.fetch_add(1, Ordering::Relaxed);

    // 2. Requests through the session, replies timed on the stream.
    let mut end = match slots.extra(0) {
        Some(reply_slot) => talk(a, env, reply_slot, &endpoint, &mut stream, values).await,
        None => SessionEnd::Client,
    };

    // 3. Hold (the end of the load shortens it), 4. close.
    stream.events.trim(KEEP_EVENT);
    if end == SessionEnd::Client {
        let held = Instant::now();
        if let Some(stopped) = hold(env, a.hold, &mut stream).await {
            end = SessionEnd::from(&stopped);
            // A stream that broke while held is a failure of the session, with its reason.
            if let StreamEnd::Broken(msg) = &stopped {
                env.recorder.record(
                    slots.main,
                    &Sample {
                        latency: held.elapsed(),
                        outcome: Outcome::Failed(FailureKind::Protocol),
                        status: Some(200),
                        rpc_error: None,
                        error: Some(msg),
                        bytes: None,
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
        .map_err(|end| {
            let msg = match end {
                StreamEnd::Ended(_) => "stream ended before the endpoint event".to_owned(),
                StreamEnd::Broken(msg) => msg,
            };
            (FailureKind::Protocol, None, msg)
        })?;
    absolute(&env.base, &endpoint).ok_or_else(|| {
        (
            FailureKind::Protocol,
            None,
            format!("the endpoint event is not a URL: {endpoint:?}"),
        )
    })
}

/// The endpoint as a URL to post to: absolute as sent, or a path on the target's origin.
fn absolute(base: &str, endpoint: &str) -> Option<String> {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        return Some(endpoint.to_owned());
    }
    let path = endpoint.strip_prefix('/')?;
    let rest = base.split_once("://")?.1;
    let origin_len = base.len() - rest.len() + rest.find('/').unwrap_or(rest.len());
    Some(format!("{}/{path}", &base[..origin_len]))
}

/// Send each request through the session and time its reply on the stream; answers how the session
/// stands: still the client's, or ended on the way.
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
        let mut body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":{}"#,
            serde_json::Value::from(request.method.as_str())
        );
        if let Some(params) = &request.params {
            body.push_str(",\"params\":");
            params.render_into(&mut body, values);
        }
        body.push('}');
        let sent = Instant::now();
        let post = env
            .http
            .post(endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let mut end = SessionEnd::Client;
        let (outcome, status, rpc_error, error) = match post {
            Err(e) => (Outcome::Failed(classify_reqwest(&e)), None, None, Some(error_chain(&e))),
            Ok(resp) if resp.status().as_u16() != 202 => (
                Outcome::Failed(FailureKind::Status),
                Some(resp.status().as_u16()),
                None,
                None,
            ),
            Ok(_) => match tokio::time::timeout(env.timeout, reply_event(stream, id)).await {
                Err(_) => (
                    Outcome::Failed(FailureKind::Timeout),
                    Some(202),
                    None,
                    Some("no reply on the stream in time".into()),
                ),
                Ok(Err(stopped)) => {
                    end = SessionEnd::from(&stopped);
                    (
                        Outcome::Failed(FailureKind::Protocol),
                        Some(202),
                        None,
                        Some(stopped.message()),
                    )
                }
                Ok(Ok(Some(code))) => (Outcome::Failed(FailureKind::JsonRpc), Some(202), Some(code), None),
                Ok(Ok(None)) => (Outcome::Ok, Some(202), None, None),
            },
        };
        env.recorder.record(
            reply_slot,
            &Sample {
                latency: sent.elapsed(),
                outcome,
                status,
                rpc_error,
                error: error.as_deref(),
                bytes: None,
            },
        );
        if end != SessionEnd::Client {
            return end;
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

/// Wait for the `message` whose id is `id`; answer its JSON-RPC error code, if any.
async fn reply_event(stream: &mut Stream<'_>, id: u64) -> Result<Option<i64>, StreamEnd> {
    stream
        .next_event(|name, data| match name {
            b"message" => match jsonrpc::parse(data.as_bytes()) {
                Err(e) => Some(Err(StreamEnd::Broken(format!("bad message: {e}")))),
                Ok((None, _)) => Some(Err(StreamEnd::Broken("bad message: missing field `id`".to_owned()))),
                Ok((Some(reply_id), reply)) if reply_id == id => Some(Ok(match reply {
                    Reply::Error(code) => Some(code),
                    Reply::Result | Reply::Neither => None,
                })),
                Ok(_) => None,
            },
            b"shutdown" => Some(Err(StreamEnd::Ended("the server is shutting down"))),
            _ => None,
        })
        .await?
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
    fn an_endpoint_is_made_absolute_on_the_target_origin() {
        let abs = |b, e| absolute(b, e);
        assert_eq!(
            abs("http://h:1/prefix", "/message?session_id=x").as_deref(),
            Some("http://h:1/message?session_id=x")
        );
        assert_eq!(abs("http://h:1", "/m").as_deref(), Some("http://h:1/m"));
        assert_eq!(abs("http://h:1", "http://o:2/m").as_deref(), Some("http://o:2/m"));
        assert_eq!(abs("http://h:1", "m"), None);
    }
}
