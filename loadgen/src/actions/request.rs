//! One request and its answer on the user's own connection, shared by the kinds that are a single
//! exchange (`http`, `rpc`): send, read the whole answer, classify, record.

use tokio::time::Instant;

use super::conn::{Answer, Conn};
use super::http::OkStatuses;
use super::jsonrpc::{self, Reply};
use super::{Ended, Env};
use crate::data::FailureKind;
use crate::lang::{Template, Values};
use crate::record::{Outcome, Sample};

/// Per-user scratch space, so rendering does not allocate per request once warmed up, and the
/// user's own connection.
#[derive(Default)]
pub struct Scratch {
    /// The request target: path and query (an SSE action renders its whole URL here).
    pub url: String,
    pub body: String,
    pub error: String,
    pub conn: Conn,
    /// An SSE session's event parser.
    pub events: super::events::EventParser,
    /// An MCP session's buffers.
    pub mcp: super::mcp::State,
}

/// `base` followed by the rendered template, into `out`.
pub fn render(out: &mut String, base: &str, template: &Template, values: &mut impl Values) {
    out.clear();
    out.push_str(base);
    template.render_into(out, values);
}

/// How an answer is judged.
pub struct Judge<'a> {
    pub ok: &'a OkStatuses,
    /// Statuses that are expected outcomes, not failures.
    pub expected: &'a [u16],
    /// For a JSON-RPC exchange: the error codes that are expected outcomes. `None`: plain HTTP.
    pub rpc_expected_errors: Option<&'a [i64]>,
}

/// Send what `scratch` holds (`url`, and `body` when `has_body`) with `headers`, judge and record the
/// answer.
#[allow(clippy::too_many_arguments)]
pub async fn exchange(
    env: &Env,
    slot: usize,
    method: &str,
    headers: &[(String, String)],
    has_body: bool,
    judge: &Judge<'_>,
    scratch: &mut Scratch,
    intended: Instant,
) -> Ended {
    let body = has_body.then_some(scratch.body.as_str());
    let is_rpc = judge.rpc_expected_errors.is_some();
    let answer = scratch
        .conn
        .send(&env.endpoint, method, &scratch.url, headers, body, is_rpc)
        .await;
    let mut sample = Sample {
        latency: intended.elapsed(),
        outcome: Outcome::Ok,
        status: None,
        rpc_error: None,
        error: None,
        bytes: Some(scratch.conn.take_bytes_read()),
        served_by: None,
    };
    match answer {
        Answer::Failed(kind, message) => {
            scratch.error = message;
            sample.outcome = Outcome::Failed(kind);
            env.recorder.record(
                slot,
                &Sample {
                    error: Some(&scratch.error),
                    ..sample
                },
            );
            if kind == FailureKind::Connect {
                Ended::Unreachable
            } else {
                Ended::Done(sample.outcome)
            }
        }
        Answer::Answered(status) => {
            sample.status = Some(status);
            sample.served_by = scratch.conn.served_by();
            (sample.outcome, sample.rpc_error) = match judge_status(judge.ok, judge.expected, status) {
                Outcome::Ok => judge_reply(judge, scratch),
                judged => (judged, None),
            };
            env.recorder.record(slot, &sample);
            Ended::Done(sample.outcome)
        }
    }
}

/// An answer judged by its status alone: an expected status, a failed one, or ok so far.
pub fn judge_status(ok: &OkStatuses, expected: &[u16], status: u16) -> Outcome {
    if expected.contains(&status) {
        Outcome::Expected
    } else if !ok.contains(status) {
        Outcome::Failed(FailureKind::Status)
    } else {
        Outcome::Ok
    }
}

/// An answer whose status was ok, judged by its JSON-RPC reply when it is one (and the error code
/// the reply carried).
fn judge_reply(judge: &Judge<'_>, scratch: &Scratch) -> (Outcome, Option<i64>) {
    let Some(expected_errors) = judge.rpc_expected_errors else {
        return (Outcome::Ok, None);
    };
    match jsonrpc::parse(scratch.conn.body()) {
        Ok((_, Reply::Error(code))) if expected_errors.contains(&code) => (Outcome::Expected, Some(code)),
        Ok((_, Reply::Error(code))) => (Outcome::Failed(FailureKind::JsonRpc), Some(code)),
        Ok((_, Reply::Result)) => (Outcome::Ok, None),
        _ => (Outcome::Failed(FailureKind::Protocol), None),
    }
}
