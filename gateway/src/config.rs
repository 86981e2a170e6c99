//! Runtime configuration: every knob is a flag and an environment variable, and the two profiles are
//! presets of the individual toggles so each part of the fix can be switched off alone.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// A connection pooler in front of PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pooler {
    None,
    /// PgBouncer's `pool_mode = transaction`: a server connection is the client's only inside a
    /// transaction.
    Transaction,
}

/// A preset of the toggles below. `legacy` reproduces the field failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    Fixed,
    Legacy,
}

/// How a gateway toggle reaches its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateCascade {
    /// One bulk `UPDATE` per child table, touching only rows whose state changes.
    Bulk,
    /// The legacy loop: lock each child with a waiting `FOR UPDATE`, update it, one by one.
    RowLocks,
}

/// How long a tool call keeps its database connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SessionScope {
    /// Each query takes a connection and gives it back: a call to an upstream holds none.
    Statement,
    /// The legacy request-scoped session (an ORM session per request, as the field's gateway had): the
    /// call holds one connection in an open transaction from its start to its answer, the upstream's
    /// latency included — "idle in transaction" the while, and a pool slot (and a PgBouncer server) gone.
    Request,
}

/// Whether an SSE session notices that its client has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Detection {
    /// Checked on every iteration of the session loop: the session ends at once.
    On,
    /// The legacy producer: a failed send is treated as transient and retried, forever.
    Off,
}

/// A part of the fix that is on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// How a Streamable HTTP request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplyFormat {
    Json,
    Sse,
}

/// What an entity toggle does when its row is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LockWait {
    /// Fail at once: `FOR UPDATE NOWAIT` (PostgreSQL) or no busy wait (SQLite) → 409.
    Nowait,
    /// Wait for the lock (bounded only by the lock and statement timeouts).
    Wait,
}

impl LockWait {
    pub fn as_str(self) -> &'static str {
        match self {
            LockWait::Nowait => "nowait",
            LockWait::Wait => "wait",
        }
    }
}

impl StateCascade {
    pub fn as_str(self) -> &'static str {
        match self {
            StateCascade::Bulk => "bulk",
            StateCascade::RowLocks => "row-locks",
        }
    }
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Fixed => "fixed",
            Profile::Legacy => "legacy",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:4444")]
    pub bind: SocketAddr,

    /// Database URL: `sqlite://PATH` or `postgres://…`. Default: SQLite in --data-dir.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Directory for the embedded SQLite database.
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Preset of the fix toggles; individual toggles override it.
    #[arg(long, env = "PROFILE", value_enum, default_value = "fixed")]
    pub profile: Profile,

    /// How long a tool call keeps its database connection: `statement` (fixed) or `request` (legacy).
    #[arg(long, env = "DB_SESSION_SCOPE", value_enum)]
    pub db_session_scope: Option<SessionScope>,

    /// Gateway toggle cascade (default from --profile).
    #[arg(long, env = "STATE_CASCADE", value_enum)]
    pub state_cascade: Option<StateCascade>,

    /// Entity toggle on a locked row (default from --profile).
    #[arg(long, env = "LOCK_WAIT", value_enum)]
    pub lock_wait: Option<LockWait>,

    /// Connections in the database pool.
    #[arg(long, env = "DB_POOL_SIZE", default_value_t = 20)]
    pub db_pool_size: u32,

    /// How long a request waits for a pool connection before it fails with 503 (ms).
    #[arg(long, env = "DB_POOL_TIMEOUT_MS", default_value_t = 30_000)]
    pub db_pool_timeout_ms: u64,

    /// `SET LOCAL lock_timeout` for write transactions (ms, 0 = none, as PostgreSQL's default).
    #[arg(long, env = "DB_LOCK_TIMEOUT_MS", default_value_t = 0)]
    pub db_lock_timeout_ms: u64,

    /// `SET LOCAL statement_timeout` for write transactions (ms, 0 = none).
    #[arg(long, env = "DB_STATEMENT_TIMEOUT_MS", default_value_t = 30_000)]
    pub db_statement_timeout_ms: u64,

    /// How long a read's answer (`tools/list`, a REST list or get, a `tools/call`'s tool and gateway)
    /// may be served from memory (ms; any write through this gateway ends it at once; 0 = always read
    /// the database).
    #[arg(long, env = "READ_CACHE_MS", default_value_t = 1_000)]
    pub read_cache_ms: u64,

    /// Simulate the upstream round trip of registering or activating a gateway (ms; no I/O, no
    /// federated tools). Unset: real federation, MCP initialize + tools/list on its upstream.
    #[arg(long, env = "GATEWAY_ACTIVATION_IO_MS")]
    pub gateway_activation_io_ms: Option<u64>,

    /// Timeout of that real exchange with a gateway's upstream (ms).
    #[arg(long, env = "GATEWAY_ACTIVATION_TIMEOUT_MS", default_value_t = 2_000)]
    pub gateway_activation_timeout_ms: u64,

    /// For the gate's sensitivity test only: burn this much CPU (µs of busy work on the worker thread)
    /// in every request, a known slowdown the gate must catch. 0 = off (no layer at all).
    #[arg(long, env = "TEST_ONLY_CPU_COST_US", default_value_t = 0, hide = true)]
    pub test_only_cpu_cost_us: u64,

    /// For the gate's sensitivity test only: delay every request by this much (µs). 0 = off.
    #[arg(long, env = "TEST_ONLY_DELAY_US", default_value_t = 0, hide = true)]
    pub test_only_delay_us: u64,

    /// Largest accepted request body (bytes); larger ones get 413.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// How long a request body may take to arrive once the gateway reads it; slower ones get 408, e.g.
    /// `30s` (a body trickled a byte at a time holds its connection no longer).
    #[arg(long, env = "BODY_READ_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_read_timeout: Duration,

    /// Whether streams notice a gone client (default from --profile). Off (legacy), a stream's
    /// connection is not read either: a client's close is seen when a write fails, its socket in
    /// CLOSE_WAIT until then.
    #[arg(long, env = "SSE_DISCONNECT_DETECTION", value_enum)]
    pub sse_disconnect_detection: Option<Detection>,

    /// End an SSE session whose client has not taken a frame for this long (seconds, 0 = never;
    /// default 30, or 0 in the legacy profile).
    #[arg(long, env = "SSE_SEND_TIMEOUT", value_parser = parse_seconds)]
    pub sse_send_timeout: Option<Duration>,

    /// Keepalive after this much silence on an SSE stream (seconds).
    #[arg(long, env = "SSE_KEEPALIVE_INTERVAL", default_value = "30", value_parser = parse_seconds)]
    pub sse_keepalive_interval: Duration,

    /// Rapid-yield detector: the window (ms) in which more than SSE_RAPID_YIELD_MAX yields end a session.
    #[arg(long, env = "SSE_RAPID_YIELD_WINDOW_MS", default_value_t = 1000)]
    pub sse_rapid_yield_window_ms: u64,

    /// Rapid-yield detector: yields allowed in the window (0 turns the rule off; default 50, or 0 in
    /// the legacy profile).
    #[arg(long, env = "SSE_RAPID_YIELD_MAX")]
    pub sse_rapid_yield_max: Option<u32>,

    /// Rapid-yield detector: this many consecutive yields closer than 100 ms end a session (0 turns the
    /// rule off; default 10, or 0 in the legacy profile).
    #[arg(long, env = "SSE_RAPID_YIELD_CONSECUTIVE")]
    pub sse_rapid_yield_consecutive: Option<u32>,

    /// HTTP+SSE: refuse a request (but `ping`) until the client has sent `initialize` and
    /// `notifications/initialized`, as the MCP SDKs do (default true; false in the legacy profile, as
    /// the field's gateway served them).
    #[arg(long, env = "SSE_REQUIRE_INITIALIZE", action = clap::ArgAction::Set)]
    pub sse_require_initialize: Option<bool>,

    /// End a Streamable HTTP session after this long without a request or an open stream (seconds,
    /// 0 = never; default 120, or 0 in the legacy profile).
    #[arg(long, env = "MCP_SESSION_IDLE_TIMEOUT", value_parser = parse_seconds)]
    pub mcp_session_idle_timeout: Option<Duration>,

    /// Sessions held at once, every transport and listen streams counted (0 = no cap; default
    /// 20000, none in the legacy profile). Past it: 503.
    #[arg(long, env = "MAX_SESSIONS")]
    pub max_sessions: Option<usize>,

    /// Sessions one token subject holds at once (0 = no cap; default 10000, none in the legacy
    /// profile). Past it: 429.
    #[arg(long, env = "MAX_SESSIONS_PER_SUBJECT")]
    pub max_sessions_per_subject: Option<usize>,

    /// HTTP+SSE messages being answered at once, all sessions together (each session also at most
    /// 32). Past it: 503.
    #[arg(long, env = "MAX_MESSAGES_IN_FLIGHT", default_value_t = 4096)]
    pub max_messages_in_flight: usize,

    /// How `POST /mcp` answers a request when the client accepts both: `json` or an `sse` stream.
    #[arg(long, env = "STREAMABLE_HTTP_REPLIES", value_enum, default_value = "json")]
    pub streamable_http_replies: ReplyFormat,

    /// Origins the MCP endpoints (`/mcp`, `/sse`, `/message`) accept besides loopback ones, comma
    /// separated (`https://app.example`, or `*` for any); a request with another `Origin` is refused
    /// 403, as the specification requires against DNS rebinding. One without `Origin` passes.
    #[arg(long, env = "ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// PostgreSQL URL of the session bus replicas use to find each other's sessions (LISTEN/NOTIFY;
    /// a direct one — not through a transaction-pooling PgBouncer). Unset: this gateway is alone.
    #[arg(long, env = "SESSION_BUS_URL")]
    pub session_bus_url: Option<String>,

    /// Whether this replica joins the session bus at SESSION_BUS_URL (default on; off in the legacy
    /// profile, whose replicas each know only their own sessions, as the field's gateways without
    /// affinity: a request that reaches another replica is 404).
    #[arg(long, env = "SESSION_BUS", value_enum)]
    pub session_bus: Option<Switch>,

    /// The name this replica gives itself in its answers' `X-Served-By` header (default: the
    /// address it listens on).
    #[arg(long, env = "REPLICA_NAME")]
    pub replica_name: Option<String>,

    /// How long a replica waits for another to say it holds a session (ms).
    #[arg(long, env = "SESSION_BUS_TIMEOUT_MS", default_value_t = 1_000)]
    pub session_bus_timeout_ms: u64,

    /// The URL other replicas forward to (default: http:// and the bound address).
    #[arg(long, env = "SESSION_BUS_ADVERTISE")]
    pub session_bus_advertise: Option<String>,

    /// What stands between the gateway and PostgreSQL: `none`, or a `transaction`-pooling PgBouncer
    /// (each checkout of a connection is then one transaction, and no prepared statement outlives it).
    #[arg(long, env = "DB_POOLER", value_enum, default_value = "none")]
    pub db_pooler: Pooler,

    /// Longest delay the built-in `sleep` tool accepts (ms).
    #[arg(long, env = "SLEEP_TOOL_MAX_MS", default_value_t = 10_000)]
    pub sleep_tool_max_ms: u64,

    /// Address ranges the gateway's own requests (federation, relays, REST tools) may reach besides
    /// public ones: `loopback`, `private`, `link-local`, or `all`, comma-separated (default none).
    #[arg(long, env = "OUTBOUND_ALLOW", default_value = "", value_parser = crate::upstream::Outbound::parse)]
    pub outbound_allow: crate::upstream::Outbound,

    /// Longest answer, or event of a stream, the gateway reads from a federated server or a REST
    /// tool (bytes); a longer one is an error and its connection is closed.
    #[arg(long, env = "UPSTREAM_MAX_BYTES", default_value_t = 16 << 20)]
    pub upstream_max_bytes: usize,

    /// Largest prompt `prompts/get` renders (bytes); a larger one is refused, never built.
    #[arg(long, env = "PROMPT_MAX_BYTES", default_value_t = 1 << 20)]
    pub prompt_max_bytes: usize,

    /// Connections served at once; more wait in the listen backlog until one closes.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 16_384)]
    pub max_connections: usize,

    /// Once a request's first byte has come, how long its head may take before the connection is cut
    /// (slow clients that trickle headers hold nothing longer), e.g. `10s`.
    #[arg(long, env = "HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// How long a connection may sit with no request in progress and no stream (just accepted, or
    /// answered) before the gateway closes it, e.g. `75s` (nginx's keepalive_timeout); `0`: never.
    #[arg(long, env = "KEEPALIVE_TIMEOUT", default_value = "75s", value_parser = humantime::parse_duration)]
    pub keepalive_timeout: Duration,

    /// After SIGINT/SIGTERM, how long in-flight requests may take before the gateway exits (seconds).
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub shutdown_timeout: Duration,

    #[command(flatten)]
    pub auth: AuthArgs,
}

/// Seconds, fractions allowed (`0.5`), as every `*_TIMEOUT`/`*_INTERVAL` setting takes them.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a duration in seconds (>= 0)"))
}

/// The original gateway's default secret: anyone can mint a token with it, so it serves loopback only.
pub const DEFAULT_SECRET: &str = "my-test-key";
/// A secret shorter than this can be guessed; it serves loopback only (HS256's key is 32 bytes).
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// HS256 secret for bearer tokens (the original gateway's default, so one token works on both).
    #[arg(long, env = "JWT_SECRET_KEY", default_value = DEFAULT_SECRET, hide_env_values = true)]
    pub jwt_secret_key: String,

    #[arg(long, env = "JWT_AUDIENCE", default_value = "mcpgateway-api")]
    pub jwt_audience: String,

    #[arg(long, env = "JWT_ISSUER", default_value = "mcpgateway")]
    pub jwt_issuer: String,

    /// `false`: a request without a token is served as `anonymous` (a token given is still checked).
    /// For referees that send none, such as the MCP conformance suite; loopback binds only.
    #[arg(long, env = "AUTH_REQUIRED", default_value_t = true, action = clap::ArgAction::Set)]
    pub auth_required: bool,
}

/// How the store behaves, resolved from the profile and the individual toggles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreBehaviour {
    pub cascade: StateCascade,
    pub lock_wait: LockWait,
    /// `None` means no lock timeout.
    pub lock_timeout: Option<Duration>,
    pub statement_timeout: Option<Duration>,
    pub activation: Activation,
    /// How long a read's answer may be served from memory between writes (zero: never).
    pub read_cache: Duration,
    pub session_scope: SessionScope,
}

/// What activating a gateway does to reach its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Simulated(Duration),
    Request { timeout: Duration },
}

/// How SSE sessions behave, resolved from the profile and the individual settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseBehaviour {
    pub detection: Detection,
    pub send_timeout: Option<Duration>,
    pub keepalive: Duration,
    pub rapid_yield_window: Duration,
    /// `None`: the window rule is off.
    pub rapid_yield_max: Option<u32>,
    /// `None`: the consecutive rule is off.
    pub rapid_yield_consecutive: Option<u32>,
    /// HTTP+SSE sessions refuse requests before MCP's handshake (`protocol::handshake`).
    pub require_initialize: bool,
}

impl ServeArgs {
    pub fn sse(&self) -> SseBehaviour {
        let fixed = self.profile == Profile::Fixed;
        let send_timeout =
            self.sse_send_timeout
                .unwrap_or(if fixed { Duration::from_secs(30) } else { Duration::ZERO });
        SseBehaviour {
            detection: self
                .sse_disconnect_detection
                .unwrap_or(if fixed { Detection::On } else { Detection::Off }),
            send_timeout: (send_timeout > Duration::ZERO).then_some(send_timeout),
            keepalive: self.sse_keepalive_interval.max(Duration::from_millis(10)),
            rapid_yield_window: Duration::from_millis(self.sse_rapid_yield_window_ms.max(1)),
            rapid_yield_max: Some(self.sse_rapid_yield_max.unwrap_or(if fixed { 50 } else { 0 })).filter(|n| *n > 0),
            rapid_yield_consecutive: Some(self.sse_rapid_yield_consecutive.unwrap_or(if fixed { 10 } else { 0 }))
                .filter(|n| *n > 0),
            require_initialize: self.sse_require_initialize.unwrap_or(fixed),
        }
    }

    /// The Streamable HTTP idle timeout, resolved from the profile; `None`: sessions never expire.
    pub fn mcp_idle_timeout(&self) -> Option<Duration> {
        let fixed = self.profile == Profile::Fixed;
        let timeout = self.mcp_session_idle_timeout.unwrap_or(if fixed {
            Duration::from_secs(120)
        } else {
            Duration::ZERO
        });
        (timeout > Duration::ZERO).then_some(timeout)
    }

    /// The session bus's URL when this replica joins it (the legacy profile does not).
    pub fn session_bus(&self) -> Option<&str> {
        let default = match self.profile {
            Profile::Fixed => Switch::On,
            Profile::Legacy => Switch::Off,
        };
        (self.session_bus.unwrap_or(default) == Switch::On)
            .then_some(self.session_bus_url.as_deref())
            .flatten()
    }

    /// The session caps, resolved from the profile (the legacy profile has none, as the field's
    /// gateway had none).
    pub fn session_caps(&self) -> crate::session::SessionCaps {
        let fixed = self.profile == Profile::Fixed;
        let cap = |set: Option<usize>, default: usize| {
            Some(set.unwrap_or(if fixed { default } else { 0 })).filter(|n| *n > 0)
        };
        crate::session::SessionCaps {
            total: cap(self.max_sessions, 20_000),
            per_subject: cap(self.max_sessions_per_subject, 10_000),
        }
    }

    pub fn behaviour(&self) -> StoreBehaviour {
        let (cascade, lock_wait, session_scope) = match self.profile {
            Profile::Fixed => (StateCascade::Bulk, LockWait::Nowait, SessionScope::Statement),
            Profile::Legacy => (StateCascade::RowLocks, LockWait::Wait, SessionScope::Request),
        };
        StoreBehaviour {
            cascade: self.state_cascade.unwrap_or(cascade),
            lock_wait: self.lock_wait.unwrap_or(lock_wait),
            lock_timeout: nonzero_ms(self.db_lock_timeout_ms),
            statement_timeout: nonzero_ms(self.db_statement_timeout_ms),
            activation: match self.gateway_activation_io_ms {
                Some(ms) => Activation::Simulated(Duration::from_millis(ms)),
                None => Activation::Request {
                    timeout: Duration::from_millis(self.gateway_activation_timeout_ms),
                },
            },
            read_cache: Duration::from_millis(self.read_cache_ms),
            session_scope: self.db_session_scope.unwrap_or(session_scope),
        }
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("stampede.db").display()),
        }
    }
}

fn nonzero_ms(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_take_fractions_and_refuse_garbage() {
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_seconds("30"), Ok(Duration::from_secs(30)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("10 s").is_err());
    }
}
