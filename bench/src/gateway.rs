//! The reference gateway's part of the bench: what it is seeded with, the endpoints driven at it (every
//! REST list and get, `/rpc tools/list`, and on PostgreSQL the REST writes), and the statements
//! PostgreSQL runs per request, counted by `pg_stat_statements` around each run.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::proc::Server;
use crate::tools::Tools;

/// Endpoints driven at every concurrency of the gateway section (the first round's rows).
pub fn headline_endpoints() -> Vec<(&'static str, String)> {
    vec![
        ("rpc tools/list", "kind = \"rpc\"\nmethod = \"tools/list\"".into()),
        ("GET /tools", http("/tools?limit=50")),
    ]
}

/// Every other REST list and get, with the list's parameters; `cursor` is a real second-page cursor.
pub fn read_endpoints(cursor: Option<&str>) -> Vec<(&'static str, String)> {
    let mut reads = vec![
        (
            "GET /tools?include_inactive",
            http("/tools?include_inactive=true&limit=50"),
        ),
        ("GET /tools?gateway_id", http("/tools?gateway_id={gateway_id}")),
        ("GET /tools/{id}", http("/tools/{tool_id}")),
        ("GET /servers", http("/servers")),
        ("GET /servers/{id}", http("/servers/{server_id}")),
        ("GET /gateways", http("/gateways")),
        ("GET /gateways/{id}", http("/gateways/{gateway_id}")),
        ("GET /prompts", http("/prompts")),
        ("GET /prompts/{id}", http("/prompts/{prompt_id}")),
        ("GET /resources", http("/resources")),
        ("GET /resources/{id}", http("/resources/{resource_id}")),
    ];
    if let Some(c) = cursor {
        reads.insert(0, ("GET /tools?cursor", http(&format!("/tools?limit=50&cursor={c}"))));
    }
    reads
}

/// The protocol eras side by side: the session era (2025-06-18: `initialize`, the requests, `DELETE`)
/// and the stateless one (2026-07-28: `server/discover`, the requests, then the client leaves), each
/// session or conversation [`ERA_REQUESTS`] requests of one method on the user's kept connection:
/// `tools/list`, or a `tools/call` of `tool`, which the gateway forwards to stampede's upstream
/// ([`federate_echo`]).
pub fn era_endpoints(tool: &str) -> Vec<(&'static str, String)> {
    let list = "{ method = \"tools/list\" }".to_owned();
    let call =
        format!("{{ method = \"tools/call\", params = {{ name = \"{tool}\", arguments = {{ text = \"hello\" }} }} }}");
    // `close = "delete"` in both: a stateless client has nothing to delete and leaves in order,
    // keeping its connection (the default, an abrupt close, would make every conversation a new one).
    let era = |protocol: &str, request: &str| {
        format!(
            "kind = \"mcp\"\nprotocol = \"{protocol}\"\nclose = \"delete\"\nrequests = [{}]",
            vec![request; ERA_REQUESTS].join(", ")
        )
    };
    vec![
        (ERA_ENDPOINTS[0], era("2025-06-18", &list)),
        (ERA_ENDPOINTS[1], era("2026-07-28", &list)),
        (ERA_ENDPOINTS[2], era("2025-06-18", &call)),
        (ERA_ENDPOINTS[3], era("2026-07-28", &call)),
    ]
}

/// The era rows' names: (session, stateless) pairs of one method.
pub const ERA_ENDPOINTS: [&str; 4] = [
    "mcp 2025-06-18 tools/list",
    "mcp 2026-07-28 tools/list",
    "mcp 2025-06-18 tools/call",
    "mcp 2026-07-28 tools/call",
];

/// Requests of one session or stateless conversation in the era rows.
pub const ERA_REQUESTS: usize = 20;

/// Register stampede's upstream (`url`, its five generated tools besides the fixed ones) with the
/// gateway over Streamable HTTP, which the gateway speaks in the upstream's newest era (one pooled
/// `POST` per call; over the default HTTP+SSE every call would open a session of its own); answers
/// the name the gateway gives the upstream's `echo`. Every call of the era rows is of that one tool:
/// drawn from all of them, a tenth would be `fail`'s errors and `confirm`'s questions, which the
/// eras answer differently.
pub fn federate_echo(gateway: &Server, token: &str, url: &str) -> anyhow::Result<String> {
    let body =
        serde_json::json!({"name": "bench-upstream", "url": format!("{url}/mcp"), "transport": "STREAMABLEHTTP"});
    let (status, answer) = ask(gateway, token, "POST", "/gateways", Some(&body.to_string()))
        .ok_or_else(|| anyhow::anyhow!("POST /gateways: no answer"))?;
    anyhow::ensure!(status < 300, "POST /gateways answered {status}: {answer}");
    let (_, tools) =
        ask(gateway, token, "GET", "/tools", None).ok_or_else(|| anyhow::anyhow!("GET /tools: no answer"))?;
    let tools: serde_json::Value = serde_json::from_str(&tools)?;
    tools
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["originalName"] == "echo")
        .and_then(|t| t["name"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the gateway lists no federated echo tool: {tools}"))
}

/// The requests of a run of one era row: its method's; the session's start and end are not counted,
/// their CPU is (each request carries its share of its session's).
pub fn era_requests(r: &stampede_loadgen::results::Results) -> u64 {
    r.totals.count - r.actions.first().map_or(0, |a| a.summary.count)
}

/// The REST writes: a create (a new name each time) and a toggle (a 409 on a row another toggle holds
/// is an expected answer in the fixed profile).
pub fn write_endpoints() -> Vec<(&'static str, String)> {
    vec![
        (
            "POST /tools (create)",
            "kind = \"http\"\nmethod = \"POST\"\npath = \"/tools\"\n\
             body = { tool = { name = \"bench-{unique}\", url = \"http://127.0.0.1:9/echo\" } }"
                .into(),
        ),
        (
            "POST /tools/{id}/state",
            "kind = \"http\"\nmethod = \"POST\"\npath = \"/tools/{tool_id}/state?activate={bool}\"\nexpected = [409]"
                .into(),
        ),
    ]
}

fn http(path: &str) -> String {
    format!("kind = \"http\"\npath = \"{path}\"")
}

/// The scenario TOML that makes the actions draw from what the gateway holds.
pub const DISCOVER: &str = "[setup]\nmode = \"discover\"\n";

/// Give the gateway something to list and get, through its API, kept after the seeding run: two
/// gateways with 100 tools between them, 5 servers, 10 prompts, 10 resources.
pub fn seed(tools: &Tools, gateway: &Server, token: &str) -> anyhow::Result<()> {
    let scenario = tools.scratch.join("seed.toml");
    std::fs::write(
        &scenario,
        format!(
            "# bench: seed the gateway\nname = \"bench-seed\"\n\n[target]\nurl = \"{}\"\n\n\
             [setup]\ngateways = 2\ntools = 100\nservers = 5\ntools_per_server = 10\nprompts = 10\nresources = 10\nteardown = false\n\n\
             [load]\nusers = 1\nduration = \"100ms\"\n\n[observe]\npost_load = \"0s\"\nmetrics = \"\"\n\n\
             [[actions]]\nname = \"health\"\nkind = \"http\"\npath = \"/health\"\n",
            gateway.url
        ),
    )?;
    let out = Command::new(&tools.stampede)
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--set", &format!("target.token={token}"), "-o"])
        .arg(tools.scratch.join("seed.json"))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "seeding the gateway: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// The cursor of `GET /tools?limit=50`'s second page, asked of the gateway itself.
pub fn second_page_cursor(gateway: &Server, token: &str) -> Option<String> {
    let (_, body) = ask(gateway, token, "GET", "/tools?limit=50&include_pagination=true", None)?;
    let page: serde_json::Value = serde_json::from_str(&body).ok()?;
    page["nextCursor"].as_str().map(str::to_owned)
}

/// One request to the gateway on a connection of its own: its status and body.
fn ask(gateway: &Server, token: &str, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
    let addr = gateway.url.strip_prefix("http://")?;
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// Statements run in one database, as `pg_stat_statements` counts them (BEGIN, SET LOCAL and COMMIT
/// included: `track_utility` is on by default).
pub struct Statements {
    admin: String,
    database: String,
}

impl Statements {
    /// Needs the module preloaded (`scripts/pg.sh` does); `None`, said why, when it is not there.
    pub fn enable(admin: &str, database: &str) -> Result<Statements, String> {
        let s = Statements {
            admin: admin.to_owned(),
            database: database.to_owned(),
        };
        s.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")?;
        s.count()
            .ok_or_else(|| "pg_stat_statements cannot be read".to_owned())?;
        Ok(s)
    }

    pub fn count(&self) -> Option<u64> {
        self.psql(&format!(
            "SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
             WHERE d.datname = '{}'",
            self.database
        ))
        .ok()?
        .trim()
        .parse()
        .ok()
    }

    fn psql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .arg(&self.admin)
            .args(["-qAt", "-c", sql])
            .env("PGOPTIONS", "-c client_min_messages=warning")
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}
