//! Before the load: seed entities through the API, or discover the ones the target has, so templates
//! like `{tool_id}` have values. Works against any gateway with the docs/api.md surface.

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::scenario::{GatewayTransport, Scenario, SetupMode, SetupSpec, ToolsFrom, Values, Var};

/// Ids (and names) the load draws from.
#[derive(Debug, Clone, Default)]
pub struct Pools {
    pub gateways: Vec<String>,
    /// (id, name)
    pub tools: Vec<(String, String)>,
    pub servers: Vec<String>,
    pub prompts: Vec<(String, String)>,
    /// (id, uri)
    pub resources: Vec<(String, String)>,
    /// Seeded by this run (not discovered) and not asked to be kept: teardown deletes them.
    pub remove_after: bool,
    /// The run's upstream MCP server, empty when there is none.
    pub upstream_url: String,
}

impl Pools {
    fn len_for(&self, var: Var) -> usize {
        match var {
            Var::GatewayId => self.gateways.len(),
            Var::ToolId | Var::ToolName => self.tools.len(),
            Var::ServerId => self.servers.len(),
            Var::PromptId | Var::PromptName => self.prompts.len(),
            Var::ResourceId | Var::ResourceUri => self.resources.len(),
            Var::Bool | Var::Unique => 2,
            Var::UpstreamUrl => usize::from(!self.upstream_url.is_empty()),
        }
    }

    /// Every variable the actions use must have at least one value.
    pub fn check(&self, scenario: &Scenario) -> anyhow::Result<()> {
        for action in &scenario.actions {
            for var in action.vars() {
                if self.len_for(var) == 0 {
                    bail!(
                        "action {:?} uses {{{}}} but the target has none to offer",
                        action.name,
                        var.name()
                    );
                }
            }
        }
        Ok(())
    }

    pub fn counts(&self) -> Value {
        json!({
            "gateways": self.gateways.len(),
            "tools": self.tools.len(),
            "servers": self.servers.len(),
            "prompts": self.prompts.len(),
            "resources": self.resources.len(),
        })
    }
}

/// Draws template values at random from the pools.
pub struct PoolValues<'a> {
    pub pools: &'a Pools,
    pub rng: &'a mut fastrand::Rng,
    /// Where `{unique}` is written.
    pub unique: [u8; 16],
}

impl Values for PoolValues<'_> {
    fn value(&mut self, var: Var) -> &str {
        let p = self.pools;
        let pick = |rng: &mut fastrand::Rng, n: usize| rng.usize(0..n.max(1));
        match var {
            Var::GatewayId => &p.gateways[pick(self.rng, p.gateways.len())],
            Var::ToolId => &p.tools[pick(self.rng, p.tools.len())].0,
            Var::ToolName => &p.tools[pick(self.rng, p.tools.len())].1,
            Var::ServerId => &p.servers[pick(self.rng, p.servers.len())],
            Var::PromptId => &p.prompts[pick(self.rng, p.prompts.len())].0,
            Var::PromptName => &p.prompts[pick(self.rng, p.prompts.len())].1,
            Var::ResourceId => &p.resources[pick(self.rng, p.resources.len())].0,
            Var::ResourceUri => &p.resources[pick(self.rng, p.resources.len())].1,
            Var::UpstreamUrl => &p.upstream_url,
            Var::Bool => {
                if self.rng.bool() {
                    "true"
                } else {
                    "false"
                }
            }
            Var::Unique => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut n = self.rng.u64(..);
                for b in self.unique.iter_mut() {
                    *b = HEX[(n & 15) as usize];
                    n >>= 4;
                }
                std::str::from_utf8(&self.unique).expect("hex digits")
            }
        }
    }
}

/// Seed or discover; `upstream` is the run's upstream MCP server, which seeded gateways federate and
/// seeded REST tools call.
pub async fn prepare(
    http: &reqwest::Client,
    base: &str,
    scenario: &Scenario,
    upstream: Option<&str>,
) -> anyhow::Result<Pools> {
    let tag = seed_tag(scenario);
    let mut pools = match scenario.setup.mode {
        // Setup once: the first shard seeds, the others use what it made.
        SetupMode::Seed if scenario.shard.index > 1 && seeds_anything(&scenario.setup) => {
            join_seed(http, base, scenario, &tag, upstream.is_some()).await?
        }
        SetupMode::Seed => seed(http, base, &scenario.setup, upstream, &tag).await?,
        SetupMode::Discover => discover(http, base).await?,
    };
    pools.upstream_url = upstream.unwrap_or_default().to_owned();
    pools.check(scenario)?;
    Ok(pools)
}

/// Whether a seeded setup creates anything at all.
pub fn seeds_anything(s: &SetupSpec) -> bool {
    s.mode == SetupMode::Seed && s.gateways + s.tools + s.servers + s.prompts + s.resources > 0
}

/// The prefix of what a run seeds (`st-<tag>-tool-3`), so runs sharing a target do not collide. The
/// shards of one run share it — it comes from their common start — so the others can find the first
/// one's seed; a lone run draws one at random.
fn seed_tag(scenario: &Scenario) -> String {
    match scenario.start_at.filter(|_| !scenario.shard.is_whole()) {
        Some(at) => {
            let ms = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
            format!("{:08x}", fastrand::Rng::with_seed(ms).u32(..))
        }
        None => uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
    }
}

/// A shard after the first: wait (up to `--setup-wait`) until the first shard's whole seed is listed,
/// then draw from exactly it, as the first shard does. Nothing is deleted after the run: the seed is the
/// first shard's.
async fn join_seed(
    http: &reqwest::Client,
    base: &str,
    scenario: &Scenario,
    tag: &str,
    federates: bool,
) -> anyhow::Result<Pools> {
    let s = &scenario.setup;
    let deadline = tokio::time::Instant::now() + scenario.setup_wait;
    let prefix = format!("st-{tag}-");
    let ours = |v: &Value, kind: &str| {
        v["name"]
            .as_str()
            .is_some_and(|n| n.contains(&format!("{prefix}{kind}-")))
    };
    loop {
        let gateways: Vec<String> = list_all(http, base, "gateways")
            .await?
            .iter()
            .filter(|g| ours(g, "gateway"))
            .filter_map(|g| g["id"].as_str().map(str::to_owned))
            .collect();
        let tools = list_all(http, base, "tools").await?;
        let pair = |v: &Value, field: &str| Some((v["id"].as_str()?.to_owned(), v[field].as_str()?.to_owned()));
        let rest: Vec<(String, String)> = tools
            .iter()
            .filter(|t| ours(t, "tool"))
            .filter_map(|t| pair(t, "name"))
            .collect();
        let federated: Vec<(String, String)> = tools
            .iter()
            .filter(|t| !ours(t, "tool"))
            .filter(|t| {
                t["gatewayId"]
                    .as_str()
                    .is_some_and(|g| gateways.iter().any(|id| id == g))
            })
            .filter_map(|t| pair(t, "name"))
            .collect();
        let servers: Vec<String> = list_all(http, base, "servers")
            .await?
            .iter()
            .filter(|v| ours(v, "server"))
            .filter_map(|v| v["id"].as_str().map(str::to_owned))
            .collect();
        let prompts: Vec<(String, String)> = list_all(http, base, "prompts")
            .await?
            .iter()
            .filter(|v| ours(v, "prompt"))
            .filter_map(|v| pair(v, "name"))
            .collect();
        let resources: Vec<(String, String)> = list_all(http, base, "resources")
            .await?
            .iter()
            .filter(|v| {
                v["uri"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(&format!("stampede://{tag}/")))
            })
            .filter_map(|v| pair(v, "uri"))
            .collect();
        // Every gateway federating (when they do) and every kind complete: the seed is done.
        let federating: std::collections::HashSet<&str> = tools
            .iter()
            .filter(|t| !ours(t, "tool"))
            .filter_map(|t| t["gatewayId"].as_str())
            .collect();
        let each_gateway_federates =
            !federates || s.tools_from == ToolsFrom::Rest || gateways.iter().all(|g| federating.contains(g.as_str()));
        let done = gateways.len() == s.gateways as usize
            && rest.len() == s.tools as usize
            && servers.len() == s.servers as usize
            && prompts.len() == s.prompts as usize
            && resources.len() == s.resources as usize
            && each_gateway_federates;
        if done {
            let tools = match (federates, s.tools_from) {
                (false, _) | (_, ToolsFrom::Rest) => rest,
                (true, ToolsFrom::Federated) => federated,
                (true, ToolsFrom::All) => rest.into_iter().chain(federated).collect(),
            };
            return Ok(Pools {
                gateways,
                tools,
                servers,
                prompts,
                resources,
                remove_after: false,
                upstream_url: String::new(),
            });
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "setup: shard {} waited {} for the first shard's seed (names st-{tag}-…) and it is not all there: \
                 {} of {} gateways, {} of {} tools, {} of {} servers, {} of {} prompts, {} of {} resources; \
                 is shard 1 running against {base} with the same --start-at?",
                scenario.shard,
                crate::lang::format_duration(scenario.setup_wait),
                gateways.len(),
                s.gateways,
                rest.len(),
                s.tools,
                servers.len(),
                s.servers,
                prompts.len(),
                s.prompts,
                resources.len(),
                s.resources
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// What to do about a 401/403 from the target: say how a scenario carries a token.
fn auth_hint(status: reqwest::StatusCode) -> &'static str {
    match status.as_u16() {
        401 | 403 => {
            " — the gateway wants a bearer token: set target.token, target.token_env (a variable holding \
             it) or target.jwt_secret_env (a variable holding the JWT secret, to mint one), e.g. \
             --set target.token_env=MCPGATEWAY_BEARER_TOKEN"
        }
        _ => "",
    }
}

/// What to do about a gateway registration the target refused as bad gateway: it federates for real,
/// so the gateway needs an upstream MCP server that answers.
fn federation_hint(url: &str, status: reqwest::StatusCode) -> &'static str {
    if url.ends_with("/gateways") && !status.is_success() && !matches!(status.as_u16(), 401 | 403) {
        " — registering a gateway makes the target connect to its upstream: give the run one with \
         [upstream] spawn = true (--set upstream.spawn=true: stampede's own upstream MCP server) or url = an \
         upstream that answers; or start the target gateway with GATEWAY_ACTIVATION_IO_MS=0 to simulate \
         the upstream, as scenarios that set it in target.env do for a gateway stampede spawns (target.env \
         does not reach a gateway given by URL)"
    } else {
        ""
    }
}

/// GET a JSON answer; anything but success names the request and, for 401/403, how to give a token.
async fn get(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let resp = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("setup: GET {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        bail!("setup: GET {url} answered {status}{}", auth_hint(status));
    }
    resp.json().await.with_context(|| format!("setup: GET {url}: not JSON"))
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> anyhow::Result<Value> {
    let resp = http
        .post(&url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("setup: POST {url}"))?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!(
            "setup: POST {url} answered {status}: {text}{}{}",
            auth_hint(status),
            federation_hint(&url, status)
        );
    }
    serde_json::from_str(&text).with_context(|| format!("setup: POST {url}: not JSON: {text}"))
}

fn id_of(v: &Value) -> anyhow::Result<String> {
    v["id"]
        .as_str()
        .map(str::to_owned)
        .context("setup: created entity has no id")
}

/// How long a target may take to list the tools of a gateway it was just given.
const FEDERATION_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Wait until the target lists, for every gateway, the tools it federates from the upstream; answer
/// them all as (id, name). A gateway that lists none in time is named.
async fn federated_tools(
    http: &reqwest::Client,
    base: &str,
    gateways: &[String],
) -> anyhow::Result<Vec<(String, String)>> {
    let deadline = tokio::time::Instant::now() + FEDERATION_WAIT;
    let mut all = Vec::new();
    for id in gateways {
        let url = format!("{base}/tools?gateway_id={id}&include_inactive=true");
        loop {
            let listed = get(http, &url).await?;
            let tools: Vec<(String, String)> = listed
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| Some((t["id"].as_str()?.to_owned(), t["name"].as_str()?.to_owned())))
                .collect();
            if !tools.is_empty() {
                all.extend(tools);
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "setup: gateway {id} lists no tools of its upstream after {} s (GET {url}): the target did \
                     not federate it",
                    FEDERATION_WAIT.as_secs()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
    Ok(all)
}

/// The name the target gave what was created: a gateway may rename it (ContextForge prefixes a tool or
/// prompt of a gateway with the gateway's slug), and `{tool_name}` must be the name it answers to.
fn name_of(created: &Value, sent: String) -> String {
    created["name"].as_str().map_or(sent, str::to_owned)
}

/// Create the entities, a few requests at a time; names carry a run prefix so runs do not collide.
async fn seed(
    http: &reqwest::Client,
    base: &str,
    s: &SetupSpec,
    upstream: Option<&str>,
    tag: &str,
) -> anyhow::Result<Pools> {
    let mut pools = Pools {
        remove_after: s.teardown,
        ..Pools::default()
    };
    match seed_into(&mut pools, http, base, s, upstream, tag).await {
        Ok(()) => Ok(pools),
        Err(e) => {
            // Nothing partial left unsaid: what was created before the failure is deleted (unless the
            // scenario keeps its seed), and the error says so.
            let created = pools.gateways.len()
                + pools.tools.len()
                + pools.servers.len()
                + pools.prompts.len()
                + pools.resources.len();
            if created == 0 {
                return Err(e);
            }
            if !pools.remove_after {
                return Err(e.context(format!("setup: {created} entities created before this are kept")));
            }
            let problems = teardown(http, base, &pools).await;
            Err(if problems.is_empty() {
                e.context(format!(
                    "setup: the {created} entities created before this were deleted"
                ))
            } else {
                e.context(format!(
                    "setup: of the {created} entities created before this, some could not be deleted: {}",
                    problems.join("; ")
                ))
            })
        }
    }
}

async fn seed_into(
    pools: &mut Pools,
    http: &reqwest::Client,
    base: &str,
    s: &SetupSpec,
    upstream: Option<&str>,
    run: &str,
) -> anyhow::Result<()> {
    // Gateways federate the upstream when there is one — each at its own URL (a query the upstream
    // ignores), since a gateway may refuse two registrations of one URL, as ContextForge does; else
    // they point at the target's own health check, which a gateway that does not federate accepts.
    let (gateway_url, transport) = match upstream {
        Some(u) => (format!("{u}{}", s.gateway_transport.path()), s.gateway_transport),
        None => (format!("{base}/health"), GatewayTransport::Sse),
    };
    let gateway_url = |i: u32| match upstream {
        Some(_) => format!("{gateway_url}?gateway={i}"),
        None => gateway_url.clone(),
    };
    // REST tools call the upstream's echo endpoint when there is one.
    let rest_url = upstream.map(|u| format!("{u}/rest/echo"));
    for i in 0..s.gateways {
        let g = post(
            http,
            format!("{base}/gateways"),
            json!({"name": format!("st-{run}-gateway-{i}"), "url": gateway_url(i), "transport": transport.name()}),
        )
        .await?;
        pools.gateways.push(id_of(&g)?);
    }
    let federated = match upstream {
        Some(_) => federated_tools(http, base, &pools.gateways).await?,
        None => Vec::new(),
    };
    let gateway_of = |i: u32, pools: &Pools| -> Value {
        if pools.gateways.is_empty() {
            Value::Null
        } else {
            Value::String(pools.gateways[i as usize % pools.gateways.len()].clone())
        }
    };
    // Tools go in batches of concurrent requests: hundreds of them should not take long.
    let mut i = 0;
    while i < s.tools {
        let batch: Vec<_> = (i..(i + 16).min(s.tools))
            .map(|t| {
                let name = format!("st-{run}-tool-{t}");
                let body = json!({"tool": {"name": name, "description": "seeded by stampede",
                    "integration_type": "REST", "request_type": "POST", "url": rest_url,
                    "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
                    "gateway_id": gateway_of(t, pools)}});
                let fut = post(http, format!("{base}/tools"), body);
                async move { fut.await.and_then(|v| Ok((id_of(&v)?, name_of(&v, name)))) }
            })
            .collect();
        // Every tool the batch created is recorded before a failure in it is answered, so a failed
        // setup deletes them too.
        let mut failed = None;
        for tool in futures_util::future::join_all(batch).await {
            match tool {
                Ok(t) => pools.tools.push(t),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        i += 16;
    }
    // What `{tool_id}` and `{tool_name}` draw from; servers associate the seeded REST tools (or, with
    // none, these).
    match s.tools_from {
        ToolsFrom::Rest => {}
        ToolsFrom::Federated => pools.tools = federated,
        ToolsFrom::All => pools.tools.extend(federated),
    }
    for n in 0..s.servers {
        let mut rng = fastrand::Rng::with_seed(u64::from(n));
        let take = (s.tools_per_server as usize).min(pools.tools.len());
        let tools: Vec<&str> = rng
            .choose_multiple(pools.tools.iter(), take)
            .into_iter()
            .map(|(id, _)| id.as_str())
            .collect();
        let v = post(
            http,
            format!("{base}/servers"),
            json!({"server": {"name": format!("st-{run}-server-{n}"), "associated_tools": tools}}),
        )
        .await?;
        pools.servers.push(id_of(&v)?);
    }
    for n in 0..s.prompts {
        let name = format!("st-{run}-prompt-{n}");
        let v = post(
            http,
            format!("{base}/prompts"),
            json!({"prompt": {"name": name, "template": "Hello {{name}}", "arguments": [{"name": "name", "required": false}],
                   "gateway_id": gateway_of(n, pools)}}),
        )
        .await?;
        pools.prompts.push((id_of(&v)?, name_of(&v, name)));
    }
    for n in 0..s.resources {
        let uri = format!("stampede://{run}/resource/{n}");
        let v = post(
            http,
            format!("{base}/resources"),
            json!({"resource": {"uri": uri, "name": format!("resource {n}"), "content": "seeded by stampede",
                   "mimeType": "text/plain", "gateway_id": gateway_of(n, pools)}}),
        )
        .await?;
        pools.resources.push((id_of(&v)?, uri));
    }
    Ok(())
}

/// After the run: delete what `seed` created — servers first (they refer to tools), gateways last — so
/// runs against one database start alike. Without it a shared database grows by a seed per run, and
/// list latencies drift upwards run after run (a baseline's spread would be that drift). Answers what
/// could not be deleted; never fails the run.
pub async fn teardown(http: &reqwest::Client, base: &str, pools: &Pools) -> Vec<String> {
    if !pools.remove_after {
        return Vec::new();
    }
    let kinds: [(&str, Vec<&str>); 5] = [
        ("servers", pools.servers.iter().map(String::as_str).collect()),
        ("tools", pools.tools.iter().map(|(id, _)| id.as_str()).collect()),
        ("prompts", pools.prompts.iter().map(|(id, _)| id.as_str()).collect()),
        ("resources", pools.resources.iter().map(|(id, _)| id.as_str()).collect()),
        ("gateways", pools.gateways.iter().map(String::as_str).collect()),
    ];
    let mut problems = Vec::new();
    // One at a time: on SQLite concurrent writes are refused with 409 (no busy wait in the fixed
    // profile); a 409 left by a write still in flight is retried a few times.
    for (kind, ids) in kinds {
        for id in ids {
            let url = format!("{base}/{kind}/{id}");
            let mut attempt = 0;
            let problem = loop {
                attempt += 1;
                match http.delete(&url).send().await {
                    Ok(r) if r.status().is_success() || r.status() == reqwest::StatusCode::NOT_FOUND => break None,
                    Ok(r) if r.status() == reqwest::StatusCode::CONFLICT && attempt < 5 => {
                        tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
                    }
                    Ok(r) => break Some(format!("DELETE {url}: {}", r.status())),
                    Err(e) => break Some(format!("DELETE {url}: {e}")),
                }
            };
            problems.extend(problem);
        }
    }
    problems
}

/// List every kind (inactive ones included), following cursors, up to 10,000 of each.
async fn discover(http: &reqwest::Client, base: &str) -> anyhow::Result<Pools> {
    let mut pools = Pools::default();
    for kind in ["gateways", "tools", "servers", "prompts", "resources"] {
        let items = list_all(http, base, kind).await?;
        for item in items {
            let Some(id) = item["id"].as_str().map(str::to_owned) else {
                continue;
            };
            let name = item["name"].as_str().unwrap_or_default().to_owned();
            match kind {
                "gateways" => pools.gateways.push(id),
                "tools" => pools.tools.push((id, name)),
                "servers" => pools.servers.push(id),
                "prompts" => pools.prompts.push((id, name)),
                _ => pools
                    .resources
                    .push((id, item["uri"].as_str().unwrap_or_default().to_owned())),
            }
        }
    }
    Ok(pools)
}

async fn list_all(http: &reqwest::Client, base: &str, kind: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    while out.len() < 10_000 {
        let mut url = format!("{base}/{kind}?include_inactive=true&include_pagination=true&limit=500");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = get(http, &url).await?;
        match page {
            // A gateway without pagination answers the bare list.
            Value::Array(items) => {
                out.extend(items);
                break;
            }
            Value::Object(mut obj) => {
                if let Some(Value::Array(items)) = obj.remove(kind) {
                    out.extend(items);
                }
                match obj.get("nextCursor").and_then(Value::as_str) {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            _ => bail!("setup: GET {url}: neither a list nor a page"),
        }
    }
    Ok(out)
}
