use std::time::Duration;

use crate::data::Phase;

use super::*;

const GOOD: &str = r#"
# a comment header
description = "test"

[target]
spawn = "gateway"

[setup]
tools = 10
servers = 2

[load]
users = 50
duration = "20s"
ramp_up = "5s"
think_time = "100ms..300ms"

[[actions]]
name = "list tools"
kind = "http"
path = "/tools"
weight = 5

[[actions]]
kind = "http"
method = "POST"
path = "/tools/{tool_id}/state?activate={bool}"
expected = [409]

[[actions]]
kind = "rpc"
method = "tools/call"
params = { name = "{tool_name}", arguments = { text = "hi" } }

[[actions]]
kind = "sse"
server = true
requests = [{ method = "tools/list" }]
hold = "1s..2s"
rst = true
"#;

fn errors(text: &str) -> Vec<ScenarioError> {
    parse("s.toml", text, "s", &[]).unwrap_err().0
}

fn one_error(text: &str) -> ScenarioError {
    let mut e = errors(text);
    assert_eq!(e.len(), 1, "{e:?}");
    e.remove(0)
}

#[test]
fn a_good_scenario_plans() {
    let s = parse("smoke.toml", GOOD, "smoke", &[]).unwrap();
    assert_eq!(s.name, "smoke");
    assert_eq!(s.actions.len(), 4);
    assert_eq!(s.actions[0].name, "list tools");
    assert_eq!(s.actions[1].name, "POST /tools/{tool_id}/state?activate={bool}");
    assert_eq!(s.actions[3].name, "sse /servers/{server_id}/sse");
    assert_eq!(s.load.duration(), Duration::from_secs(25));
    assert_eq!(s.load.at(Duration::from_millis(2500)), (25.0, Phase::RampUp));
    assert_eq!(s.load.at(Duration::from_secs(10)), (50.0, Phase::Steady));
    assert!(matches!(s.target, TargetPlan::Spawn { .. }));
}

#[test]
fn unknown_field_names_file_line_column_and_path() {
    let text = GOOD.replace("users = 50", "users = 50\nuserz = 5");
    let e = one_error(&text);
    assert_eq!(e.file, "s.toml");
    assert_eq!(e.line, Some(14));
    assert_eq!(e.field, "load.userz");
    assert!(e.message.contains("unknown field `userz`"), "{e}");
    assert!(
        e.to_string()
            .starts_with("s.toml:14:1: load.userz: unknown field `userz`"),
        "{e}"
    );
}

#[test]
fn wrong_type_names_the_field() {
    let e = one_error(&GOOD.replace("users = 50", "users = \"many\""));
    assert_eq!(e.field, "load.users");
    assert_eq!(e.line, Some(13));
    assert!(e.message.contains("invalid type"), "{e}");
}

#[test]
fn observed_ports_are_ports() {
    let with = |ports: &str| format!("{GOOD}\n[observe]\nports = {ports}\n");
    let s = parse("s.toml", &with("[4001, 4002]"), "s", &[]).unwrap();
    assert_eq!(s.spec.observe.ports, Some(vec![4001, 4002]));
    let e = one_error(&with("[70000]"));
    assert!(e.field.starts_with("observe.ports"), "{e}");
}

#[test]
fn bad_duration_is_explained() {
    let e = one_error(&GOOD.replace("duration = \"20s\"", "duration = \"10 s\""));
    assert_eq!(e.field, "load.duration");
    assert_eq!((e.line, e.column), (Some(14), Some(12)));
    assert!(e.message.contains("bad duration \"10 s\""), "{e}");
}

#[test]
fn weights_summing_to_zero_are_refused() {
    let text = GOOD
        .replace("weight = 5", "weight = 0")
        .replace("kind = \"http\"\nmethod", "kind = \"http\"\nweight = 0\nmethod");
    let text = text
        .replace("kind = \"rpc\"", "kind = \"rpc\"\nweight = 0")
        .replace("kind = \"sse\"", "kind = \"sse\"\nweight = 0");
    let e = one_error(&text);
    assert_eq!(e.field, "actions");
    assert!(e.message.contains("weights sum to 0"), "{e}");
    assert!(e.line.is_some());
}

#[test]
fn a_template_naming_an_id_setup_does_not_provide_is_refused() {
    let text = GOOD.replace("servers = 2", "");
    let e = one_error(&text);
    assert_eq!(e.field, "actions[3]");
    assert!(
        e.message.contains("{server_id}") && e.message.contains("seeds no servers"),
        "{e}"
    );
    assert_eq!(e.line, Some(35), "points at the [[actions]] table");
    let e = one_error(&GOOD.replace("/tools/{tool_id}/state", "/tools/{tool}/state"));
    assert_eq!(e.field, "actions[1].path");
    assert!(e.message.contains("unknown template variable {tool}"), "{e}");
}

#[test]
fn fields_of_another_kind_and_missing_fields_are_named() {
    let e = one_error(&GOOD.replace("rst = true", "rst = true\nbody = { a = 1 }"));
    assert_eq!(e.field, "actions[3].body");
    assert!(e.message.contains("does not apply to kind = \"sse\""), "{e}");
    let e = one_error(&GOOD.replace("path = \"/tools\"\n", ""));
    assert_eq!(e.field, "actions[0].path");
    assert!(e.message.contains("is required"));
    let e = one_error(&GOOD.replace("users = 50", "users = 50\nrate = 5.0"));
    assert_eq!(e.field, "load.rate");
    assert!(e.message.contains("does not apply to the closed model"));
}

#[test]
fn target_needs_exactly_one_of_url_and_spawn() {
    let e = one_error(&GOOD.replace(
        "spawn = \"gateway\"",
        "spawn = \"gateway\"\nurl = \"http://127.0.0.1:1\"",
    ));
    assert_eq!(e.field, "target.spawn");
    let e = one_error(&GOOD.replace("spawn = \"gateway\"", "url = \"ftp://x\""));
    assert_eq!(e.field, "target.url");
}

#[test]
fn toml_syntax_errors_have_a_place() {
    let e = one_error("[target\nspawn = 1");
    assert_eq!(e.line, Some(1));
    assert!(e.field.is_empty());
}

#[test]
fn overrides_change_the_scenario_as_run() {
    let overrides: Vec<Override> = ["load.users=200", "load.duration=3s", "target.url=http://127.0.0.1:9"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let s = parse("s.toml", GOOD, "s", &overrides).unwrap();
    assert_eq!(s.load.peak(), 200.0);
    assert_eq!(s.spec.load.users, Some(200));
    assert_eq!(s.load.duration(), Duration::from_secs(8));
    assert_eq!(s.target, TargetPlan::Url("http://127.0.0.1:9".into()));

    let bad: Override = "load.users=lots".parse().unwrap();
    let e = parse("s.toml", GOOD, "s", &[bad]).unwrap_err().0.remove(0);
    assert_eq!(e.field, "load.users");
    assert!(e.message.contains("command-line"), "{e}");
    assert!("nonsense".parse::<Override>().is_err());
}

#[test]
fn every_shipped_scenario_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.starts_with('#'), "{} starts with a comment header", path.display());
            let s = load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
            // A post-load window no longer than its settle time never measures the settled CPU mean,
            // the figure that says whether the gateway came back to idle.
            assert!(
                s.post_load.is_zero() || s.settle < s.post_load,
                "{}: post_load {:?} leaves nothing after settle {:?}",
                path.display(),
                s.post_load,
                s.settle
            );
            seen += 1;
        }
    }
    assert!(seen >= 5, "the five shipped scenarios");
}

#[test]
fn thresholds_are_checked_before_the_run() {
    let text = format!(
        "{GOOD}\n[thresholds]\nall = [\"p99 < 250ms\", \"failure_rate < 0.1%\"]\n\"list tools\" = [\"p95 < 1s\"]\n"
    );
    assert!(parse("s.toml", &text, "s", &[]).is_ok());
    let e = one_error(&format!("{GOOD}\n[thresholds]\nall = [\"p99 < 5%\"]\n"));
    assert_eq!(e.field, "thresholds.all");
    assert!(e.message.contains("does not fit this metric"), "{e}");
    assert!(e.line.is_some());
    let e = one_error(&format!("{GOOD}\n[thresholds]\nnobody = [\"p99 < 1s\"]\n"));
    assert_eq!(e.field, "thresholds.nobody");
}

#[test]
fn a_bad_user_count_gets_one_message_wherever_it_comes_from() {
    let from_file = one_error(&GOOD.replace("users = 50", "users = -5"));
    assert_eq!(from_file.field, "load.users");
    assert!(from_file.message.contains("must be more than 0"), "{from_file}");
    for value in ["-5", "0"] {
        let set: Override = format!("load.users={value}").parse().unwrap();
        let e = match parse("s.toml", GOOD, "s", &[set]) {
            Err(errors) => errors.0.into_iter().next().unwrap(),
            Ok(_) => panic!("users = {value} accepted"),
        };
        assert_eq!(e.field, "load.users");
        assert!(e.message.contains("must be more than 0"), "{e}");
    }
}

#[test]
fn load_threads_are_taken_from_1_to_1024_and_named_with_their_line_otherwise() {
    let plan = parse(
        "s.toml",
        &GOOD.replace("users = 50", "users = 50\nthreads = 1"),
        "s",
        &[],
    )
    .unwrap();
    assert_eq!(plan.load.threads, Some(1));
    assert_eq!(
        parse("s.toml", GOOD, "s", &[]).unwrap().load.threads,
        None,
        "one per core"
    );
    let e = one_error(&GOOD.replace("users = 50", "users = 50\nthreads = 0"));
    assert_eq!(e.field, "load.threads");
    assert!(e.message.contains("must be from 1 to 1024"), "{e}");
    assert!(e.line.is_some(), "{e}");
    let set: Override = "load.threads=5000".parse().unwrap();
    let e = match parse("s.toml", GOOD, "s", &[set]) {
        Err(errors) => errors.0.into_iter().next().unwrap(),
        Ok(_) => panic!("threads = 5000 accepted"),
    };
    assert_eq!(e.field, "load.threads");
}

#[test]
fn a_missing_seed_names_the_action_that_needs_it_even_after_a_bad_one() {
    // actions[0] has its own problem (and is left out of the plan); actions[1] needs prompts that
    // [setup] does not seed: the error must name actions[1], not the second of the planned ones.
    let text = r#"
# test
[target]
spawn = "gateway"
[setup]
tools = 1
[load]
users = 1
duration = "1s"
[[actions]]
kind = "http"
path = "/tools"
params = { a = 1 }
[[actions]]
kind = "rpc"
method = "prompts/get"
params = { name = "{prompt_name}" }
"#;
    let e = errors(text);
    let seed = e
        .iter()
        .find(|e| e.message.contains("seeds no prompts"))
        .unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!(seed.field, "actions[1]", "{seed}");
}

#[test]
fn an_upstream_is_planned_and_its_mistakes_are_named() {
    let with = |upstream: &str| format!("{GOOD}\n[upstream]\n{upstream}\n");
    let s = parse(
        "s.toml",
        &with("spawn = true\ntools = 20\nlatency = \"20ms..200ms\""),
        "s",
        &[],
    )
    .unwrap();
    match &s.upstream {
        UpstreamPlan::Spawn(k) => {
            assert_eq!(k.tools, 20);
            assert_eq!(k.latency.max, Duration::from_millis(200));
        }
        other => panic!("{other:?}"),
    }
    let e = errors(&with("spawn = true\nerror_rate = 2.0\nstall_rate = -1.0"));
    let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["upstream.error_rate", "upstream.stall_rate"]);
    assert_eq!(e[0].line, Some(GOOD.lines().count() + 4), "located in the file");
    let e = one_error(&with("spawn = true\nurl = \"http://127.0.0.1:9\""));
    assert_eq!(e.field, "upstream.url");
    let e = one_error(&with("url = \"http://127.0.0.1:9\"\ntools = 3"));
    assert_eq!(e.field, "upstream.tools");
    assert!(e.message.contains("spawned upstream"), "{}", e.message);
    let e = one_error(&with("tools = 3"));
    assert_eq!(e.field, "upstream");
}

#[test]
fn upstream_url_needs_an_upstream() {
    let text = GOOD.replace(
        "params = { name = \"{tool_name}\", arguments = { text = \"hi\" } }",
        "params = { name = \"{tool_name}\", arguments = { text = \"{upstream_url}\" } }",
    );
    let e = one_error(&text);
    assert!(
        e.message.contains("{upstream_url}") && e.message.contains("[upstream]"),
        "{}",
        e.message
    );
    parse("s.toml", &format!("{text}\n[upstream]\nspawn = true\n"), "s", &[]).unwrap();
}

#[test]
fn federated_tools_need_gateways_and_an_upstream() {
    let e = one_error(
        &format!("{GOOD}\n[upstream]\nspawn = true\n")
            .replace("tools = 10\n", "tools = 10\ntools_from = \"federated\"\n"),
    );
    assert_eq!(e.field, "setup.tools_from");
    let ok = format!("{GOOD}\n[upstream]\nspawn = true\n")
        .replace("tools = 10\n", "tools = 0\ngateways = 1\ntools_from = \"federated\"\n");
    parse("s.toml", &ok, "s", &[]).unwrap();
}

#[test]
fn replicas_need_postgresql_and_a_proxy() {
    let with = |target: &str| GOOD.replace("spawn = \"gateway\"\n", &format!("spawn = \"gateway\"\n{target}\n"));
    let e = one_error(&with("replicas = 3\nproxy = \"nginx\""));
    assert_eq!(e.field, "target.replicas");
    assert!(e.message.contains("postgres://"), "{e}");
    assert_eq!(e.line, Some(7), "points at the line: {e}");
    let e = one_error(&with("replicas = 3\ndatabase_url = \"postgres://u@127.0.0.1:5432/d\""));
    assert_eq!(e.field, "target.replicas");
    assert!(e.message.contains("proxy = \"nginx\""), "{e}");
    let e = one_error(&with(
        "replicas = 2\nproxy = \"nginx\"\ndatabase_url = \"postgres://u@127.0.0.1:6432/d\"\n\
         env = { DB_POOLER = \"transaction\" }",
    ));
    assert_eq!(e.field, "target.env");
    assert!(e.message.contains("SESSION_BUS_URL"), "{e}");
    let e = one_error(&with("replicas = 0"));
    assert!(e.message.contains("at least 1"), "{e}");
    let e = one_error(&with("proxy = \"haproxy\""));
    assert!(e.to_string().contains("proxy"), "{e}");
    let s = parse(
        "s.toml",
        &with("replicas = 3\nproxy = \"nginx\"\ndatabase_url = \"postgres://u@127.0.0.1:5432/d\""),
        "s",
        &[],
    )
    .unwrap();
    assert!(matches!(
        s.target,
        TargetPlan::Spawn {
            replicas: 3,
            proxy: Some(ProxyKind::Nginx),
            ..
        }
    ));
}

#[test]
fn the_stateless_mcp_fields_are_checked_at_their_place() {
    let mcp = |fields: &str| {
        format!(
            "[target]\nurl = \"http://127.0.0.1:1\"\n[load]\nusers = 1\nduration = \"1s\"\n\
             [[actions]]\nkind = \"mcp\"\n{fields}\n"
        )
    };
    let e = one_error(&mcp("listen_to = [\"tools\", \"kittens\"]"));
    assert_eq!(e.field, "actions[0].listen_to[1]");
    assert!(e.message.contains("\"kittens\""), "{e}");
    let e = one_error(&mcp("protocol = \"2025-03-26\"\ncache = true"));
    assert_eq!(e.field, "actions[0].cache");
    assert!(e.message.contains("stateless era"), "{e}");
    let e = one_error(&mcp("input_responses = { confirm = 1 }"));
    assert_eq!(e.field, "actions[0].input_responses.confirm");
    assert!(e.line.is_some(), "{e}");
}
