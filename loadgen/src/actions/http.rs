//! `kind = "http"`: one REST request — a method, a path template, headers, an optional body (a JSON
//! template, or text sent as written) — judged by its status (`ok`, `expected`).

use std::collections::BTreeSet;

use tokio::time::Instant;

use super::conn::wire;
use super::fixed::{FixedRequest, NoValues};
use super::request::{self, Judge, Scratch, render};
use super::{ActionSpec, At, Ended, Env, Kind, Slots};
use crate::lang::{Context, Problem, Template, Values, Var, json_template, problem};

#[derive(Debug, Clone)]
pub struct Http {
    pub method: reqwest::Method,
    pub path: Template,
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
    pub ok: OkStatuses,
    pub expected: Vec<u16>,
}

/// What a request carries.
#[derive(Debug, Clone)]
pub enum Body {
    /// A JSON document whose strings may hold templates.
    Json(Template),
    /// Text sent as written (`-d`/`-D` of the ad-hoc mode, a string `body` in a scenario).
    Text(String),
}

/// A header as written: `Name: value` (or `name = "value"` in a scenario), checked here so a request
/// cannot be split by a stray line break.
pub fn header(name: &str, value: &str) -> Result<(String, String), String> {
    let name = name.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return Err(format!("{name:?} is not a header name"));
    }
    if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("content-length") {
        return Err(format!("{name} is set by stampede itself"));
    }
    if value.contains(['\r', '\n']) {
        return Err(format!("the value of {name} holds a line break"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// Which statuses make an outcome ok.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OkStatuses {
    AnySuccess,
    Only(Vec<u16>),
    /// One status (a JSON-RPC answer's 200), without a list to allocate.
    Exactly(u16),
}

impl OkStatuses {
    pub fn contains(&self, status: u16) -> bool {
        match self {
            OkStatuses::AnySuccess => (200..300).contains(&status),
            OkStatuses::Only(list) => list.contains(&status),
            OkStatuses::Exactly(s) => *s == status,
        }
    }
}

/// A path template (`/tools/{tool_id}`): it must start with '/'.
pub fn url_template(at: At, field: &str, text: &str, problems: &mut Vec<Problem>) -> Option<Template> {
    if !text.starts_with('/') {
        problems.push(problem(at.field(field), format!("{text:?} must start with '/'")));
    }
    Template::parse(text, Context::Url)
        .map_err(|e| problems.push(problem(at.field(field), e)))
        .ok()
}

impl Kind for Http {
    const FIELDS: &'static [&'static str] = &["method", "path", "body", "headers", "ok", "expected"];

    fn plan(a: &ActionSpec, at: At, problems: &mut Vec<Problem>) -> Option<Self> {
        let method = a.method.as_deref().unwrap_or("GET");
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| problems.push(problem(at.field("method"), format!("{method:?} is not an HTTP method"))))
            .ok();
        let path = match &a.path {
            Some(p) => url_template(at, "path", p, problems),
            None => {
                problems.push(problem(at.field("path"), "is required for kind = \"http\""));
                None
            }
        };
        let body = a.body.as_ref().and_then(|b| match b {
            serde_json::Value::String(text) => Some(Body::Text(text.clone())),
            json => json_template(json)
                .map(Body::Json)
                .map_err(|e| problems.push(problem(at.field("body"), e)))
                .ok(),
        });
        let mut headers = Vec::new();
        for (name, value) in a.headers.iter().flatten() {
            match header(name, value) {
                Ok(h) => headers.push(h),
                Err(e) => problems.push(problem(at.field(&format!("headers.{name}")), e)),
            }
        }
        Some(Http {
            method: method?,
            path: path?,
            headers,
            body,
            ok: a.ok.clone().map_or(OkStatuses::AnySuccess, OkStatuses::Only),
            expected: a.expected.clone().unwrap_or_default(),
        })
    }

    fn default_name(a: &ActionSpec) -> String {
        format!(
            "{} {}",
            a.method.as_deref().unwrap_or("GET").to_ascii_uppercase(),
            a.path.as_deref().unwrap_or("")
        )
    }

    fn vars(&self, vars: &mut BTreeSet<Var>) {
        vars.extend(self.path.vars());
        if let Some(Body::Json(b)) = &self.body {
            vars.extend(b.vars());
        }
    }

    fn fixed(&self, env: &Env) -> Option<FixedRequest> {
        let mut vars = BTreeSet::new();
        self.vars(&mut vars);
        if !vars.is_empty() {
            return None;
        }
        let mut path = String::new();
        render(&mut path, &env.base_path, &self.path, &mut NoValues);
        let body = self.body.as_ref().map(|b| match b {
            Body::Json(t) => {
                let mut s = String::new();
                t.render_into(&mut s, &mut NoValues);
                s
            }
            Body::Text(text) => text.clone(),
        });
        let mut bytes = Vec::new();
        wire::render_request(
            &mut bytes,
            &env.endpoint,
            self.method.as_str(),
            &path,
            &self.headers,
            body.as_deref(),
        );
        Some(FixedRequest {
            bytes,
            head: self.method == reqwest::Method::HEAD,
            ok: self.ok.clone(),
            expected: self.expected.clone(),
        })
    }

    async fn run(
        &self,
        env: &Env,
        slots: Slots,
        values: &mut (impl Values + Send),
        scratch: &mut Scratch,
        intended: Instant,
    ) -> Ended {
        render(&mut scratch.url, &env.base_path, &self.path, values);
        match &self.body {
            Some(Body::Json(body)) => {
                scratch.body.clear();
                body.render_into(&mut scratch.body, values);
            }
            // Copied into the buffer the request is written from; no allocation once warm.
            Some(Body::Text(text)) => {
                scratch.body.clear();
                scratch.body.push_str(text);
            }
            None => {}
        }
        let judge = Judge {
            ok: &self.ok,
            expected: &self.expected,
            rpc_expected_errors: None,
        };
        request::exchange(
            env,
            slots.main,
            self.method.as_str(),
            &self.headers,
            self.body.is_some(),
            &judge,
            scratch,
            intended,
        )
        .await
    }
}
