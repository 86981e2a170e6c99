//! Action kinds: what one entry of `[[actions]]` does. Each kind is one module owning all of itself —
//! the fields it reads, its checks and default name, the template variables it uses, and how it runs
//! and records — behind the `Kind` trait. The engine and the scenario see only `ActionPlan`, which
//! the `kinds!` list below generates; adding a kind is its module plus one line there (and its fields
//! in `spec.rs` and the scenario schema). See ARCHITECTURE.md, "How to add an action kind".
//!
//! Layering: this module imports the scenario language (`lang`), the recorder and the transport; the
//! scenario imports it to plan, the engine to run. Neither is imported from here.

pub mod conn;
mod events;
mod fixed;
mod http;
mod jsonrpc;
mod mcp;
mod request;
mod rpc;
mod spec;
mod sse;

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::lang::{Problem, Values, Var, problem};
use crate::record::{Outcome, Recorder};
pub use fixed::FixedRequest;
pub use http::{OkStatuses, header};
pub use request::Scratch;
pub use spec::{ActionSpec, CloseMode, SseRequestSpec};

/// What an action kind provides. Planning runs once per `[[actions]]` entry at validation; `run`
/// runs per iteration on the hot path, so it renders into `Scratch` and allocates nothing it can
/// avoid.
pub trait Kind: Sized {
    /// The kind-specific fields of `ActionSpec` this kind reads (`ActionSpec::given` names them).
    const FIELDS: &'static [&'static str];

    /// Check the entry and build the plan; every problem goes to `problems` with its field.
    fn plan(spec: &ActionSpec, at: At, problems: &mut Vec<Problem>) -> Option<Self>;

    /// The name when the entry gives none (`GET /tools`, `rpc tools/list`, `sse /sse`).
    fn default_name(spec: &ActionSpec) -> String;

    /// The template variables the action draws (so the scenario can check setup provides them).
    fn vars(&self, vars: &mut BTreeSet<Var>);

    /// The series the action records besides its own, as suffixes of its name (an SSE session's
    /// `reply`, an MCP session's methods); `Slots::extra(i)` is the slot of the i-th.
    fn series(&self) -> Vec<String> {
        Vec::new()
    }

    /// The whole request, when every run sends the same one and only its status judges it: the
    /// direct loop (`engine/direct`) then runs the action without `run`.
    fn fixed(&self, _env: &Env) -> Option<FixedRequest> {
        None
    }

    /// Run once; `intended` is when it should have started (open model) or started (closed).
    fn run(
        &self,
        env: &Env,
        slots: Slots,
        values: &mut (impl Values + Send),
        scratch: &mut Scratch,
        intended: Instant,
    ) -> impl Future<Output = Ended> + Send;
}

/// Generates `ActionKind` (the `kind = "…"` of the file) and `ActionPlan` (one variant per kind) and
/// their dispatch from one list, so a kind is registered in one line.
macro_rules! kinds {
    ($($variant:ident = $name:literal => $ty:ty),+ $(,)?) => {
        /// The kind of an action, as `kind = "…"` names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum ActionKind {
            $(#[serde(rename = $name)] $variant),+
        }

        impl ActionKind {
            pub fn name(self) -> &'static str {
                match self { $(ActionKind::$variant => $name),+ }
            }

            fn fields(self) -> &'static [&'static str] {
                match self { $(ActionKind::$variant => <$ty as Kind>::FIELDS),+ }
            }

            fn default_name(self, spec: &ActionSpec) -> String {
                match self { $(ActionKind::$variant => <$ty as Kind>::default_name(spec)),+ }
            }

            fn plan(self, spec: &ActionSpec, at: At, problems: &mut Vec<Problem>) -> Option<ActionPlan> {
                match self {
                    $(ActionKind::$variant => <$ty as Kind>::plan(spec, at, problems).map(ActionPlan::$variant)),+
                }
            }
        }

        /// A planned action of one kind.
        #[derive(Debug, Clone)]
        pub enum ActionPlan {
            $($variant($ty)),+
        }

        impl ActionPlan {
            pub fn kind(&self) -> ActionKind {
                match self { $(ActionPlan::$variant(_) => ActionKind::$variant),+ }
            }

            fn vars(&self, vars: &mut BTreeSet<Var>) {
                match self { $(ActionPlan::$variant(k) => k.vars(vars)),+ }
            }

            fn series(&self) -> Vec<String> {
                match self { $(ActionPlan::$variant(k) => k.series()),+ }
            }

            pub fn fixed(&self, env: &Env) -> Option<FixedRequest> {
                match self { $(ActionPlan::$variant(k) => k.fixed(env)),+ }
            }

            pub async fn run(
                &self,
                env: &Env,
                slots: Slots,
                values: &mut (impl Values + Send),
                scratch: &mut Scratch,
                intended: Instant,
            ) -> Ended {
                match self { $(ActionPlan::$variant(k) => k.run(env, slots, values, scratch, intended).await),+ }
            }
        }
    };
}

kinds! {
    Http = "http" => http::Http,
    Rpc = "rpc" => rpc::Rpc,
    Sse = "sse" => sse::Sse,
    Mcp = "mcp" => mcp::Mcp,
}

/// A planned action: its name (also its series in the results), weight and plan.
#[derive(Debug, Clone)]
pub struct Action {
    pub name: String,
    pub weight: u32,
    pub plan: ActionPlan,
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        self.plan.kind()
    }

    pub fn vars(&self) -> BTreeSet<Var> {
        let mut vars = BTreeSet::new();
        self.plan.vars(&mut vars);
        vars
    }

    /// The action's series besides its own, as suffixes (`"<name> reply"`).
    pub fn series(&self) -> Vec<String> {
        self.plan.series()
    }
}

/// The place of an entry in the file, for problems: `actions[2].path`.
#[derive(Debug, Clone, Copy)]
pub struct At(pub usize);

impl At {
    pub fn field(self, field: &str) -> String {
        format!("actions[{}].{field}", self.0)
    }
}

/// Plan every `[[actions]]` entry; answer those that planned, each with its index in the file (an
/// entry with a problem is left out, so positions in the answer are not indices in the file).
pub fn plan_all(specs: &[ActionSpec], problems: &mut Vec<Problem>) -> Vec<(usize, Action)> {
    if specs.is_empty() {
        problems.push(problem("actions", "needs at least one [[actions]] entry"));
    } else if specs.iter().map(|a| u64::from(a.weight)).sum::<u64>() == 0 {
        problems.push(problem(
            "actions",
            "the weights sum to 0: give at least one action a weight above 0",
        ));
    }
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for (i, a) in specs.iter().enumerate() {
        let at = At(i);
        let before = problems.len();
        let fields = a.kind.fields();
        for (field, given) in a.given() {
            if given && !fields.contains(&field) {
                problems.push(problem(
                    at.field(field),
                    format!("does not apply to kind = \"{}\"", a.kind.name()),
                ));
            }
        }
        let plan = a.kind.plan(a, at, problems);
        let name = if a.name.is_empty() {
            a.kind.default_name(a)
        } else {
            a.name.clone()
        };
        if !names.insert(name.clone()) {
            problems.push(problem(
                at.field("name"),
                format!("{name:?} is used by another action; names must be unique"),
            ));
        }
        if let (Some(plan), true) = (plan, problems.len() == before) {
            out.push((
                i,
                Action {
                    name,
                    weight: a.weight,
                    plan,
                },
            ));
        }
    }
    out
}

/// What a running action reaches: the target, the shared recorder, the end of the load.
pub struct Env {
    /// The target's base URL (`http://host:port[/prefix]`), for clients that take whole URLs.
    pub base: String,
    /// The base URL's path (usually empty), which request targets start with.
    pub base_path: String,
    pub rpc_path: String,
    /// Where the request loop's own connections go.
    pub endpoint: conn::Endpoint,
    pub token: Option<String>,
    /// With the target's token, for the target's origin only (setup, teardown, SSE message posts).
    pub http: reqwest::Client,
    /// Without credentials: the observers' scrapes, which may be anywhere.
    pub scrape_http: reqwest::Client,
    pub recorder: Recorder,
    pub timeout: Duration,
    /// End of the load: a held stream lets go.
    pub soft_stop: watch::Receiver<bool>,
    /// The same end as a flag, for the loops that only ask whether it came: a load of a line no core
    /// writes until then, where borrowing the channel takes its lock (a cache line both cores write).
    pub load_ended: std::sync::atomic::AtomicBool,
}

/// Recording slots of an action: its own series, and those of `Kind::series` (consecutive).
#[derive(Debug, Clone, Copy)]
pub struct Slots {
    pub main: usize,
    first_extra: usize,
    extra: usize,
}

impl Slots {
    pub fn new(main: usize, first_extra: usize, extra: usize) -> Slots {
        Slots {
            main,
            first_extra,
            extra,
        }
    }

    /// The slot of the action's i-th extra series.
    pub fn extra(&self, i: usize) -> Option<usize> {
        (i < self.extra).then(|| self.first_extra + i)
    }
}

/// What the engine needs to know about an action's end besides the sample it recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Done(Outcome),
    /// The target could not be reached: the caller backs off.
    Unreachable,
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
