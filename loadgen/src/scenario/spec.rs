//! A scenario file as written: the serde types of its TOML, kept (after overrides) in the results so
//! a run says exactly what it ran. Unknown fields are errors everywhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::actions::{ActionKind, ActionSpec, CloseMode, SseRequestSpec};
use crate::lang::{Dur, DurRange};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Defaults to the file's stem.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub target: TargetSpec,
    #[serde(default)]
    pub setup: SetupSpec,
    pub load: LoadSpec,
    pub actions: Vec<ActionSpec>,
    #[serde(default)]
    pub observe: ObserveSpec,
    /// A built-in upstream MCP server for the target to federate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamSpec>,
    /// Threshold expressions by scope (`all` or an action name); evaluated by the gate.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub thresholds: BTreeMap<String, Vec<String>>,
}

impl ScenarioSpec {
    /// The scenario as results files keep it: every URL's password starred (a spawned PostgreSQL's,
    /// a target's, an observer's, one in the spawned gateway's environment).
    pub fn redacted(&self) -> ScenarioSpec {
        let mut spec = self.clone();
        let star = |url: &mut Option<String>| {
            if let Some(u) = url {
                *u = crate::observe::postgres::redact(u);
            }
        };
        star(&mut spec.target.url);
        star(&mut spec.target.database_url);
        for value in spec.target.env.values_mut() {
            *value = crate::observe::postgres::redact(value);
        }
        star(&mut spec.observe.metrics);
        star(&mut spec.observe.postgres);
        star(&mut spec.observe.pgbouncer);
        if let Some(upstream) = &mut spec.upstream {
            star(&mut upstream.url);
        }
        spec
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpawnKind {
    /// The reference gateway, as a child process, on embedded SQLite in a temporary directory
    /// (or `database_url`).
    Gateway,
}

/// A proxy in front of spawned gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyKind {
    /// Debian's nginx, with a config written for the run (keep-alive upstreams, buffering off).
    Nginx,
}

/// How the proxy spreads requests over the replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// Each request to the next replica: no stickiness (the replicas must find each other's sessions).
    #[default]
    RoundRobin,
    /// By the request's `Mcp-Session-Id` (nginx's `hash $http_mcp_session_id consistent`): affinity
    /// at the proxy.
    SessionHash,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayProfile {
    #[default]
    Fixed,
    Legacy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// Base URL of an existing gateway (`http://host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn: Option<SpawnKind>,
    /// Profile of a spawned gateway.
    #[serde(default)]
    pub profile: GatewayProfile,
    /// Extra environment of a spawned gateway (e.g. `SSE_KEEPALIVE_INTERVAL = "5"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Database of a spawned gateway; default: SQLite in a temporary directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Spawned gateways on the one database (more than one needs PostgreSQL and a proxy); their
    /// sessions find each other over the session bus.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub replicas: u32,
    /// A proxy started in front of the spawned gateways, which the load goes through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyKind>,
    /// How the proxy spreads requests: `round-robin` (default) or `session-hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_balance: Option<Balance>,
    /// A response header naming the replica that served it (the reference gateway's `x-served-by`):
    /// the results count answers per replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_by_header: Option<String>,
    /// A bearer token as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The name of an environment variable holding the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// The name of an environment variable holding the HS256 secret to mint a token with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_secret_env: Option<String>,
    /// Per-request timeout.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// An https:// target: trust the CA certificates of this PEM file instead of the platform's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cacert: Option<String>,
    /// An https:// target: take any certificate (a self-signed test server); encrypted, not verified.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

fn default_timeout() -> Dur {
    Dur::secs(30)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetupMode {
    /// Create entities through the API before the load starts.
    #[default]
    Seed,
    /// Use the entities the target already has, found by listing.
    Discover,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupSpec {
    #[serde(default)]
    pub mode: SetupMode,
    #[serde(default)]
    pub gateways: u32,
    /// Tools in all; spread over the gateways (standalone when there are none).
    #[serde(default)]
    pub tools: u32,
    #[serde(default)]
    pub servers: u32,
    /// Tools associated with each server.
    #[serde(default = "default_tools_per_server")]
    pub tools_per_server: u32,
    #[serde(default)]
    pub prompts: u32,
    #[serde(default)]
    pub resources: u32,
    /// Delete what was seeded once the run is over (default true), so repeated runs against one
    /// database start alike.
    #[serde(default = "yes")]
    pub teardown: bool,
    /// How seeded gateways reach the upstream, when there is one.
    #[serde(default)]
    pub gateway_transport: GatewayTransport,
    /// Which tools `{tool_id}` and `{tool_name}` draw from: the REST tools seeded (default), the
    /// upstream's tools the gateways federate, or both.
    #[serde(default)]
    pub tools_from: ToolsFrom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolsFrom {
    #[default]
    Rest,
    Federated,
    All,
}

/// The MCP transport a gateway federates its upstream over, as the gateway API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum GatewayTransport {
    /// The HTTP+SSE transport (2024-11-05): the upstream's `/sse`.
    #[default]
    #[serde(rename = "SSE")]
    Sse,
    /// Streamable HTTP: the upstream's `/mcp`.
    #[serde(rename = "STREAMABLEHTTP")]
    StreamableHttp,
}

impl GatewayTransport {
    pub fn name(self) -> &'static str {
        match self {
            GatewayTransport::Sse => "SSE",
            GatewayTransport::StreamableHttp => "STREAMABLEHTTP",
        }
    }

    /// The upstream's endpoint for this transport.
    pub fn path(self) -> &'static str {
        match self {
            GatewayTransport::Sse => "/sse",
            GatewayTransport::StreamableHttp => "/mcp",
        }
    }
}

/// `[upstream]`: stampede's own upstream MCP server (`stampede upstream`), started before setup and
/// stopped after the post-load window — or one already running (`url`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSpec {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spawn: bool,
    /// An upstream already running (`http://host:port`), instead of spawning one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Generated tools besides the built-in ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<u32>,
    /// Latency of every request: `"20ms"` or `"20ms..200ms"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<DurRange>,
    /// Latency of `initialize` instead (what a gateway's activation waits for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialize_latency: Option<DurRange>,
    /// Share of requests answered with an error, 0..1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Share of requests accepted and never answered, 0..1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_rate: Option<f64>,
    /// Streamable HTTP answers as SSE streams when the client accepts both.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sse_replies: bool,
    /// A `subscriptions/listen` stream tells of a list change this often, e.g. `"1s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_changed_every: Option<Dur>,
}

fn default_tools_per_server() -> u32 {
    5
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// N virtual users, each looping over the action mix.
    #[default]
    Closed,
    /// Arrivals at a rate, whatever the target's speed.
    Open,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub duration: Dur,
    /// Users (closed) or arrivals per second (open) at the end of the stage.
    pub target: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    #[serde(default)]
    pub model: Model,
    /// Closed: users at the steady stage. Signed so that `-5` is judged by the same check as `0`, with
    /// one message, wherever it comes from (the file, `--users`, `--set`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<i64>,
    /// Open: arrivals per second at the steady stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Actions to start in all, shared by the users: the load ends when they are done (or at the end
    /// of its stages, whichever comes first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u64>,
    /// Open: arrivals in flight at most; further ones wait in a short queue, then are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// Steady duration (with `ramp_up`/`ramp_down`), when `stages` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_up: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_down: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<StageSpec>>,
    /// Closed: pause between a user's actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_time: Option<DurRange>,
    /// How long in-flight actions may finish after the load ends before they are cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_stop: Option<Dur>,
    /// Load threads, the event loops the users run on: one per core the process may use unless given
    /// (wrk's `-t`, oha's `--worker-threads`). Signed, as `users`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<i64>,
}

/// Target-side observation, on the load's timeline and through the post-load window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserveSpec {
    /// Window after the load stops, on the same timeline (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_load: Option<Dur>,
    /// Part of the post-load window left out of the "settled" figures: CPU, resources (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<Dur>,
    /// The target's Prometheus endpoint: a path on the target (default `/metrics/prometheus`), a full
    /// URL, or `""` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// PostgreSQL to watch for blocked queries (the target's database). Default: a spawned gateway's
    /// `database_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<String>,
    /// PgBouncer's admin console to watch for clients waiting on a pool
    /// (`postgres://user@host:port/pgbouncer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbouncer: Option<String>,
    /// A local target process to read CPU from (default: the spawned gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// A file holding that pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<String>,
    /// Count the CPU of the process's descendants too (a gateway run by a supervisor or with workers).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub children: bool,
    /// The target's listening ports whose TCP sockets are counted by state (default: the spawned
    /// gateways', or the URL's when the target is on this machine; `[]` for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<u16>>,
}
