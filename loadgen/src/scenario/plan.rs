//! A validated scenario, ready to run: typed actions with parsed templates, the load as stages with
//! their phases. Every check that can be made before the run is made here, each mistake with the
//! field path it concerns.

use std::time::Duration;

use crate::data::{Phase, Threshold};

use super::spec::{
    Balance, GatewayProfile, LoadSpec, Model, ProxyKind, ScenarioSpec, SetupMode, SetupSpec, ToolsFrom, UpstreamSpec,
};
use crate::actions::Action;
use crate::lang::{DurRange, Problem, Var, problem};

#[derive(Debug, Clone)]
pub struct Stage {
    pub duration: Duration,
    /// Users (closed) or arrivals per second (open) at the end of the stage; linear from the previous.
    pub target: f64,
    pub phase: Phase,
}

#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub model: Model,
    pub stages: Vec<Stage>,
    /// Actions to start in all, shared by the users (k6's shared iterations; the ad-hoc `-n`): the
    /// load ends when they are done, or when its stages end if that comes first.
    pub iterations: Option<u64>,
    pub max_in_flight: u32,
    pub think_time: DurRange,
    pub graceful_stop: Duration,
    /// Load threads; `None`: one per core the process may use.
    pub threads: Option<usize>,
}

impl LoadPlan {
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The highest target of any stage: users or arrivals per second.
    pub fn peak(&self) -> f64 {
        self.stages.iter().map(|s| s.target).fold(0.0, f64::max)
    }

    /// The target and phase at `t` into the load (the last stage's target after the end).
    pub fn at(&self, t: Duration) -> (f64, Phase) {
        let mut start = Duration::ZERO;
        let mut from = 0.0;
        for stage in &self.stages {
            let end = start + stage.duration;
            if t < end {
                let frac = if stage.duration.is_zero() {
                    1.0
                } else {
                    (t - start).as_secs_f64() / stage.duration.as_secs_f64()
                };
                return (from + (stage.target - from) * frac, stage.phase);
            }
            from = stage.target;
            start = end;
        }
        (from, self.stages.last().map_or(Phase::Steady, |s| s.phase))
    }
}

/// Where the load goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPlan {
    Spawn {
        profile: GatewayProfile,
        env: Vec<(String, String)>,
        database_url: Option<String>,
        replicas: u32,
        proxy: Option<ProxyKind>,
        balance: Balance,
    },
    Url(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthPlan {
    None,
    Token(String),
    TokenEnv(String),
    JwtSecretEnv(String),
}

/// The upstream MCP server of a run, if any.
#[derive(Debug, Clone)]
pub enum UpstreamPlan {
    None,
    /// `stampede upstream`, started for the run with these knobs.
    Spawn(crate::upstream_server::Knobs),
    Url(String),
}

/// A scenario ready to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// As run: the file after command-line overrides.
    pub spec: ScenarioSpec,
    pub name: String,
    pub target: TargetPlan,
    /// Whose certificates an https:// target may show.
    pub trust: crate::actions::conn::Trust,
    pub auth: AuthPlan,
    pub timeout: Duration,
    pub setup: SetupSpec,
    pub load: LoadPlan,
    pub actions: Vec<Action>,
    pub post_load: Duration,
    pub settle: Duration,
    /// The scenario's thresholds, parsed: (scope, threshold).
    pub thresholds: Vec<(String, Threshold)>,
    pub upstream: UpstreamPlan,
    /// The slice of the load this process runs (`--shard I/N`); the whole by default.
    pub shard: crate::shard::Shard,
    /// Whether this process runs the observers (`--observe-on`: one shard does, so the target's CPU
    /// and blocked queries are not counted N times).
    pub observes: bool,
    /// The instant the load starts (`--start-at`, `--start-in`): shards waiting for one common start have
    /// their one-second windows aligned by wall clock. None: as soon as the setup is done.
    pub start_at: Option<std::time::SystemTime>,
    /// A shard other than the first waits this long for the first one's seed to appear (`--setup-wait`).
    pub setup_wait: Duration,
}

/// Check everything; answer the plan or every problem found.
pub fn plan(spec: ScenarioSpec, default_name: &str) -> Result<Scenario, Vec<Problem>> {
    let mut problems = Vec::new();
    let target = target_plan(&spec, &mut problems);
    let trust = trust_plan(&spec.target, &mut problems);
    let auth = auth_plan(&spec, &mut problems);
    let load = load_plan(&spec.load, &mut problems);
    let planned = crate::actions::plan_all(&spec.actions, &mut problems);
    let upstream = upstream_plan(spec.upstream.as_ref(), &mut problems);
    check_setup_provides(
        &spec.setup,
        !matches!(upstream, UpstreamPlan::None),
        &planned,
        &mut problems,
    );
    let actions: Vec<Action> = planned.into_iter().map(|(_, a)| a).collect();
    if spec.observe.pid.is_some() && spec.observe.pid_file.is_some() {
        problems.push(problem("observe.pid_file", "give either `pid` or `pid_file`, not both"));
    }
    if let Some(m) = &spec.observe.metrics
        && !(m.is_empty() || m.starts_with('/') || m.starts_with("http://") || m.starts_with("https://"))
    {
        problems.push(problem(
            "observe.metrics",
            format!("{m:?} is neither a path (/…) nor an http(s) URL"),
        ));
    }
    for scope in spec.thresholds.keys() {
        if scope != "all" && !actions.iter().any(|a| &a.name == scope) {
            problems.push(problem(
                format!("thresholds.{scope}"),
                "is neither `all` nor the name of an action",
            ));
        }
    }
    // Parsed once, here; the engine and the results judge what the scenario holds.
    let thresholds = match crate::data::threshold::parse_all(&spec.thresholds) {
        Ok(t) => t,
        Err(errors) => {
            for e in errors {
                problems.push(problem(e.field, e.message));
            }
            Vec::new()
        }
    };
    if spec.target.timeout.0.is_zero() {
        problems.push(problem("target.timeout", "must be more than 0s"));
    }
    match (target, load) {
        (Some(target), Some(load)) if problems.is_empty() => Ok(Scenario {
            name: if spec.name.is_empty() {
                default_name.to_owned()
            } else {
                spec.name.clone()
            },
            target,
            trust,
            auth,
            timeout: spec.target.timeout.0,
            setup: spec.setup.clone(),
            load,
            actions,
            post_load: spec.observe.post_load.map_or(Duration::from_secs(30), |d| d.0),
            settle: spec.observe.settle.map_or(Duration::from_secs(5), |d| d.0),
            thresholds,
            upstream,
            spec,
            shard: crate::shard::Shard::WHOLE,
            observes: true,
            start_at: None,
            setup_wait: Duration::from_secs(120),
        }),
        _ => Err(problems),
    }
}

/// `target.cacert` and `target.insecure`: one or the other, and only for an https:// target.
fn trust_plan(t: &super::spec::TargetSpec, problems: &mut Vec<Problem>) -> crate::actions::conn::Trust {
    use crate::actions::conn::Trust;
    let https = t.url.as_deref().is_some_and(|u| u.starts_with("https://"));
    for (field, set) in [("target.cacert", t.cacert.is_some()), ("target.insecure", t.insecure)] {
        if set && !https {
            problems.push(problem(field, "applies only to an https:// target url"));
        }
    }
    match (&t.cacert, t.insecure) {
        (Some(_), true) => {
            problems.push(problem(
                "target.insecure",
                "give either `cacert` or `insecure`, not both",
            ));
            Trust::Platform
        }
        (Some(file), false) => Trust::CaFile(file.into()),
        (None, true) => Trust::Insecure,
        (None, false) => Trust::Platform,
    }
}

fn target_plan(spec: &ScenarioSpec, problems: &mut Vec<Problem>) -> Option<TargetPlan> {
    let t = &spec.target;
    if let Some(name) = &t.served_by_header
        && reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
    {
        problems.push(problem(
            "target.served_by_header",
            format!("{name:?} is not an HTTP header name"),
        ));
    }
    match (&t.url, t.spawn) {
        (Some(_), Some(_)) => {
            problems.push(problem("target.spawn", "give either `url` or `spawn`, not both"));
            None
        }
        (None, None) => {
            problems.push(problem("target", "needs `url = \"http://…\"` or `spawn = \"gateway\"`"));
            None
        }
        (Some(url), None) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) || reqwest::Url::parse(url).is_err() {
                problems.push(problem(
                    "target.url",
                    format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
            for (field, set) in [
                ("target.env", !t.env.is_empty()),
                ("target.database_url", t.database_url.is_some()),
                ("target.profile", t.profile != GatewayProfile::Fixed),
                ("target.replicas", t.replicas != 1),
                ("target.proxy", t.proxy.is_some()),
                ("target.proxy_balance", t.proxy_balance.is_some()),
            ] {
                if set {
                    problems.push(problem(
                        field,
                        "applies only to a spawned gateway (`spawn = \"gateway\"`)",
                    ));
                }
            }
            Some(TargetPlan::Url(url.trim_end_matches('/').to_owned()))
        }
        (None, Some(_)) => {
            let on_postgres = t
                .database_url
                .as_deref()
                .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
            if t.replicas == 0 {
                problems.push(problem("target.replicas", "must be at least 1"));
            } else if t.replicas > 1 && !on_postgres {
                problems.push(problem(
                    "target.replicas",
                    "replicas share one database: set target.database_url = \"postgres://…\"",
                ));
            } else if t.replicas > 1 && t.proxy.is_none() {
                problems.push(problem(
                    "target.replicas",
                    "replicas need a proxy in front to spread the load: proxy = \"nginx\"",
                ));
            } else if t.replicas > 1
                && t.env.get("DB_POOLER").is_some_and(|p| p == "transaction")
                && !t.env.contains_key("SESSION_BUS_URL")
            {
                // The session bus would default to the database URL, a transaction pooler's, which
                // LISTEN does not pass.
                problems.push(problem(
                    "target.env",
                    "replicas behind a transaction pooler need SESSION_BUS_URL = a direct \"postgres://…\" \
                     (LISTEN does not pass PgBouncer in transaction mode)",
                ));
            }
            if t.proxy_balance.is_some() && t.proxy.is_none() {
                problems.push(problem(
                    "target.proxy_balance",
                    "applies only with a proxy: proxy = \"nginx\"",
                ));
            }
            Some(TargetPlan::Spawn {
                profile: t.profile,
                env: t.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                database_url: t.database_url.clone(),
                replicas: t.replicas,
                proxy: t.proxy,
                balance: t.proxy_balance.unwrap_or_default(),
            })
        }
    }
}

fn auth_plan(spec: &ScenarioSpec, problems: &mut Vec<Problem>) -> AuthPlan {
    let t = &spec.target;
    let given = [t.token.is_some(), t.token_env.is_some(), t.jwt_secret_env.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        problems.push(problem(
            "target.token",
            "give one of `token`, `token_env`, `jwt_secret_env`",
        ));
    }
    if let Some(t) = &t.token {
        AuthPlan::Token(t.clone())
    } else if let Some(v) = &t.token_env {
        AuthPlan::TokenEnv(v.clone())
    } else if let Some(v) = &t.jwt_secret_env {
        AuthPlan::JwtSecretEnv(v.clone())
    } else {
        AuthPlan::None
    }
}

/// More load threads than this is a mistake, not a machine.
const MAX_THREADS: i64 = 1024;

fn load_plan(l: &LoadSpec, problems: &mut Vec<Problem>) -> Option<LoadPlan> {
    let before = problems.len();
    let (level_field, level) = match l.model {
        Model::Closed => ("load.users", l.users.map(|u| u as f64)),
        Model::Open => ("load.rate", l.rate),
    };
    let not_for = |field: &str, set: bool, model: &str, problems: &mut Vec<Problem>| {
        if set {
            problems.push(problem(field, format!("does not apply to the {model} model")));
        }
    };
    match l.model {
        Model::Closed => {
            not_for("load.rate", l.rate.is_some(), "closed", problems);
            not_for("load.max_in_flight", l.max_in_flight.is_some(), "closed", problems);
        }
        Model::Open => {
            not_for("load.users", l.users.is_some(), "open", problems);
            not_for("load.think_time", l.think_time.is_some(), "open", problems);
        }
    }
    let stages = match &l.stages {
        Some(stages) => {
            for (field, set) in [
                ("load.duration", l.duration.is_some()),
                ("load.ramp_up", l.ramp_up.is_some()),
                ("load.ramp_down", l.ramp_down.is_some()),
                (level_field, level.is_some()),
            ] {
                if set {
                    problems.push(problem(field, "give either `stages` or this, not both"));
                }
            }
            if stages.is_empty() {
                problems.push(problem("load.stages", "needs at least one stage"));
            }
            let mut previous = 0.0;
            let mut out = Vec::new();
            for (i, s) in stages.iter().enumerate() {
                if !(s.target.is_finite() && s.target >= 0.0) {
                    problems.push(problem(format!("load.stages[{i}].target"), "must be a number >= 0"));
                }
                let phase = if s.target > previous {
                    Phase::RampUp
                } else if s.target < previous {
                    Phase::RampDown
                } else {
                    Phase::Steady
                };
                // A stage that jumps straight to its level in no time is not a ramp.
                let phase = if s.duration.0.is_zero() { Phase::Steady } else { phase };
                out.push(Stage {
                    duration: s.duration.0,
                    target: s.target,
                    phase,
                });
                previous = s.target;
            }
            out
        }
        None => {
            let Some(level) = level else {
                problems.push(problem(
                    level_field,
                    format!("is required (or give `stages`) for the {} model", model_name(l.model)),
                ));
                return None;
            };
            if !(level.is_finite() && level > 0.0) {
                problems.push(problem(level_field, format!("is {level}: it must be more than 0")));
            }
            let Some(duration) = l.duration else {
                problems.push(problem("load.duration", "is required (or give `stages`)"));
                return None;
            };
            let mut out = Vec::new();
            if let Some(up) = l.ramp_up.filter(|d| !d.0.is_zero()) {
                out.push(Stage {
                    duration: up.0,
                    target: level,
                    phase: Phase::RampUp,
                });
            } else {
                out.push(Stage {
                    duration: Duration::ZERO,
                    target: level,
                    phase: Phase::Steady,
                });
            }
            out.push(Stage {
                duration: duration.0,
                target: level,
                phase: Phase::Steady,
            });
            if let Some(down) = l.ramp_down.filter(|d| !d.0.is_zero()) {
                out.push(Stage {
                    duration: down.0,
                    target: 0.0,
                    phase: Phase::RampDown,
                });
            }
            out
        }
    };
    if stages.iter().map(|s| s.duration).sum::<Duration>().is_zero() {
        problems.push(problem("load", "the load lasts 0s: give a duration"));
    }
    if l.max_in_flight == Some(0) {
        problems.push(problem("load.max_in_flight", "must be more than 0"));
    }
    if l.iterations == Some(0) {
        problems.push(problem("load.iterations", "must be more than 0"));
    }
    let threads = match l.threads {
        None => None,
        Some(n @ 1..=MAX_THREADS) => usize::try_from(n).ok(),
        Some(n) => {
            problems.push(problem(
                "load.threads",
                format!("must be from 1 to {MAX_THREADS} (got {n})"),
            ));
            None
        }
    };
    (problems.len() == before).then(|| LoadPlan {
        model: l.model,
        stages,
        iterations: l.iterations,
        max_in_flight: l.max_in_flight.unwrap_or(1000),
        think_time: l.think_time.unwrap_or_default(),
        graceful_stop: l.graceful_stop.map_or(Duration::from_secs(5), |d| d.0),
        threads,
    })
}

fn model_name(m: Model) -> &'static str {
    match m {
        Model::Closed => "closed",
        Model::Open => "open",
    }
}

/// The count of seeded entities a variable draws from.
fn seeded(setup: &SetupSpec, var: Var) -> Option<(u32, &'static str)> {
    match var {
        Var::GatewayId => Some((setup.gateways, "gateways")),
        // Federated tools are counted once the target lists them; REST ones are what setup seeds.
        Var::ToolId | Var::ToolName if setup.tools_from != ToolsFrom::Rest => None,
        Var::ToolId | Var::ToolName => Some((setup.tools, "tools")),
        Var::ServerId => Some((setup.servers, "servers")),
        Var::PromptId | Var::PromptName => Some((setup.prompts, "prompts")),
        Var::ResourceId | Var::ResourceUri => Some((setup.resources, "resources")),
        Var::Bool | Var::Unique | Var::UpstreamUrl => None,
    }
}

fn upstream_plan(spec: Option<&UpstreamSpec>, problems: &mut Vec<Problem>) -> UpstreamPlan {
    let Some(u) = spec else {
        return UpstreamPlan::None;
    };
    for (field, rate) in [
        ("upstream.error_rate", u.error_rate),
        ("upstream.stall_rate", u.stall_rate),
    ] {
        if let Some(r) = rate
            && !(0.0..=1.0).contains(&r)
        {
            problems.push(problem(field, format!("is {r}: give a share between 0 and 1")));
        }
    }
    match (&u.url, u.spawn) {
        (Some(_), true) => {
            problems.push(problem("upstream.url", "give either `url` or `spawn = true`, not both"));
            UpstreamPlan::None
        }
        (Some(url), false) => {
            if !url.starts_with("http://") || reqwest::Url::parse(url).is_err() {
                problems.push(problem("upstream.url", format!("{url:?} is not an http:// URL")));
            }
            let knobs = [
                ("upstream.tools", u.tools.is_some()),
                ("upstream.latency", u.latency.is_some()),
                ("upstream.initialize_latency", u.initialize_latency.is_some()),
                ("upstream.error_rate", u.error_rate.is_some()),
                ("upstream.stall_rate", u.stall_rate.is_some()),
                ("upstream.sse_replies", u.sse_replies),
                ("upstream.list_changed_every", u.list_changed_every.is_some()),
            ];
            for (field, given) in knobs {
                if given {
                    problems.push(problem(field, "applies only to a spawned upstream (`spawn = true`)"));
                }
            }
            UpstreamPlan::Url(url.trim_end_matches('/').to_owned())
        }
        (None, true) => UpstreamPlan::Spawn(crate::upstream_server::Knobs {
            tools: u.tools.unwrap_or(0),
            latency: u.latency.unwrap_or_default(),
            initialize_latency: u.initialize_latency.unwrap_or_default(),
            error_rate: u.error_rate.unwrap_or(0.0),
            stall_rate: u.stall_rate.unwrap_or(0.0),
            sse_replies: u.sse_replies,
            // Spawned here, it is reached from this machine only.
            allowed_origins: Vec::new(),
            list_changed_every: u.list_changed_every.map(|d| d.0),
            conformance: false,
        }),
        (None, false) => {
            problems.push(problem("upstream", "needs `spawn = true` or `url = \"http://…\"`"));
            UpstreamPlan::None
        }
    }
}

fn check_setup_provides(
    setup: &SetupSpec,
    has_upstream: bool,
    actions: &[(usize, Action)],
    problems: &mut Vec<Problem>,
) {
    if setup.tools_from != ToolsFrom::Rest && !(has_upstream && setup.gateways > 0) {
        problems.push(problem(
            "setup.tools_from",
            "federated tools need gateways (setup.gateways) and an [upstream] for them to federate",
        ));
    }
    for (i, action) in actions {
        if !has_upstream && action.vars().contains(&Var::UpstreamUrl) {
            problems.push(problem(
                format!("actions[{i}]"),
                "uses {upstream_url} but there is no [upstream] (set upstream.spawn = true)",
            ));
        }
    }
    if setup.mode == SetupMode::Discover {
        return; // known only once the target has been listed
    }
    for (i, action) in actions {
        for var in action.vars() {
            if let Some((0, kind)) = seeded(setup, var) {
                problems.push(problem(
                    format!("actions[{i}]"),
                    format!(
                        "uses {{{}}} but [setup] seeds no {kind} (set setup.{kind} or mode = \"discover\")",
                        var.name()
                    ),
                ));
            }
        }
    }
}
