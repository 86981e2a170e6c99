//! One HTTP or JSON-RPC action: render, send, read the whole answer, classify, record.

use std::time::Duration;

use hyper::Method;
use serde::Deserialize;
use tokio::time::Instant;

use super::Ctx;
use super::conn::{Answer, Conn};
use crate::data::FailureKind;
use crate::record::{Outcome, Sample};
use crate::scenario::{ActionPlan, OkStatuses, Template};
use crate::setup::PoolValues;

/// Per-user scratch space, so rendering does not allocate per request once warmed up, and the
/// user's own connection.
#[derive(Default)]
pub struct Scratch {
    /// The request target: path and query (an SSE action renders its whole URL here).
    pub url: String,
    pub body: String,
    pub error: String,
    pub conn: Conn,
}

/// A JSON-RPC answer is 200 (its errors are in the body).
static RPC_OK: OkStatuses = OkStatuses::Exactly(200);

/// What the engine needs to know about an action's end besides the sample it recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Done(Outcome),
    /// The target could not be reached: the caller backs off.
    Unreachable,
}

pub fn render(out: &mut String, base: &str, template: &Template, values: &mut PoolValues<'_>) {
    out.clear();
    out.push_str(base);
    template.render_into(out, values);
}

/// The failure kind of a transport error.
pub fn classify_error(e: &reqwest::Error) -> FailureKind {
    if e.is_timeout() {
        FailureKind::Timeout
    } else if e.is_connect() {
        FailureKind::Connect
    } else {
        FailureKind::Protocol
    }
}

#[derive(Deserialize)]
struct RpcAnswer {
    #[serde(default)]
    error: Option<RpcErrorObject>,
    #[serde(default)]
    result: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct RpcErrorObject {
    code: i64,
}

/// Run an http or rpc action; `intended` is when it should have started (open model) or started.
pub async fn http_or_rpc(
    ctx: &Ctx,
    slot: usize,
    plan: &ActionPlan,
    values: &mut PoolValues<'_>,
    scratch: &mut Scratch,
    intended: Instant,
) -> Ended {
    let (method, body, ok, expected, expected_errors, is_rpc): (_, _, &OkStatuses, &[u16], &[i64], bool) = match plan {
        ActionPlan::Http {
            method,
            path,
            body,
            ok,
            expected,
        } => {
            render(&mut scratch.url, &ctx.base_path, path, values);
            let has_body = match body {
                Some(body) => {
                    scratch.body.clear();
                    body.render_into(&mut scratch.body, values);
                    true
                }
                None => false,
            };
            (method, has_body, ok, expected.as_slice(), &[][..], false)
        }
        ActionPlan::Rpc {
            body,
            expected,
            expected_errors,
        } => {
            scratch.url.clear();
            scratch.url.push_str(&ctx.rpc_path);
            scratch.body.clear();
            body.render_into(&mut scratch.body, values);
            (
                &Method::POST,
                true,
                &RPC_OK,
                expected.as_slice(),
                expected_errors.as_slice(),
                true,
            )
        }
        ActionPlan::Sse { .. } => unreachable!("SSE actions run in engine::sse"),
    };

    let body = body.then_some(scratch.body.as_str());
    let answer = scratch
        .conn
        .send(&ctx.endpoint, method.as_str(), &scratch.url, body, is_rpc)
        .await;
    let latency = intended.elapsed();
    let mut sample = Sample {
        latency,
        outcome: Outcome::Ok,
        status: None,
        rpc_error: None,
        error: None,
    };
    let ended = match answer {
        Answer::Failed(kind, message) => {
            scratch.error = message;
            sample.outcome = Outcome::Failed(kind);
            ctx.recorder.record(
                slot,
                &Sample {
                    error: Some(&scratch.error),
                    ..sample
                },
            );
            return if kind == FailureKind::Connect {
                Ended::Unreachable
            } else {
                Ended::Done(sample.outcome)
            };
        }
        Answer::Answered(status) => {
            sample.status = Some(status);
            sample.outcome = if expected.contains(&status) {
                Outcome::Expected
            } else if !ok.contains(status) {
                Outcome::Failed(FailureKind::Status)
            } else if is_rpc {
                match serde_json::from_slice::<RpcAnswer>(scratch.conn.body()) {
                    Ok(RpcAnswer { error: Some(e), .. }) => {
                        sample.rpc_error = Some(e.code);
                        if expected_errors.contains(&e.code) {
                            Outcome::Expected
                        } else {
                            Outcome::Failed(FailureKind::JsonRpc)
                        }
                    }
                    Ok(RpcAnswer { result: Some(_), .. }) => Outcome::Ok,
                    _ => Outcome::Failed(FailureKind::Protocol),
                }
            } else {
                Outcome::Ok
            };
            Ended::Done(sample.outcome)
        }
    };
    ctx.recorder.record(slot, &sample);
    ended
}

/// The error with its causes, as one line ("error sending request: connection refused").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = s.source();
    }
    out
}

/// Exponential backoff after connect failures: 100 ms doubling to 5 s, reset by a success.
#[derive(Debug, Default)]
pub struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    pub fn fail(&mut self) -> Duration {
        let d = self.next.unwrap_or(Duration::from_millis(100));
        self.next = Some((d * 2).min(Duration::from_secs(5)));
        d
    }

    pub fn succeed(&mut self) {
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut b = Backoff::default();
        let steps: Vec<u128> = (0..8).map(|_| b.fail().as_millis()).collect();
        assert_eq!(steps, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.succeed();
        assert_eq!(b.fail(), Duration::from_millis(100));
    }
}
