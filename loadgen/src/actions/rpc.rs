//! `kind = "rpc"`: one JSON-RPC request to the target's `/rpc`, judged by its status (always 200 when
//! answered) and then by its body — a result is ok, an error is a failure unless its code is in
//! `expected_errors`.

use std::collections::BTreeSet;

use tokio::time::Instant;

use super::http::OkStatuses;
use super::request::{self, Judge, Scratch};
use super::{ActionSpec, At, Ended, Env, Kind, Slots};
use crate::lang::{Problem, Template, Values, Var, json_template, problem};

/// A JSON-RPC answer is 200 (its errors are in the body).
static RPC_OK: OkStatuses = OkStatuses::Exactly(200);

#[derive(Debug, Clone)]
pub struct Rpc {
    /// The request body: `{"jsonrpc":"2.0","id":1,"method":…,"params":…}`.
    pub body: Template,
    pub expected: Vec<u16>,
    pub expected_errors: Vec<i64>,
}

impl Kind for Rpc {
    const FIELDS: &'static [&'static str] = &["method", "params", "expected", "expected_errors"];

    fn plan(a: &ActionSpec, at: At, problems: &mut Vec<Problem>) -> Option<Self> {
        let Some(method) = &a.method else {
            problems.push(problem(
                at.field("method"),
                "is required for kind = \"rpc\" (e.g. \"tools/list\")",
            ));
            return None;
        };
        let mut request = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method});
        if let Some(p) = &a.params {
            request["params"] = p.clone();
        }
        let body = json_template(&request)
            .map_err(|e| problems.push(problem(at.field("params"), e)))
            .ok()?;
        Some(Rpc {
            body,
            expected: a.expected.clone().unwrap_or_default(),
            expected_errors: a.expected_errors.clone().unwrap_or_default(),
        })
    }

    fn default_name(a: &ActionSpec) -> String {
        format!("rpc {}", a.method.as_deref().unwrap_or(""))
    }

    fn vars(&self, vars: &mut BTreeSet<Var>) {
        vars.extend(self.body.vars());
    }

    async fn run(
        &self,
        env: &Env,
        slots: Slots,
        values: &mut (impl Values + Send),
        scratch: &mut Scratch,
        intended: Instant,
    ) -> Ended {
        scratch.url.clear();
        scratch.url.push_str(&env.rpc_path);
        scratch.body.clear();
        self.body.render_into(&mut scratch.body, values);
        let judge = Judge {
            ok: &RPC_OK,
            expected: &self.expected,
            rpc_expected_errors: Some(&self.expected_errors),
        };
        request::exchange(env, slots.main, "POST", &[], true, &judge, scratch, intended).await
    }
}
