//! One Streamable HTTP session's flow on the user's own connection: start (`start.rs`), the requests
//! (each one `exchange`, a 404 starting a session-era session again once), the hold (on a stream
//! when listening), the end. Its buffers are kept in the user's scratch, so a warm session allocates
//! nothing per request: the request is rendered into the scratch body, the session id, protocol
//! version, envelope and `Mcp-Name` kept in kept strings.
//!
//! Every answer is classified, never trusted (`exchange.rs`); a failure other than a refused request
//! or a JSON-RPC error ends the session as "by an error".

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use protocol::Era;

use super::exchange::{
    Answered, Awaits, Body, Captured, DRAIN, Failed, body_kind, drain, exchange, headers, status_failure,
};
use super::start::start;
use super::{Mcp, McpRequest};
use crate::actions::conn::Conn;
use crate::actions::events::EventParser;
use crate::actions::jsonrpc::Reply;
use crate::actions::request::{Scratch, render};
use crate::actions::{CloseMode, Ended, Env, Slots};
use crate::data::FailureKind;
use crate::lang::{DurRange, Values};
use crate::record::{Outcome, Sample};

/// A reply buffer grown past this is given back before the hold and after the session: 4000 users each
/// keeping the largest `tools/list` they saw was most of the generator's heap in `mixed-4000`.
const KEEP_REPLY: usize = 4 << 10;

/// A session's buffers, kept in the user's scratch between sessions.
#[derive(Default)]
pub struct State {
    /// The era this session speaks, once started.
    pub(super) era: Era,
    pub(super) session_id: String,
    pub(super) version: String,
    /// Stateless era: the `_meta` every request carries, for `meta_of`'s version.
    pub(super) meta: String,
    pub(super) meta_of: String,
    /// Stateless era: the current request's `Mcp-Name`, encoded.
    pub(super) name: String,
    pub(super) parser: EventParser,
    /// A JSON reply's body.
    pub(super) reply: Vec<u8>,
    /// What the last stateless-era reply said of itself.
    pub(super) captured: Captured,
    /// `cache = true`: the answers this user may reuse (a request's hash, until when).
    cache: Vec<(u64, Instant)>,
    /// The second connection a listening session's `DELETE` goes on (its first holds the stream).
    side: Conn,
    next_id: u64,
}

impl State {
    fn trim(&mut self) {
        if self.reply.capacity() > KEEP_REPLY {
            self.reply = Vec::new();
        }
        self.parser.trim(KEEP_REPLY);
    }

    pub(super) fn next_id(&mut self) -> u64 {
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

    // 1. Start, timed as the action's own series; a session lost at once is started again, once.
    let g = &env.recorder.gauges.mcp;
    let started = start_again_once(a, env, slots.main, intended, conn, url, body, st).await;
    if let Err(f) = started {
        let kind = f.kind;
        record(env, conn, slots.main, intended.elapsed(), &Err(f));
        return if kind == FailureKind::Connect {
            Ended::Unreachable
        } else {
            Ended::Done(Outcome::Failed(kind))
        };
    }
    record(env, conn, slots.main, intended.elapsed(), &Ok((Outcome::Ok, 200, None)));
    g.opened.fetch_add(1, Ordering::Relaxed);
    g.open.fetch_add(1, Ordering::Relaxed);
    if st.era == Era::Stateless {
        g.stateless.fetch_add(1, Ordering::Relaxed);
    }

    // 2. The requests, each timed in its method's series.
    let mut end = End::Client;
    for r in &a.requests {
        let id = st.next_id();
        let at = render_request(r, id, body, st, values);
        let cached = a.cache.then(|| cache_key(r, body, at)).flatten();
        if let Some(key) = cached
            && st.cache.iter().any(|&(k, until)| k == key && until > Instant::now())
        {
            g.cache_hits.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let slot = slots.extra(r.series).expect("a series per method");
        let mut sent = Instant::now();
        let mut answered = exchange(env, conn, url, body, st, &r.method, Awaits::Reply(id)).await;
        let mut lost = None;
        if let Ok(Answered::Gone(status)) = answered {
            // The request failed as such; then, as the specification says, a new session, once.
            record(
                env,
                conn,
                slot,
                sent.elapsed(),
                &Err(Failed::session_not_found(status, "")),
            );
            let at = Instant::now();
            match ask_again(a, env, slots.main, at, conn, url, body, st, r, id).await {
                Ok((again, answer)) => (lost, sent, answered) = (Some(at), again, answer),
                Err(kind) => {
                    end = if kind == FailureKind::SessionNotFound {
                        End::Server
                    } else {
                        End::Error
                    };
                    break;
                }
            }
        }
        if st.era == Era::Stateless {
            answered = input_rounds(a, env, conn, url, body, at, st, &r.method, answered).await;
            remember(env, st, cached);
        }
        let judged = judge(answered, &a.expected_errors);
        record(env, conn, slot, sent.elapsed(), &judged);
        if let Some(lost) = lost.filter(|_| judged.is_ok()) {
            g.recovered.fetch_add(1, Ordering::Relaxed);
            g.recovery_ms
                .fetch_add(lost.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
        match judged {
            // (A stateless 404 is a JSON-RPC error, an unknown method: the session goes on.)
            Err(f) if f.kind == FailureKind::SessionNotFound => {
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
    st.trim();
    let mut listening = false;
    if end == End::Client {
        match a.listen_series().and_then(|i| slots.extra(i)) {
            Some(slot) => {
                let (held, end_of_hold) = listen(env, slot, conn, url, body, st, a).await;
                listening = held;
                end = end_of_hold;
            }
            None => hold(env, a.hold).await,
        }
    }

    // 4. The end.
    let counter = match end {
        End::Client => match a.close {
            // Nothing to delete: the client leaves, closing a stream it holds.
            CloseMode::Delete if st.era == Era::Stateless => {
                if listening {
                    conn.cut(false);
                }
                &g.closed_graceful
            }
            CloseMode::Delete => {
                let slot = a.delete_series().and_then(|i| slots.extra(i));
                end_with_delete(env, slot, conn, url, st, listening).await
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
    st.trim();
    Ended::Done(Outcome::Ok)
}

/// End the session with `DELETE` (on the second connection when the first holds its stream, which is
/// then closed); answers the counter its end goes to.
async fn end_with_delete<'g>(
    env: &'g Env,
    slot: Option<usize>,
    conn: &mut Conn,
    url: &str,
    st: &mut State,
    listening: bool,
) -> &'g AtomicU64 {
    let g = &env.recorder.gauges.mcp;
    let delete_conn = if listening { &mut st.side } else { &mut *conn };
    let sent = Instant::now();
    let deleted = delete(env, delete_conn, url, &st.session_id, &st.version).await;
    if let Some(slot) = slot {
        record(env, delete_conn, slot, sent.elapsed(), &deleted);
    }
    if listening {
        conn.cut(false);
    }
    match deleted {
        // The server offers no DELETE: the session is left, not deleted.
        Ok((_, 405, _)) => &g.closed_undeletable,
        Ok(_) => &g.closed_delete,
        Err(f) if f.kind == FailureKind::SessionNotFound => &g.server_closed,
        Err(_) => &g.errored,
    }
}

/// Start the session; one the server does not know at once (its first notification answered
/// "session not found": behind a balancer, another replica) is recorded as such and started again,
/// once, as the specification says a client must.
#[expect(clippy::too_many_arguments, reason = "the session's parts, borrowed apart")]
async fn start_again_once(
    a: &Mcp,
    env: &Env,
    slot: usize,
    intended: Instant,
    conn: &mut Conn,
    url: &str,
    body: &mut String,
    st: &mut State,
) -> Result<(), Failed> {
    let g = &env.recorder.gauges.mcp;
    let started = start(a.protocol, env, conn, url, body, st).await;
    let Err(f) = &started else { return started };
    if f.kind != FailureKind::SessionNotFound {
        return started;
    }
    let lost_start = Failed::session_not_found(f.status.unwrap_or(404), &f.message);
    record(env, conn, slot, intended.elapsed(), &Err(lost_start));
    let lost = Instant::now();
    g.reinitialized.fetch_add(1, Ordering::Relaxed);
    let started = start(a.protocol, env, conn, url, body, st).await;
    if started.is_ok() {
        g.recovered.fetch_add(1, Ordering::Relaxed);
        g.recovery_ms
            .fetch_add(lost.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    started
}

/// After request `r` was answered "session not found": a new session (its start timed from `lost`
/// in the session's own series), then `r` asked again. Answers when it was sent again and its
/// answer; or, when the new session did not start, the start's failure kind (recorded as the
/// session's, not as `r`'s).
#[expect(clippy::too_many_arguments, reason = "the session's parts, borrowed apart")]
async fn ask_again(
    a: &Mcp,
    env: &Env,
    start_slot: usize,
    lost: Instant,
    conn: &mut Conn,
    url: &str,
    body: &mut String,
    st: &mut State,
    r: &McpRequest,
    id: u64,
) -> Result<(Instant, Result<Answered, Failed>), FailureKind> {
    env.recorder.gauges.mcp.reinitialized.fetch_add(1, Ordering::Relaxed);
    let saved = std::mem::take(body);
    let started = start(a.protocol, env, conn, url, body, st).await;
    *body = saved;
    if let Err(f) = started {
        let kind = f.kind;
        record(env, conn, start_slot, lost.elapsed(), &Err(f));
        return Err(kind);
    }
    let sent = Instant::now();
    Ok((
        sent,
        exchange(env, conn, url, body, st, &r.method, Awaits::Reply(id)).await,
    ))
}

/// While a stateless request's answer asks for input (MRTR), retry it under a new id with the
/// responses (the scenario's `input_responses`, else `mrtr::default_response`) and the server's
/// `requestState`; each retry counted, at most `mrtr::MAX_ROUNDS`.
#[expect(clippy::too_many_arguments, reason = "the session's parts, borrowed apart")]
async fn input_rounds(
    a: &Mcp,
    env: &Env,
    conn: &mut Conn,
    url: &str,
    body: &mut String,
    at: usize,
    st: &mut State,
    method: &str,
    mut answered: Result<Answered, Failed>,
) -> Result<Answered, Failed> {
    use protocol::mrtr;
    let asks = |answered: &Result<Answered, Failed>, st: &State| {
        matches!(answered, Ok(Answered::Reply(_, Reply::Result))) && st.captured.hints.input_required
    };
    if !asks(&answered, st) {
        return answered;
    }
    let original = body.clone();
    let mut rounds = 0;
    while asks(&answered, st) {
        if rounds == mrtr::MAX_ROUNDS {
            return Err(Failed::protocol(
                Some(200),
                format!("still input_required after {} rounds", mrtr::MAX_ROUNDS),
            ));
        }
        rounds += 1;
        env.recorder.gauges.mcp.mrtr_rounds.fetch_add(1, Ordering::Relaxed);
        let mut members = String::from("\"inputResponses\":");
        let mut responses = serde_json::Map::new();
        for (key, request) in st.captured.input_requests.as_object().into_iter().flatten() {
            let given = a.input_responses.get(key).cloned();
            responses.insert(key.clone(), given.unwrap_or_else(|| mrtr::default_response(request)));
        }
        members.push_str(&serde_json::Value::Object(responses).to_string());
        if let Some(state) = &st.captured.request_state {
            let _ = write!(members, ",\"requestState\":{state}");
        }
        let id = st.next_id();
        retry_body(&original, at, id, &members, body);
        answered = exchange(env, conn, url, body, st, method, Awaits::Reply(id)).await;
    }
    answered
}

/// Request `original` (its params rendered at `at`) again under id `id`, `members` first in its params.
fn retry_body(original: &str, at: usize, id: u64, members: &str, body: &mut String) {
    let rest = original.find(",\"method\":").expect("rendered by render_request");
    body.clear();
    let _ = write!(body, r#"{{"jsonrpc":"2.0","id":{id}"#);
    let at = at - rest + body.len();
    body.push_str(&original[rest..]);
    body.insert(at + 1, ',');
    body.insert_str(at + 1, members);
}

/// A cacheable request's key: its method and rendered params (the envelope included).
fn cache_key(r: &McpRequest, body: &str, at: usize) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    if !protocol::result::cacheable(&r.method) || at == 0 {
        return None;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    r.method.hash(&mut h);
    body[at..].hash(&mut h);
    Some(h.finish())
}

/// The most answers a user keeps for reuse.
const CACHE_ENTRIES: usize = 64;

/// Count a stateless result's caching hints; with `cache = true`, keep its answer for `ttlMs`.
fn remember(env: &Env, st: &mut State, key: Option<u64>) {
    let hints = st.captured.hints;
    let Some(ttl) = hints.ttl_ms.filter(|_| !hints.input_required) else {
        return;
    };
    env.recorder.gauges.mcp.hinted(ttl, hints.private);
    let Some(key) = key.filter(|_| ttl > 0) else { return };
    let now = Instant::now();
    st.cache.retain(|&(k, until)| k != key && until > now);
    if st.cache.len() == CACHE_ENTRIES {
        st.cache.remove(0);
    }
    st.cache.push((key, now + Duration::from_millis(ttl)));
}

/// Render request `r` (id `id`) into `body`: in the stateless era with the envelope spliced into
/// its params, and its `Mcp-Name` kept in the session's `name`. Returns where its params begin in
/// the stateless era (0 in the session era).
fn render_request(
    r: &McpRequest,
    id: u64,
    body: &mut String,
    st: &mut State,
    values: &mut (impl Values + Send),
) -> usize {
    body.clear();
    let mut params_at = 0;
    let _ = write!(body, r#"{{"jsonrpc":"2.0","id":{id},"method":{}"#, r.method_json);
    st.name.clear();
    match (&r.params, st.era) {
        (Some(params), Era::Session) => {
            body.push_str(",\"params\":");
            params.render_into(body, values);
        }
        (None, Era::Session) => {}
        (params, Era::Stateless) => {
            body.push_str(",\"params\":");
            let at = body.len();
            match params {
                Some(params) => params.render_into(body, values),
                None => body.push_str("{}"),
            }
            if let Some(key) = r.name_param {
                named(&body[at..], key, &mut st.name);
            }
            splice_meta(body, at, &st.meta);
            params_at = at;
        }
    }
    body.push('}');
    params_at
}

/// Put `"_meta":META` first in the object rendered at `body[at..]`.
pub(super) fn splice_meta(body: &mut String, at: usize, meta: &str) {
    if !body[at..].starts_with('{') {
        return;
    }
    let empty = body[at + 1..].trim_start().starts_with('}');
    // Inserted back to front, each right after the opening brace.
    body.insert_str(at + 1, if empty { "" } else { "," });
    body.insert_str(at + 1, meta);
    body.insert_str(at + 1, "\"_meta\":");
}

/// The `Mcp-Name` value for the params rendered in `params`: its `key` member, encoded.
fn named(params: &str, key: &str, out: &mut String) {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow, default)]
        name: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow, default)]
        uri: Option<std::borrow::Cow<'a, str>>,
    }
    if let Ok(n) = serde_json::from_str::<Named>(params) {
        let value = if key == "uri" { n.uri } else { n.name };
        if let Some(v) = value {
            protocol::header::encode_into(&v, out);
        }
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
        Answered::Reply(status, Reply::Error(code)) => Err(Failed::json_rpc(status, code, String::new())),
        Answered::Reply(status, Reply::Neither) => Err(Failed::protocol(
            Some(status),
            "a reply with neither a result nor an error",
        )),
        Answered::Accepted => Err(Failed::protocol(Some(202), "a request answered 202 without a reply")),
        Answered::Gone(status) => Err(Failed::session_not_found(status, "even after starting again")),
    }
}

/// Record an exchange on `conn`: its outcome, and the replica that served its answer.
fn record(env: &Env, conn: &Conn, slot: usize, latency: Duration, judged: &Judged) {
    let sample = match judged {
        Ok((outcome, status, rpc_error)) => Sample {
            latency,
            outcome: *outcome,
            status: Some(*status),
            rpc_error: *rpc_error,
            error: None,
            bytes: None,
            served_by: conn.served_by(),
        },
        Err(f) => Sample {
            latency,
            outcome: Outcome::Failed(f.kind),
            status: f.status,
            rpc_error: f.rpc_error,
            error: (!f.message.is_empty()).then_some(f.message.as_str()),
            bytes: None,
            served_by: conn.served_by(),
        },
    };
    env.recorder.record(slot, &sample);
}

/// Open the session's stream — its `GET` stream, or in the stateless era a `subscriptions/listen`
/// request's — (timed in the `listen` series) and read it for the hold; answers whether the stream
/// was held, and how the session stands after it.
async fn listen(
    env: &Env,
    slot: usize,
    conn: &mut Conn,
    url: &str,
    body: &mut String,
    st: &mut State,
    a: &Mcp,
) -> (bool, End) {
    let hold_for = a.hold;
    let (method, request) = match st.era {
        Era::Session => ("GET", None),
        Era::Stateless => {
            body.clear();
            let id = st.next_id();
            let _ = write!(
                body,
                r#"{{"jsonrpc":"2.0","id":{id},"method":"subscriptions/listen","params":{}}}"#,
                a.listen_params
            );
            splice_meta(body, body.len() - a.listen_params.len() - 1, &st.meta);
            st.name.clear();
            ("POST", Some(body.as_str()))
        }
    };
    let (headers, n) = headers("application/json, text/event-stream", st, "subscriptions/listen");
    let sent = Instant::now();
    let opened = tokio::time::timeout(
        env.timeout,
        conn.open(&env.endpoint, method, url, &headers[..n], request),
    )
    .await;
    let head = match opened {
        Err(_) => {
            conn.discard();
            record(
                env,
                conn,
                slot,
                sent.elapsed(),
                &Err(Failed::timeout("no stream in time")),
            );
            return (false, End::Error);
        }
        Ok(Err(answer)) => {
            record(env, conn, slot, sent.elapsed(), &Err(Failed::from_answer(answer)));
            return (false, End::Error);
        }
        Ok(Ok(head)) => head,
    };
    let kind = body_kind(head.content_type.as_ref().map(|r| conn.head_value(r)));
    let refused = match head.status {
        200 if kind == Body::Events => None,
        200 => Some(Failed::protocol(
            Some(200),
            "the stream answered is not an event stream",
        )),
        404 if st.era == Era::Session => Some(Failed::session_not_found(404, "")),
        // The specification lets a server offer no GET stream (405), and a stateless server may
        // not know `subscriptions/listen` (404): counted as such, not a failure.
        status @ (405 | 404) => {
            record(env, conn, slot, sent.elapsed(), &Ok((Outcome::Expected, status, None)));
            env.recorder
                .gauges
                .mcp
                .listen_not_offered
                .fetch_add(1, Ordering::Relaxed);
            if tokio::time::timeout(DRAIN, drain(conn, status)).await.is_err() {
                conn.discard();
            }
            hold(env, hold_for).await;
            return (false, End::Client);
        }
        s => Some(status_failure(s, "")),
    };
    if let Some(f) = refused {
        let end = match f.status {
            _ if f.kind == FailureKind::SessionNotFound => End::Server,
            Some(200) => End::Error,
            _ => End::Client,
        };
        record(env, conn, slot, sent.elapsed(), &Err(f));
        if end == End::Error || tokio::time::timeout(DRAIN, drain(conn, head.status)).await.is_err() {
            conn.discard();
        }
        if end == End::Client {
            hold(env, hold_for).await;
        }
        return (false, end);
    }
    record(env, conn, slot, sent.elapsed(), &Ok((Outcome::Ok, 200, None)));

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
                    let messages = &env.recorder.gauges.mcp.stream_messages;
                    let fed = st.parser.feed(bytes, |name, data| {
                        if name == b"message" && !data.trim().is_empty() {
                            messages.fetch_add(1, Ordering::Relaxed);
                        }
                        None::<()>
                    });
                    if fed.is_err() {
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

/// `DELETE` the session: 2xx ends it; 405 (the server does not let clients end sessions) is an
/// expected answer; 404 is `session_not_found`.
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
            Err(Failed::timeout("timed out"))
        }
        Ok(Err(f)) => Err(f),
        Ok(Ok(s)) if (200..300).contains(&s) => Ok((Outcome::Ok, s, None)),
        // The server does not know the session it is asked to end (expired, or, behind a balancer,
        // held by another replica that keeps it).
        Ok(Ok(404)) if n > 0 => Err(Failed::session_not_found(404, "at DELETE")),
        Ok(Ok(s @ (404 | 405))) => Ok((Outcome::Expected, s, None)),
        Ok(Ok(s)) => Err(status_failure(s, "")),
    }
}
