//! `stampede-bench` (`make bench`): see the library's documentation and docs/bench.md.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use stampede_bench::cores::{self, Split};
use stampede_bench::gateway as bench_gateway;
use stampede_bench::generator::{self, CostRow, GeneratorRow, Ratio, Target};
use stampede_bench::nginx::Nginx;
use stampede_bench::proc::Server;
use stampede_bench::report::{BenchResults, markdown};
use stampede_bench::sections::{TargetPlan, TargetRow};
use stampede_bench::tools::{Tools, find};
use stampede_bench::{Settings, sections};

/// The bench's parts, in the order they run.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    Generator,
    Streams,
    Sessions,
    Gateway,
    Eras,
    Mixed,
}

#[derive(Parser)]
#[command(name = "stampede-bench")]
struct Args {
    /// Seconds per run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Rounds per tool and concurrency (medians are reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(long, value_delimiter = ',', default_value = "64,1000,4000")]
    connections: Vec<u32>,
    /// Concurrencies of the https runs against nginx (new TLS connections run at the first).
    #[arg(long, value_delimiter = ',', default_value = "64,1000")]
    tls_connections: Vec<u32>,
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
    sse_streams: Vec<u32>,
    #[arg(long, value_delimiter = ',', default_value = "64,1000,4000")]
    gateway_connections: Vec<u32>,
    /// Concurrencies of every other REST read (and the writes: the first only).
    #[arg(long, value_delimiter = ',', default_value = "64,4000")]
    read_connections: Vec<u32>,
    /// Seconds per run of every other REST read and of the writes.
    #[arg(long, default_value_t = 5.0)]
    read_duration: f64,
    /// The parts to run (all by default).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "generator,streams,sessions,gateway,eras,mixed"
    )]
    parts: Vec<Part>,
    /// PostgreSQL admin URL: also bench the gateway on it (each run on a fresh database).
    #[arg(long)]
    postgres: Option<String>,
    /// Install missing peers (wrk from Debian's packages, oha with cargo install).
    #[arg(long)]
    install_peers: bool,
    /// A one-second pass over every part at small sizes, to prove the bench works (CI).
    #[arg(long, conflicts_with_all = ["duration", "rounds", "connections", "tls_connections", "sse_streams", "gateway_connections", "read_connections", "read_duration"])]
    quick: bool,
    /// Where the JSON and Markdown go.
    #[arg(long, default_value = "results/bench")]
    out: PathBuf,
    /// Measure nothing: write the Markdown of a results file again (beside it), as this build's
    /// report and goals table put it.
    #[arg(long, value_name = "JSON", conflicts_with_all = ["quick", "parts", "install_peers", "postgres"])]
    render: Option<PathBuf>,
}

fn say(s: String) {
    stampede_loadgen::outln!("{s}");
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            stampede_loadgen::errln!("stampede-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn version(path: &Path) -> String {
    // nginx knows only `-v`.
    let flag = if path.ends_with("nginx") { "-v" } else { "--version" };
    Command::new(path)
        .arg(flag)
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
            text.lines().find(|l| !l.trim().is_empty()).map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| "version unknown".into())
}

/// The Debian package a peer comes from (the others come from cargo).
fn debian_package(name: &str) -> Option<&'static str> {
    match name {
        "wrk" => Some("wrk"),
        "nginx" => Some("nginx-light"),
        _ => None,
    }
}

/// Find a peer, installing it when asked; say what happened either way.
fn peer(name: &str, install: bool, peers: &mut Vec<(String, String)>) -> Option<PathBuf> {
    if find(name).is_none() && install {
        let (what, mut cmd) = if let Some(package) = debian_package(name) {
            let mut c = Command::new("apt-get");
            c.args(["install", "-y", "-qq", package])
                .env("DEBIAN_FRONTEND", "noninteractive");
            (format!("apt-get install {package}"), c)
        } else {
            let mut c = Command::new("cargo");
            c.args(["install", "--locked", "oha"]);
            ("cargo install --locked oha".to_owned(), c)
        };
        say(format!("{name} is not installed: {what}"));
        let ok = cmd.status().map(|s| s.success()).unwrap_or(false);
        if !ok {
            say(format!("{name}: {what} failed"));
        }
    }
    match find(name) {
        Some(p) => {
            let v = version(&p);
            say(format!("{name}: {v}"));
            peers.push((name.to_owned(), v));
            Some(p)
        }
        None => {
            let why = format!(
                "skipped: not installed{}",
                if install {
                    " and could not be installed"
                } else {
                    " (make bench installs it)"
                }
            );
            say(format!("{name}: {why}"));
            peers.push((name.to_owned(), why));
            None
        }
    }
}

impl Args {
    fn settings(&self) -> Settings {
        if self.quick {
            return Settings {
                duration: Duration::from_secs(1),
                rounds: 1,
                connections: vec![64],
                tls_connections: vec![16],
                sse_streams: vec![50, 100],
                gateway_connections: vec![16],
                read_connections: vec![16],
                read_duration: Duration::from_secs(1),
                postgres: self.postgres.clone(),
            };
        }
        Settings {
            duration: Duration::from_secs_f64(self.duration),
            rounds: self.rounds.max(1),
            connections: self.connections.clone(),
            tls_connections: self.tls_connections.clone(),
            sse_streams: self.sse_streams.clone(),
            gateway_connections: self.gateway_connections.clone(),
            read_connections: self.read_connections.clone(),
            read_duration: Duration::from_secs_f64(self.read_duration),
            postgres: self.postgres.clone(),
        }
    }
}

/// Reference gateways for the sections, each on a data directory of its own.
struct Gateways {
    bin: PathBuf,
    token: String,
}

impl Gateways {
    fn new(bin: PathBuf) -> anyhow::Result<Gateways> {
        let token = String::from_utf8(
            Command::new(&bin)
                .args(["token", "--sub", "bench@example.com", "--exp", "120m"])
                .output()?
                .stdout,
        )?
        .trim()
        .to_owned();
        Ok(Gateways { bin, token })
    }

    /// A gateway on SQLite, or on `database` (a PostgreSQL URL).
    fn start(&self, database: Option<String>) -> anyhow::Result<(Server, tempfile::TempDir)> {
        self.start_with(database, &[])
    }

    /// The same with `env` set for it (after the bench's own settings, so it wins).
    fn start_with(
        &self,
        database: Option<String>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<(Server, tempfile::TempDir)> {
        // The seeded gateway only groups the listed tools: its activation is simulated (no upstream
        // to federate), as the gateway section measures lists, not federation.
        self.spawn(database, &[&[("GATEWAY_ACTIVATION_IO_MS", "0")], env].concat())
    }

    /// A gateway on SQLite that federates what is registered with it (an upstream on this machine),
    /// on `cores` when given.
    fn start_federating(&self, cores: Option<&[usize]>) -> anyhow::Result<(Server, tempfile::TempDir)> {
        self.spawn_on(None, &[("OUTBOUND_ALLOW", "loopback")], cores)
    }

    fn spawn(&self, database: Option<String>, env: &[(&str, &str)]) -> anyhow::Result<(Server, tempfile::TempDir)> {
        self.spawn_on(database, env, None)
    }

    fn spawn_on(
        &self,
        database: Option<String>,
        env: &[(&str, &str)],
        cores: Option<&[usize]>,
    ) -> anyhow::Result<(Server, tempfile::TempDir)> {
        let dir = tempfile::tempdir()?;
        let mut cmd = Command::new(&self.bin);
        if let Some(cores) = cores {
            cores::pin(&mut cmd, cores);
        }
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("SSE_KEEPALIVE_INTERVAL", "30")
            .env("RUST_LOG", "warn");
        if let Some(url) = database {
            cmd.env("DATABASE_URL", url);
        }
        cmd.envs(env.iter().copied());
        Ok((Server::start(&mut cmd)?, dir))
    }
}

/// The eras part: the gateway's CPU per `tools/list` and per `tools/call` in each protocol era, at the
/// first gateway concurrency, its tools federated from stampede's upstream. The gateway runs on half
/// the cores, the generator and the upstream on the other (`cores`): a gateway sharing its cores with
/// them spent 48–91 µs per call of the same era over rounds.
fn eras_part(settings: &Settings, tools: &Tools, gateways: &Gateways) -> anyhow::Result<Vec<TargetRow>> {
    let split = Split::here();
    let (gateway_cores, generator_cores) = match &split {
        Some(s) => (Some(s.target.as_slice()), Some(s.generator.as_slice())),
        None => (None, None),
    };
    let (gw, _dir) = gateways.start_federating(gateway_cores)?;
    let mut upstream = Command::new(&tools.stampede);
    upstream.args(["upstream", "--bind", "127.0.0.1:0", "--tools", "5"]);
    if let Some(c) = generator_cores {
        cores::pin(&mut upstream, c);
    }
    let upstream = Server::start(&mut upstream)?;
    let echo = bench_gateway::federate_echo(&gw, &gateways.token, &upstream.url)?;
    let endpoints = bench_gateway::era_endpoints(&echo);
    Ok(sections::target_runs(
        tools,
        &gw,
        &TargetPlan {
            label: "gateway, SQLite, federating",
            token: Some(&gateways.token),
            endpoints: &endpoints,
            connections: &settings.gateway_connections[..1.min(settings.gateway_connections.len())],
            duration: settings.duration,
            extra: "",
            statements: None,
            requests: Some(bench_gateway::era_requests),
            rounds: settings.rounds,
            generator_cores,
        },
        &|s| say(s),
    ))
}

/// The generator part's results.
#[derive(Default)]
struct GeneratorPart {
    rows: Vec<GeneratorRow>,
    ratios: Vec<Ratio>,
    tls_ratios: Vec<Ratio>,
    syscalls: Vec<CostRow>,
    cores: Option<Split>,
}

/// The tools on a hello server, then on nginx: plain, https with keep-alive, and new TLS connections
/// (each request its own), with system calls per request counted on nginx. The targets run on half
/// the cores, the tools on the other half (`cores`).
fn generator_part(settings: &Settings, tools: &Tools, bin: &Path, nginx: Option<&Path>) -> GeneratorPart {
    let mut part = GeneratorPart {
        cores: Split::here(),
        ..GeneratorPart::default()
    };
    let split = part.cores.clone();
    let target_cores = split.as_ref().map(|s| s.target.as_slice());
    match &split {
        Some(s) => say(format!(
            "  the targets on cores {}, each tool on cores {} with a thread on each",
            cores::describe(&s.target),
            cores::describe(&s.generator),
        )),
        None => say("  one core: the targets and the tools share it".into()),
    }
    let mut cmd = Command::new(bin.join("bench-hello"));
    if let Some(c) = target_cores {
        cores::pin(&mut cmd, c);
    }
    let hello = match Server::start(&mut cmd) {
        Ok(server) => server,
        Err(e) => {
            say(format!("hello: {e:#}"));
            return part;
        }
    };
    let hello = Target {
        label: "hello",
        url: format!("{}/", hello.url),
        ca: None,
        keep_alive: true,
        served: None,
        resumed: None,
        open_model: true,
        generator_cores: split.as_ref().map(|s| s.generator.as_slice()),
    };
    (part.rows, part.ratios) = generator::generator(settings, tools, &hello, &settings.connections, &|s| say(s));
    let Some(nginx) = nginx else {
        say("nginx: skipped (not installed): no nginx, https or system-call rows".into());
        return part;
    };
    let server = match Nginx::start(nginx, target_cores) {
        Ok(server) => server,
        Err(e) => {
            say(format!("nginx: skipped: {e:#}"));
            return part;
        }
    };
    say(format!(
        "\n== generator: GET {} on nginx (http, then https: TLS 1.3, {})",
        stampede_bench::nginx::FILE,
        stampede_bench::nginx::CIPHER_SUITE
    ));
    let served = || server.served();
    let resumed = || server.take_resumed();
    let ca = server.ca();
    let plain = Target {
        label: "nginx",
        url: format!("{}{}", server.http, stampede_bench::nginx::FILE),
        served: Some(&served),
        open_model: false,
        ..hello
    };
    let (rows, ratios) = generator::generator(settings, tools, &plain, &settings.connections, &|s| say(s));
    part.rows.extend(rows);
    part.ratios.extend(ratios);
    let https = Target {
        label: "nginx https",
        url: format!("{}{}", server.https, stampede_bench::nginx::FILE),
        ca: Some(&ca),
        ..plain
    };
    let (rows, ratios) = generator::generator(settings, tools, &https, &settings.tls_connections, &|s| say(s));
    part.rows.extend(rows);
    part.tls_ratios.extend(ratios);
    let handshakes = Target {
        label: "nginx https, new connections",
        url: format!("{}{}", server.https_logged, stampede_bench::nginx::FILE),
        keep_alive: false,
        resumed: Some(&resumed),
        ..https
    };
    let first = &settings.tls_connections[..1.min(settings.tls_connections.len())];
    let (rows, ratios) = generator::generator(settings, tools, &handshakes, first, &|s| say(s));
    part.rows.extend(rows);
    part.tls_ratios.extend(ratios);
    say("\n== generator: system calls and context switches per request (perf stat, one run each)".into());
    for target in [&plain, &https] {
        if let Some(&c) = settings.connections.first() {
            part.syscalls
                .extend(generator::syscalls(settings, tools, target, c, &|s| say(s)));
        }
    }
    part
}

/// The gateway's database for its PostgreSQL runs, made afresh.
const BENCH_DB: &str = "stampede_bench";

/// The gateway part: the headline endpoints and every other read on SQLite and (given `--postgres`)
/// PostgreSQL, and the writes on PostgreSQL with statements per request.
fn gateway_part(settings: &Settings, tools: &Tools, gateways: &Gateways) -> anyhow::Result<Vec<TargetRow>> {
    let mut targets = Vec::new();
    let mut databases: Vec<(String, Option<String>)> = vec![("gateway, SQLite".into(), None)];
    if let Some(pg) = &settings.postgres {
        let admin = Command::new("psql")
            .arg(pg)
            .args([
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {BENCH_DB}"),
                "-c",
                &format!("CREATE DATABASE {BENCH_DB}"),
            ])
            .env("PGOPTIONS", "-c client_min_messages=warning")
            .status();
        match admin {
            Ok(s) if s.success() => {
                let base = pg.rsplit_once('/').map_or(pg.as_str(), |(b, _)| b);
                databases.push(("gateway, PostgreSQL".into(), Some(format!("{base}/{BENCH_DB}"))));
            }
            _ => say("gateway on PostgreSQL: skipped (could not create its database with psql)".into()),
        }
    }
    let token = &gateways.token;
    for (label, url) in databases {
        let on_pg = url.is_some();
        let (gw, _dir) = gateways.start(url)?;
        bench_gateway::seed(tools, &gw, token)?;
        let plan = |endpoints, connections, duration| TargetPlan {
            label: &label,
            token: Some(token),
            endpoints,
            connections,
            duration,
            extra: bench_gateway::DISCOVER,
            statements: None,
            requests: None,
            rounds: settings.rounds,
            generator_cores: None,
        };
        let headline = bench_gateway::headline_endpoints();
        targets.extend(sections::target_runs(
            tools,
            &gw,
            &plan(&headline, &settings.gateway_connections, settings.duration),
            &|s| say(s),
        ));
        let cursor = bench_gateway::second_page_cursor(&gw, token);
        if cursor.is_none() {
            say("  GET /tools?cursor: skipped (the gateway gave no second-page cursor)".into());
        }
        let reads = bench_gateway::read_endpoints(cursor.as_deref());
        targets.extend(sections::target_runs(
            tools,
            &gw,
            &plan(&reads, &settings.read_connections, settings.read_duration),
            &|s| say(s),
        ));
        if on_pg && let Some(pg) = &settings.postgres {
            let statements = bench_gateway::Statements::enable(pg, BENCH_DB);
            if let Err(why) = &statements {
                say(format!("  statements per request: not measured ({why})"));
            }
            let count = statements.as_ref().ok().map(|s| move || s.count());
            let writes = bench_gateway::write_endpoints();
            targets.extend(sections::target_runs(
                tools,
                &gw,
                &TargetPlan {
                    statements: count.as_ref().map(|c| c as &dyn Fn() -> Option<u64>),
                    ..plan(&writes, &settings.read_connections[..1], settings.read_duration)
                },
                &|s| say(s),
            ));
        }
    }
    Ok(targets)
}

/// The results as `<out>/<day>.json` and `.md`, each written atomically.
fn write(results: &BenchResults, out: &Path) -> anyhow::Result<()> {
    let md = markdown(results);
    say(format!("\n{md}"));
    let day = &results.date[..10];
    let json = out.join(format!("{day}.json"));
    let md_path = out.join(format!("{day}.md"));
    stampede_loadgen::results::write_file_atomically(
        &json,
        (serde_json::to_string_pretty(results)? + "\n").as_bytes(),
    )?;
    stampede_loadgen::results::write_file_atomically(&md_path, md.as_bytes())?;
    say(format!("bench: {} and {}", json.display(), md_path.display()));
    Ok(())
}

/// `--render`: the Markdown of `json`, written beside it.
fn render(json: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?;
    let results: BenchResults = serde_json::from_str(&text).with_context(|| format!("{}", json.display()))?;
    let md_path = json.with_extension("md");
    stampede_loadgen::results::write_file_atomically(&md_path, markdown(&results).as_bytes())?;
    say(format!("bench: {}", md_path.display()));
    Ok(())
}

fn run(args: Args) -> anyhow::Result<()> {
    if let Some(json) = &args.render {
        return render(json);
    }
    let settings = args.settings();
    let exe = std::env::current_exe()?;
    let bin = exe.parent().context("where stampede-bench is")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let scratch = tempfile::tempdir()?;
    let mut peers = Vec::new();
    let tools = Tools {
        stampede: bin.join("stampede"),
        oha: peer("oha", args.install_peers, &mut peers),
        wrk: peer("wrk", args.install_peers, &mut peers),
        scratch: scratch.path().to_owned(),
    };
    anyhow::ensure!(tools.stampede.is_file(), "{} is not built", tools.stampede.display());

    let part = |p: Part| args.parts.contains(&p);
    let mut generator = GeneratorPart::default();
    let mut targets = Vec::new();
    if part(Part::Generator) || part(Part::Gateway) {
        say("\n== generator: GET / on the hello server (and the ceiling the gateway is measured against)".into());
        let hello = Server::start(&mut Command::new(bin.join("bench-hello")))?;
        if part(Part::Generator) {
            let nginx = peer("nginx", args.install_peers, &mut peers);
            generator = generator_part(&settings, &tools, bin, nginx.as_deref());
        }
        let ceiling = [("GET /", "kind = \"http\"\npath = \"/\"".to_owned())];
        targets = sections::target_runs(
            &tools,
            &hello,
            &TargetPlan {
                label: "hello (the ceiling)",
                token: None,
                endpoints: &ceiling,
                connections: &settings.gateway_connections,
                duration: settings.duration,
                extra: "",
                statements: None,
                requests: None,
                rounds: settings.rounds,
                generator_cores: None,
            },
            &|s| say(s),
        );
    }

    let gateways = Gateways::new(bin.join("stampede-gateway"))?;
    let mut streams = Vec::new();
    if part(Part::Streams) {
        say("\n== streams: idle SSE, Streamable HTTP and subscriptions/listen streams held by the generator, and by the gateway".into());
        let keepalive = sections::STREAM_KEEPALIVE_S.to_string();
        let gateway = || gateways.start_with(None, &[("SSE_KEEPALIVE_INTERVAL", &keepalive)]);
        for kind in [sections::SSE_STREAMS, sections::MCP_STREAMS, sections::LISTEN_STREAMS] {
            streams.extend(sections::streams(
                &settings,
                &tools,
                &gateway,
                &gateways.token,
                &root,
                kind,
                &|s| say(s),
            ));
        }
    }

    let mut sessions = Vec::new();
    if part(Part::Sessions) {
        say("\n== sessions: Streamable HTTP sessions on /mcp, as fast as the gateway takes them".into());
        let (gw, _dir) = gateways.start(None)?;
        sessions = sections::sessions(&settings, &tools, &gw, &gateways.token, &|s| say(s));
    }

    if part(Part::Gateway) {
        say("\n== gateway: every REST read, /rpc tools/list, and the REST writes on PostgreSQL".into());
        targets.extend(gateway_part(&settings, &tools, &gateways)?);
    }

    if part(Part::Eras) {
        say("\n== eras: the gateway's CPU per tools/list and tools/call in each protocol era".into());
        targets.extend(eras_part(&settings, &tools, &gateways)?);
    }

    let mixed = if !part(Part::Mixed) {
        None
    } else {
        say("\n== mixed-4000: the generator's memory in the field's mix".into());
        stampede_bench::mixed::run(&tools, &root, args.quick, &|s| say(s))
    };

    write(
        &BenchResults {
            kind: "stampede-bench".into(),
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            environment: stampede_loadgen::host::Environment::here(),
            duration_s: settings.duration.as_secs_f64(),
            rounds: settings.rounds,
            peers,
            generator: generator.rows,
            ratios: generator.ratios,
            tls_ratios: generator.tls_ratios,
            syscalls: generator.syscalls,
            cores: generator.cores,
            streams,
            sessions,
            targets,
            mixed,
        },
        &args.out,
    )
}
