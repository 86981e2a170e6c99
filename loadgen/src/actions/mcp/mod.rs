//! `kind = "mcp"`: one MCP client session over Streamable HTTP, on the user's own connection, in
//! the era `protocol` picks (`auto` by default: `server/discover`, and `initialize` when the server
//! does not speak the stateless era, as the official SDK's client does):
//! - the start: in the session era `initialize` (its `Mcp-Session-Id` kept) and
//!   `notifications/initialized`; in the stateless era (2026-07-28) `server/discover`, after which
//!   every request carries the `_meta` envelope and the `MCP-Protocol-Version`, `Mcp-Method` and
//!   `Mcp-Name` headers;
//! - the scenario's `requests`, each reply read as JSON or as an event stream, whichever the server
//!   chose; in the stateless era a result asking for input (`input_required`, MRTR) is retried with
//!   the answers (`input_responses`, else those of a client that accepts), and with `cache = true` a
//!   list or read answered within its `ttlMs` is not asked again;
//! - with `listen = true`, a stream held for `hold`: the session's `GET` stream, or in the stateless
//!   era a `subscriptions/listen` request's stream;
//! - the end: `close = "delete"` (a `DELETE`, as a client that is done sends; the stateless era has
//!   no session to delete, so its client just leaves, closing in order) or `"abrupt"` (the
//!   connection dropped, with a reset when `rst = true`). A session the server says is gone (404) is
//!   started again once, and counted.
//!
//! Series: the action's own is the session's start; then one per request method, `listen` (the
//! stream's head) and `delete`.

mod exchange;
mod session;
mod start;

use std::collections::BTreeSet;

use tokio::time::Instant;

use super::http::url_template;
use super::request::Scratch;
use super::{ActionSpec, At, CloseMode, Ended, Env, Kind, Slots};
use crate::lang::{DurRange, Problem, Template, Values, Var, json_template, problem};
use protocol::{Era, Version};
pub use session::State;

/// The protocol a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `server/discover` first; `initialize` when the server does not speak the stateless era.
    Auto,
    Pinned(Version),
}

impl Protocol {
    fn parse(text: &str) -> Result<Protocol, String> {
        if text == "auto" {
            return Ok(Protocol::Auto);
        }
        Version::parse(text).map(Protocol::Pinned).ok_or_else(|| {
            let versions: Vec<&str> = Version::ALL.iter().map(|v| v.as_str()).collect();
            format!("is \"auto\" or one of {}, not {text:?}", versions.join(", "))
        })
    }

    /// The era, when the scenario fixed it.
    pub fn era(self) -> Option<Era> {
        match self {
            Protocol::Auto => None,
            Protocol::Pinned(v) => Some(v.era()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Mcp {
    pub endpoint: Template,
    pub protocol: Protocol,
    pub requests: Vec<McpRequest>,
    /// The distinct request methods, in the order of their series.
    pub methods: Vec<String>,
    pub listen: bool,
    pub hold: DurRange,
    pub close: CloseMode,
    pub rst: bool,
    pub expected_errors: Vec<i64>,
    /// Stateless era: the answers to input requests, by key (`input_responses`).
    pub input_responses: serde_json::Map<String, serde_json::Value>,
    /// Stateless era: reuse answers for their `ttlMs`.
    pub cache: bool,
    /// Stateless era: a listen's params, the notifications it opts in to (`listen_to`).
    pub listen_params: String,
}

/// What `listen_to` may name, and the flag each sets in a `subscriptions/listen`.
const LISTEN_TO: [(&str, &str); 3] = [
    ("tools", "toolsListChanged"),
    ("prompts", "promptsListChanged"),
    ("resources", "resourcesListChanged"),
];

#[derive(Debug, Clone)]
pub struct McpRequest {
    pub method: String,
    /// The method as a JSON string, quotes included.
    pub method_json: String,
    /// The parameter its `Mcp-Name` header mirrors in the stateless era (`name`, or `uri`).
    pub name_param: Option<&'static str>,
    pub params: Option<Template>,
    /// Its series: an index into `methods`.
    pub series: usize,
}

fn default_endpoint(a: &ActionSpec) -> &'static str {
    if a.server == Some(true) {
        "/servers/{server_id}/mcp"
    } else {
        "/mcp"
    }
}

impl Mcp {
    /// The extra series index of the `GET` stream's head, when listening.
    fn listen_series(&self) -> Option<usize> {
        self.listen.then_some(self.methods.len())
    }

    /// The extra series index of the `DELETE`, when the session ends with one (never in the
    /// stateless era, which has no session to delete).
    fn delete_series(&self) -> Option<usize> {
        (self.close == CloseMode::Delete && self.protocol.era() != Some(Era::Stateless))
            .then(|| self.methods.len() + usize::from(self.listen))
    }
}

impl Kind for Mcp {
    const FIELDS: &'static [&'static str] = &[
        "endpoint",
        "protocol",
        "server",
        "requests",
        "listen",
        "hold",
        "close",
        "rst",
        "expected_errors",
        "input_responses",
        "cache",
        "listen_to",
    ];

    fn plan(a: &ActionSpec, at: At, problems: &mut Vec<Problem>) -> Option<Self> {
        if a.endpoint.is_some() && a.server.is_some() {
            problems.push(problem(
                at.field("server"),
                "give either endpoint or server = true, not both",
            ));
        }
        let text = a.endpoint.as_deref().unwrap_or(default_endpoint(a));
        let endpoint = url_template(at, "endpoint", text, problems);
        let mut methods: Vec<String> = Vec::new();
        let mut requests = Vec::new();
        for (j, r) in a.requests.iter().flatten().enumerate() {
            if r.method == "initialize" {
                problems.push(problem(
                    at.field(&format!("requests[{j}].method")),
                    "the session sends initialize itself; list the requests after it",
                ));
            }
            if r.method == "subscriptions/listen" {
                problems.push(problem(
                    at.field(&format!("requests[{j}].method")),
                    "is a stream, not a request: set listen = true",
                ));
            }
            let params = r.params.as_ref().and_then(|p| {
                json_template(p)
                    .map_err(|e| problems.push(problem(at.field(&format!("requests[{j}].params")), e)))
                    .ok()
            });
            let series = match methods.iter().position(|m| *m == r.method) {
                Some(i) => i,
                None => {
                    methods.push(r.method.clone());
                    methods.len() - 1
                }
            };
            requests.push(McpRequest {
                method: r.method.clone(),
                name_param: protocol::header::name_param(&r.method),
                method_json: serde_json::Value::from(r.method.as_str()).to_string(),
                params,
                series,
            });
        }
        let close = a.close.unwrap_or_default();
        if close == CloseMode::Graceful {
            problems.push(problem(
                at.field("close"),
                "is \"delete\" (the session ended with DELETE) or \"abrupt\" for kind = \"mcp\"",
            ));
        }
        if a.rst == Some(true) && close != CloseMode::Abrupt {
            problems.push(problem(at.field("rst"), "applies only to close = \"abrupt\""));
        }
        let protocol = match a.protocol.as_deref().map(Protocol::parse) {
            None => Protocol::Auto,
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                problems.push(problem(at.field("protocol"), e));
                Protocol::Auto
            }
        };
        let cache = a.cache.unwrap_or(false);
        if protocol.era() == Some(Era::Session) && (cache || a.input_responses.is_some()) {
            let field = if cache { "cache" } else { "input_responses" };
            problems.push(problem(
                at.field(field),
                "belongs to the stateless era (2026-07-28), and protocol pins the session era",
            ));
        }
        let mut flags = serde_json::Map::new();
        match &a.listen_to {
            None => flags.extend(LISTEN_TO.iter().map(|(_, f)| ((*f).to_owned(), true.into()))),
            Some(kinds) => {
                for (i, kind) in kinds.iter().enumerate() {
                    match LISTEN_TO.iter().find(|(k, _)| k == kind) {
                        Some((_, f)) => {
                            flags.insert((*f).to_owned(), true.into());
                        }
                        None => problems.push(problem(
                            at.field(&format!("listen_to[{i}]")),
                            format!("is \"tools\", \"prompts\" or \"resources\", not {kind:?}"),
                        )),
                    }
                }
            }
        }
        let listen_params = serde_json::json!({ "notifications": flags }).to_string();
        let input_responses = a.input_responses.clone().unwrap_or_default();
        for (key, answer) in &input_responses {
            if !answer.is_object() {
                problems.push(problem(
                    at.field(&format!("input_responses.{key}")),
                    "is a table: the result answering that input request",
                ));
            }
        }
        Some(Mcp {
            endpoint: endpoint?,
            protocol,
            requests,
            methods,
            listen: a.listen.unwrap_or(false),
            hold: a.hold.unwrap_or_default(),
            close,
            rst: a.rst.unwrap_or(false),
            expected_errors: a.expected_errors.clone().unwrap_or_default(),
            input_responses,
            cache,
            listen_params,
        })
    }

    fn default_name(a: &ActionSpec) -> String {
        format!("mcp {}", a.endpoint.as_deref().unwrap_or(default_endpoint(a)))
    }

    fn vars(&self, vars: &mut BTreeSet<Var>) {
        vars.extend(self.endpoint.vars());
        for r in &self.requests {
            if let Some(p) = &r.params {
                vars.extend(p.vars());
            }
        }
    }

    fn series(&self) -> Vec<String> {
        let mut out = self.methods.clone();
        if self.listen {
            out.push("listen".to_owned());
        }
        if self.delete_series().is_some() {
            out.push("delete".to_owned());
        }
        out
    }

    async fn run(
        &self,
        env: &Env,
        slots: Slots,
        values: &mut (impl Values + Send),
        scratch: &mut Scratch,
        intended: Instant,
    ) -> Ended {
        // Boxed, as the SSE session is: its state would otherwise size every user's task.
        Box::pin(session::run(self, env, slots, values, scratch, intended)).await
    }
}
