//! `kind = "sse"`: open a stream with eventsource-client (reconnect off), wait for the endpoint event,
//! send JSON-RPC requests through the session's message endpoint and time the replies that arrive on
//! the stream, hold, then close — abruptly (the connection dropped at once, with a TCP reset when
//! `rst = true`) or gracefully (the stream released and the connection closed in order).

mod transport;

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use eventsource_client::{Client as _, ClientBuilder, ReconnectOptions, SSE};
use futures_core::Stream;
use futures_util::StreamExt as _;
use tokio::time::Instant;

use super::http::url_template;
use super::jsonrpc::{self, Reply};
use super::request::{Scratch, render};
use super::{ActionSpec, At, CloseMode, Ended, Env, Kind, Slots, error_chain};
use crate::data::FailureKind;
use crate::lang::{DurRange, Problem, Template, Values, Var, json_template, problem};
use crate::record::{Outcome, Sample, StreamGauges};
use transport::{ConnectFailed, OwnedConnection};

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
        Box::pin(session(self, env, slots, values, &mut scratch.url, intended)).await
    }
}

type EventStream<'a> = Pin<Box<dyn Stream<Item = eventsource_client::Result<SSE>> + Send + Sync + 'a>>;

/// Why a session ended before its endpoint event: the kind, the status when there was one, the text.
type Refused = (FailureKind, Option<u16>, String);

/// Open, talk, hold, close. Records the connect sample and one sample per reply.
async fn session(
    a: &Sse,
    env: &Env,
    slots: Slots,
    values: &mut (impl Values + Send),
    url: &mut String,
    intended: Instant,
) -> Ended {
    render(url, &env.base, &a.path, values);
    let transport = OwnedConnection::new(a.rst, env.timeout.min(Duration::from_secs(10)));
    let client = match client(env, url, &transport) {
        Ok(c) => c,
        Err(msg) => return fail(env, slots.main, intended, (FailureKind::Protocol, None, msg)),
    };
    let mut stream = client.stream();

    // 1. The endpoint event.
    let endpoint = match tokio::time::timeout(env.timeout, endpoint_event(&mut stream)).await {
        Err(_) => {
            let timed_out = (FailureKind::Timeout, None, "no endpoint event in time".into());
            return fail(env, slots.main, intended, timed_out);
        }
        Ok(Err(refused)) => {
            transport.cut();
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
        },
    );
    let gauges = &env.recorder.gauges.sse;
    gauges.open.fetch_add(1, Ordering::Relaxed);
    gauges.opened.fetch_add(1, Ordering::Relaxed);

    // 2. Requests through the session, replies timed on the stream.
    let server_closed = match slots.extra(0) {
        Some(reply_slot) => talk(a, env, reply_slot, &endpoint, &mut stream, values).await,
        None => false,
    };

    // 3. Hold (the end of the load shortens it), 4. close.
    if !server_closed {
        hold(env, a.hold).await;
    }
    let counter = close_counter(gauges, server_closed, a.close, a.rst);
    match a.close {
        CloseMode::Abrupt => {
            transport.cut();
            drop(stream);
        }
        CloseMode::Graceful | CloseMode::Delete => {
            // Release the stream; hyper closes the connection in order.
            drop(stream);
            drop(client);
        }
    }
    counter.fetch_add(1, Ordering::Relaxed);
    gauges.open.fetch_sub(1, Ordering::Relaxed);
    Ended::Done(Outcome::Ok)
}

/// An eventsource client for `url` over `transport`, reconnection off, with the bearer token.
fn client(env: &Env, url: &str, transport: &OwnedConnection) -> Result<impl eventsource_client::Client, String> {
    let mut builder = ClientBuilder::for_url(url)
        .map_err(|e| e.to_string())?
        .reconnect(ReconnectOptions::reconnect(false).build());
    if let Some(token) = &env.token {
        builder = builder
            .header("Authorization", &format!("Bearer {token}"))
            .map_err(|e| e.to_string())?;
    }
    Ok(builder.build_with_transport(transport.clone()))
}

/// Send each request through the session and time its reply on the stream; answers whether the
/// server ended the stream on the way.
async fn talk(
    a: &Sse,
    env: &Env,
    reply_slot: usize,
    endpoint: &str,
    stream: &mut EventStream<'_>,
    values: &mut (impl Values + Send),
) -> bool {
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
        let mut server_closed = false;
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
                Ok(Err(msg)) => {
                    server_closed = true;
                    (Outcome::Failed(FailureKind::Protocol), Some(202), None, Some(msg))
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
            },
        );
        if server_closed {
            return true;
        }
    }
    false
}

/// Keep the stream open for a sampled time, or until the load ends.
async fn hold(env: &Env, hold: DurRange) {
    let hold = hold.sample(&mut fastrand::Rng::new());
    let mut stop = env.soft_stop.clone();
    tokio::select! {
        _ = tokio::time::sleep(hold) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
}

/// The counter a session's end goes to.
fn close_counter(g: &StreamGauges, server_closed: bool, close: CloseMode, rst: bool) -> &AtomicU64 {
    if server_closed {
        return &g.server_closed;
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

/// Wait for `event: endpoint`; answer its URL, or the failure.
async fn endpoint_event(stream: &mut EventStream<'_>) -> Result<String, Refused> {
    loop {
        match stream.next().await {
            None => {
                return Err((
                    FailureKind::Protocol,
                    None,
                    "stream ended before the endpoint event".into(),
                ));
            }
            Some(Err(eventsource_client::Error::UnexpectedResponse(resp, _))) => {
                let status = resp.status();
                return Err((FailureKind::Status, Some(status), format!("HTTP {status}")));
            }
            Some(Err(eventsource_client::Error::Transport(e))) => {
                let kind = if ConnectFailed::is(&e) {
                    FailureKind::Connect
                } else {
                    FailureKind::Protocol
                };
                return Err((kind, None, error_chain(&e)));
            }
            Some(Err(e)) => return Err((FailureKind::Protocol, None, e.to_string())),
            Some(Ok(SSE::Event(ev))) if ev.event_type == "endpoint" => return Ok(ev.data),
            Some(Ok(_)) => {}
        }
    }
}

/// Wait for the `message` whose id is `id`; answer its JSON-RPC error code, if any.
async fn reply_event(stream: &mut EventStream<'_>, id: u64) -> Result<Option<i64>, String> {
    loop {
        match stream.next().await {
            None => return Err("the server ended the stream".into()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(SSE::Event(ev))) if ev.event_type == "message" => {
                let (reply_id, reply) = jsonrpc::parse(ev.data.as_bytes()).map_err(|e| format!("bad message: {e}"))?;
                let reply_id = reply_id.ok_or("bad message: missing field `id`")?;
                if reply_id == id {
                    return Ok(match reply {
                        Reply::Error(code) => Some(code),
                        Reply::Result | Reply::Neither => None,
                    });
                }
            }
            Some(Ok(SSE::Event(ev))) if ev.event_type == "shutdown" => return Err("the server is shutting down".into()),
            Some(Ok(_)) => {}
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
        },
    );
    if kind == FailureKind::Connect {
        Ended::Unreachable
    } else {
        Ended::Done(Outcome::Failed(kind))
    }
}
