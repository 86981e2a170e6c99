//! The HTTP contract of docs/api.md, on both backends: endpoints, status codes, JSON shapes, auth, and
//! bad input answered with a JSON `detail` instead of a 500.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use testkit::{Db, Gateway, SECRET, TestDb, both, token_signed, token_with};

both!(
    open_endpoints,
    auth_failures,
    entities_round_trip,
    toggles_answer_as_the_original,
    gateway_toggle_cascades,
    listing_filters_and_pages,
    bad_input_gets_a_clear_error,
);

async fn open_endpoints(db: Db) {
    let db = TestDb::new(db).await;
    let gw = Gateway::start(&db, &[]).await;
    for (path, body) in [
        ("/health", json!({"status": "healthy"})),
        ("/ready", json!({"status": "ready"})),
    ] {
        let resp = gw.http.get(gw.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(resp.json::<Value>().await.unwrap(), body);
    }
    let resp = gw.http.get(gw.url("/metrics/prometheus")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    for name in [
        "http_requests_total{route=\"/health\",status=\"200\"} 1",
        "lock_conflicts_total{entity=\"tool\"} 0",
        "db_lock_waits_in_flight 0",
        "db_pool_connections{state=\"max\"}",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "profile=\"fixed\"",
    ] {
        assert!(text.contains(name), "metrics lack {name}:\n{text}");
    }
    assert!(gw.stop().await, "gateway exits 0 on SIGTERM");
}

/// Every rule of a token, on every protected route: each bad token is a 401 with its JSON `detail`
/// wherever it is sent, and nothing but the token decides it.
async fn auth_failures(db: Db) {
    let db = TestDb::new(db).await;
    let gw = Gateway::start(&db, &[]).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good = token_with(json!({}));
    let claims = good.split('.').nth(1).unwrap();
    let required = json!({"detail": "Authorization token required"});
    let invalid = json!({"detail": "Invalid token"});
    let tokens: Vec<(&str, Option<String>, &Value)> = vec![
        ("no header", None, &required),
        ("an empty bearer", Some(String::new()), &required),
        (
            "expired",
            Some(token_with(json!({"exp": now - 3600, "iat": now - 7200}))),
            &invalid,
        ),
        ("without exp", Some(token_with(json!({"exp": null}))), &invalid),
        (
            "wrong audience",
            Some(token_with(json!({"aud": "someone-else"}))),
            &invalid,
        ),
        ("without audience", Some(token_with(json!({"aud": null}))), &invalid),
        (
            "wrong issuer",
            Some(token_with(json!({"iss": "someone-else"}))),
            &invalid,
        ),
        ("without issuer", Some(token_with(json!({"iss": null}))), &invalid),
        ("without subject", Some(token_with(json!({"sub": null}))), &invalid),
        (
            "not valid before an hour from now",
            Some(token_with(json!({"nbf": now + 3600}))),
            &invalid,
        ),
        (
            "issued an hour from now",
            Some(token_with(json!({"iat": now + 3600}))),
            &invalid,
        ),
        (
            "signed with another secret",
            Some(token_signed(
                json!({}),
                "not-the-secret",
                jsonwebtoken::Algorithm::HS256,
            )),
            &invalid,
        ),
        (
            "HS512",
            Some(token_signed(json!({}), SECRET, jsonwebtoken::Algorithm::HS512)),
            &invalid,
        ),
        // alg "none": header and claims with an empty signature.
        (
            "alg none",
            Some(format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.")),
            &invalid,
        ),
        (
            "over 8 KiB",
            Some(token_with(json!({"pad": "x".repeat(9 * 1024)}))),
            &invalid,
        ),
        ("garbage", Some("abc.def.ghi".to_owned()), &invalid),
    ];
    let mut routes: Vec<(Method, String)> = Vec::new();
    for kind in ["gateways", "tools", "servers", "prompts", "resources"] {
        routes.push((Method::GET, format!("/{kind}")));
        routes.push((Method::POST, format!("/{kind}")));
        routes.push((Method::GET, format!("/{kind}/x")));
        routes.push((Method::DELETE, format!("/{kind}/x")));
        routes.push((Method::POST, format!("/{kind}/x/state?activate=false")));
    }
    for (method, path) in [
        (Method::POST, "/rpc"),
        (Method::GET, "/sse"),
        (Method::GET, "/servers/x/sse"),
        (Method::POST, "/message?session_id=x"),
        (Method::POST, "/servers/x/message?session_id=x"),
        (Method::POST, "/mcp"),
        (Method::GET, "/mcp"),
        (Method::DELETE, "/mcp"),
        (Method::POST, "/servers/x/mcp"),
        (Method::GET, "/servers/x/mcp"),
        (Method::DELETE, "/servers/x/mcp"),
    ] {
        routes.push((method, path.to_owned()));
    }
    let mut checked = 0;
    for (method, path) in &routes {
        for (what, token, detail) in &tokens {
            let mut req = gw.http.request(method.clone(), gw.url(path));
            if *method == Method::POST {
                req = req.json(&json!({}));
            }
            if let Some(t) = token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert_eq!(
                (status, &body),
                (StatusCode::UNAUTHORIZED, *detail),
                "{method} {path} with {what}"
            );
            checked += 1;
        }
    }
    eprintln!(
        "{checked} requests with a bad token on {} routes: every one 401",
        routes.len()
    );
    let resp = gw.http.get(gw.url("/tools")).bearer_auth(&good).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Within the leeway (60 s) a clock a little ahead is forgiven.
    let close = token_with(json!({"nbf": now + 5, "iat": now + 5}));
    let resp = gw.http.get(gw.url("/tools")).bearer_auth(&close).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn entities_round_trip(db: Db) {
    let db = TestDb::new(db).await;
    let gw = Gateway::start(&db, &[]).await;

    let (status, gateway) = gw
        .post(
            "/gateways",
            json!({"name": "g", "url": "http://127.0.0.1:9/mcp", "transport": "STREAMABLEHTTP"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let gid = gateway["id"].as_str().unwrap().to_owned();
    assert_eq!(gid.len(), 32);
    assert_eq!(gateway["transport"], "STREAMABLEHTTP");
    assert_eq!(gateway["enabled"], true);
    assert_eq!(gateway["reachable"], true);
    assert!(gateway["createdAt"].is_string() && gateway["updatedAt"].is_string());

    let (status, tool) = gw
        .post(
            "/tools",
            json!({"tool": {"name": "weather", "url": "http://127.0.0.1:9/w", "description": "d",
                   "integration_type": "MCP", "request_type": "SSE",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
                   "gateway_id": gid}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tool}");
    let tid = tool["id"].as_str().unwrap().to_owned();
    assert_eq!(tool["integrationType"], "MCP");
    assert_eq!(tool["requestType"], "SSE");
    assert_eq!(tool["inputSchema"]["properties"]["city"]["type"], "string");
    assert_eq!(tool["gatewayId"], gid.as_str());

    let (status, server) = gw
        .post("/servers", json!({"server": {"name": "s", "associated_tools": [tid]}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "servers answer 201");
    assert_eq!(server["associatedTools"], json!([tid]));
    let sid = server["id"].as_str().unwrap().to_owned();

    let (status, prompt) = gw
        .post(
            "/prompts",
            json!({"prompt": {"name": "p", "template": "Hello {{name}}",
                   "arguments": [{"name": "name", "required": true}], "gateway_id": gid}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{prompt}");
    assert_eq!(prompt["arguments"][0]["name"], "name");
    assert_eq!(prompt["arguments"][0]["required"], true);
    let pid = prompt["id"].as_str().unwrap().to_owned();

    let (status, resource) = gw
        .post(
            "/resources",
            json!({"resource": {"uri": "file:///r.txt", "name": "r", "content": "text", "mimeType": "text/plain"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resource}");
    assert_eq!(resource["mimeType"], "text/plain");
    let rid = resource["id"].as_str().unwrap().to_owned();

    for (kind, id, created) in [
        ("gateways", &gid, &gateway),
        ("tools", &tid, &tool),
        ("servers", &sid, &server),
        ("prompts", &pid, &prompt),
        ("resources", &rid, &resource),
    ] {
        let (status, got) = gw.get(&format!("/{kind}/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{kind}");
        assert_eq!(&got, created, "GET /{kind}/id answers what POST created");
        let (status, list) = gw.get(&format!("/{kind}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(list.as_array().unwrap().contains(created), "{kind} list holds it");
    }

    // Unknown ids: 404 with the kind named.
    let missing = "0123456789abcdef0123456789abcdef";
    let (status, body) = gw.get(&format!("/tools/{missing}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], format!("Tool not found: {missing}"));
    let (status, body) = gw.get("/servers/not-an-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "Server not found: not-an-id");

    // Delete: 200 with a message, then gone; deleting a gateway takes its tools and prompts.
    let (status, body) = gw.call(Method::DELETE, &format!("/resources/{rid}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "success");
    assert!(body["message"].as_str().unwrap().contains(&rid));
    assert_eq!(gw.get(&format!("/resources/{rid}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        gw.call(Method::DELETE, &format!("/resources/{rid}"), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        gw.call(Method::DELETE, &format!("/gateways/{gid}"), None).await.0,
        StatusCode::OK
    );
    assert_eq!(gw.get(&format!("/tools/{tid}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(gw.get(&format!("/prompts/{pid}")).await.0, StatusCode::NOT_FOUND);
    let (_, server) = gw.get(&format!("/servers/{sid}")).await;
    assert_eq!(
        server["associatedTools"],
        json!([]),
        "a deleted tool leaves its servers"
    );
}

async fn toggles_answer_as_the_original(db: Db) {
    let db = TestDb::new(db).await;
    let gw = Gateway::start(&db, &[]).await;
    let tid = gw.tool("t", None).await;
    // Read twice before the write, so the answers are kept in memory (READ_CACHE_MS): the write must
    // end them, for every shape of read.
    let reads = [
        format!("/tools/{tid}"),
        "/tools?include_inactive=true".to_owned(),
        "/tools?include_inactive=true&limit=5&include_pagination=true".to_owned(),
    ];
    for _ in 0..2 {
        for r in &reads {
            assert_eq!(gw.get(r).await.0, StatusCode::OK, "{r}");
        }
    }

    let (status, body) = gw.toggle("tools", &tid, false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "success");
    assert_eq!(body["message"], format!("Tool {tid} deactivated"));
    assert_eq!(body["tool"]["enabled"], false);
    assert_eq!(body["tool"]["reachable"], false, "a tool toggle sets reachable too");
    assert_eq!(gw.get(&reads[0]).await.1["enabled"], false, "get after the write");
    assert_eq!(gw.get(&reads[1]).await.1[0]["enabled"], false, "list after the write");
    assert_eq!(
        gw.get(&reads[2]).await.1["tools"][0]["enabled"],
        false,
        "paginated list after the write"
    );
    assert_eq!(gw.get("/tools").await.1, json!([]), "the disabled tool is not listed");

    // `activate` defaults to true.
    let (status, body) = gw.call(Method::POST, &format!("/tools/{tid}/state"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], format!("Tool {tid} activated"));
    assert_eq!(body["tool"]["enabled"], true);

    let sid = gw
        .create("servers", json!({"server": {"name": "s", "associated_tools": [tid]}}))
        .await;
    let (status, body) = gw.toggle("servers", &sid, false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], sid.as_str(), "servers answer the bare server");
    assert_eq!(body["enabled"], false);
    assert_eq!(body["associatedTools"], json!([tid]));

    let pid = gw
        .create("prompts", json!({"prompt": {"name": "p", "template": "t"}}))
        .await;
    let (_, body) = gw.toggle("prompts", &pid, false).await;
    assert_eq!(body["message"], format!("Prompt {pid} deactivated"));
    assert_eq!(body["prompt"]["enabled"], false);
    let rid = gw
        .create(
            "resources",
            json!({"resource": {"uri": "u:1", "name": "r", "content": ""}}),
        )
        .await;
    let (_, body) = gw.toggle("resources", &rid, false).await;
    assert_eq!(body["resource"]["enabled"], false);

    let missing = "0123456789abcdef0123456789abcdef";
    let (status, body) = gw.toggle("tools", missing, true).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], format!("Tool not found: {missing}"));
    let (status, body) = gw.toggle("gateways", missing, true).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], format!("Gateway not found: {missing}"));
}

async fn gateway_toggle_cascades(db: Db) {
    let db = TestDb::new(db).await;
    for profile in ["fixed", "legacy"] {
        let gw = Gateway::start(&db, &[("PROFILE", profile)]).await;
        let gid = gw.gateway(&format!("g-{profile}")).await;
        let mut tools = Vec::new();
        for i in 0..3 {
            tools.push(gw.tool(&format!("t-{profile}-{i}"), Some(&gid)).await);
        }
        let pid = gw
            .create(
                "prompts",
                json!({"prompt": {"name": format!("p-{profile}"), "template": "x", "gateway_id": gid}}),
            )
            .await;
        let rid = gw
            .create(
                "resources",
                json!({"resource": {"uri": format!("u:{profile}"), "name": "r", "content": "", "gateway_id": gid}}),
            )
            .await;
        let other = gw.tool(&format!("unrelated-{profile}"), None).await;
        // Kept in memory before the cascade, which must end them.
        for t in &tools {
            assert_eq!(gw.get(&format!("/tools/{t}")).await.1["enabled"], true);
        }
        assert_eq!(gw.get(&format!("/prompts/{pid}")).await.1["enabled"], true);

        let (status, body) = gw.toggle("gateways", &gid, false).await;
        assert_eq!(status, StatusCode::OK, "{profile}: {body}");
        assert_eq!(body["message"], format!("Gateway {gid} deactivated"));
        assert_eq!(body["gateway"]["enabled"], false);
        for t in &tools {
            let (_, tool) = gw.get(&format!("/tools/{t}")).await;
            assert_eq!(
                (tool["enabled"].clone(), tool["reachable"].clone()),
                (json!(false), json!(false)),
                "{profile}"
            );
        }
        assert_eq!(
            gw.get(&format!("/prompts/{pid}")).await.1["enabled"],
            false,
            "{profile}"
        );
        assert_eq!(
            gw.get(&format!("/resources/{rid}")).await.1["enabled"],
            false,
            "{profile}"
        );
        assert_eq!(
            gw.get(&format!("/tools/{other}")).await.1["enabled"],
            true,
            "{profile}: others untouched"
        );

        let (status, body) = gw.toggle("gateways", &gid, true).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["gateway"]["enabled"], true);
        for t in &tools {
            assert_eq!(gw.get(&format!("/tools/{t}")).await.1["enabled"], true, "{profile}");
        }
        assert_eq!(gw.get(&format!("/prompts/{pid}")).await.1["enabled"], true);
    }
}

async fn listing_filters_and_pages(db: Db) {
    let db = TestDb::new(db).await;
    let gw = Gateway::start(&db, &[]).await;
    let gid = gw.gateway("g").await;
    let mut all = Vec::new();
    for i in 0..7 {
        all.push(gw.tool(&format!("t{i}"), (i % 2 == 0).then_some(gid.as_str())).await);
    }
    all.sort();
    gw.toggle("tools", &all[0], false).await;

    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, active) = gw.get("/tools").await;
    assert_eq!(ids(&active).len(), 6, "inactive tools are left out by default");
    let (_, everything) = gw.get("/tools?include_inactive=true").await;
    assert_eq!(ids(&everything), all, "sorted by id, inactive included");
    let (_, of_gateway) = gw.get(&format!("/tools?include_inactive=true&gateway_id={gid}")).await;
    assert_eq!(ids(&of_gateway).len(), 4);
    assert!(
        of_gateway
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["gatewayId"] == gid.as_str())
    );

    // Walk the pages.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/tools?include_inactive=true&include_pagination=true&limit=3".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = gw.get(&path).await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(ids(&page["tools"]));
        pages += 1;
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                assert!(page["nextCursor"].is_null());
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all, "pages cover every tool once, in order");
    let (_, page) = gw
        .get("/tools?include_inactive=true&include_pagination=true&limit=7")
        .await;
    assert!(page["nextCursor"].is_null(), "an exact last page has no next cursor");
    let (_, page) = gw.get("/gateways?include_pagination=true").await;
    assert_eq!(page["gateways"].as_array().unwrap().len(), 1);
}

/// Bodies each endpoint must refuse, with the status it refuses them with.
fn bad_bodies() -> Vec<(&'static str, String, StatusCode)> {
    vec![
        ("/tools", r#"{"tool": {"name": "x""#.into(), StatusCode::BAD_REQUEST),
        ("/tools", "not json".into(), StatusCode::BAD_REQUEST),
        (
            "/tools",
            r#"{"tool": {"name": 5}}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/tools", r#"{"tool": {}}"#.into(), StatusCode::UNPROCESSABLE_ENTITY),
        (
            "/tools",
            r#"{"name": "unwrapped"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/tools",
            r#"{"tool": {"name": ""}}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/tools",
            r#"{"tool": {"name": "x", "input_schema": []}}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/tools",
            r#"{"tool": {"name": "x", "gateway_id": "0123456789abcdef0123456789abcdef"}}"#.into(),
            // The body is well formed; what it names is not there.
            StatusCode::NOT_FOUND,
        ),
        (
            "/tools",
            r#"{"tool": {"name": "x", "gateway_id": "'; --"}}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/gateways",
            r#"{"name": "g2", "url": "ftp://x"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/gateways",
            r#"{"name": "g2", "url": "http://x", "transport": "TCP"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/gateways",
            r#"{"name": "g", "url": "http://x"}"#.into(),
            StatusCode::CONFLICT,
        ),
        (
            "/servers",
            r#"{"server": {"name": "s", "associated_tools": ["0123456789abcdef0123456789abcdef"]}}"#.into(),
            StatusCode::NOT_FOUND,
        ),
        (
            // PostgreSQL's text cannot hold NUL: its error is bad input (422), not a lock (409).
            "/resources",
            r#"{"resource": {"uri": "u://nul", "name": "r", "content": "a\u0000b"}}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/prompts",
            r#"{"prompt": {"name": "p"}}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/resources",
            r#"{"resource": {"name": "r"}}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/tools",
            format!(r#"{{"tool": {{"name": "{}"}}}}"#, "x".repeat(8000)),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ]
}

async fn bad_input_gets_a_clear_error(db: Db) {
    let db = TestDb::new(db).await;
    let gw = Gateway::start(&db, &[("MAX_BODY_BYTES", "4096")]).await;
    let raw = |method: Method, path: &str, body: &str| {
        let req = gw
            .http
            .request(method, gw.url(path))
            .bearer_auth(&gw.token)
            .header("content-type", "application/json")
            .body(body.to_owned());
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.expect("every error is JSON");
            assert!(body["detail"].is_string(), "{status} {body} has a detail");
            (status, body)
        }
    };
    let gid = gw.gateway("g").await;
    let cases = bad_bodies();
    for (path, body, expected) in &cases {
        let (status, answer) = raw(Method::POST, path, body).await;
        assert_eq!(
            status,
            *expected,
            "POST {path} {}: {answer}",
            &body[..body.len().min(80)]
        );
    }
    let (_, answer) = raw(Method::POST, "/tools", &"x".repeat(5000)).await;
    let detail = answer["detail"].as_str().unwrap();
    assert!(
        detail.contains("4096 bytes") && detail.contains("MAX_BODY_BYTES"),
        "a 413 states the limit and its setting: {answer}"
    );
    let (_, answer) = raw(
        Method::POST,
        "/tools",
        r#"{"tool": {"name": "x", "gateway_id": "0123456789abcdef0123456789abcdef"}}"#,
    )
    .await;
    assert!(answer["detail"].as_str().unwrap().contains("gateway_id"), "{answer}");

    // Quotes and SQL fragments are data: stored and served literally.
    for name in [
        r#"Robert'); DROP TABLE tools;--"#,
        r#"a "quoted" name"#,
        "ünïcødé ✓",
        "x' OR '1'='1",
    ] {
        let (status, tool) = gw
            .post("/tools", json!({"tool": {"name": name, "gateway_id": gid}}))
            .await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(tool["name"], name);
        let (_, got) = gw.get(&format!("/tools/{}", tool["id"].as_str().unwrap())).await;
        assert_eq!(got["name"], name);
    }
    assert_eq!(
        gw.get("/tools").await.1.as_array().unwrap().len(),
        4,
        "the table is still there"
    );

    for (path, expected) in [
        ("/tools?limit=0", StatusCode::UNPROCESSABLE_ENTITY),
        ("/tools?limit=abc", StatusCode::UNPROCESSABLE_ENTITY),
        ("/tools?limit=100000", StatusCode::UNPROCESSABLE_ENTITY),
        ("/tools?cursor=xyz", StatusCode::UNPROCESSABLE_ENTITY),
        ("/tools?include_inactive=maybe", StatusCode::UNPROCESSABLE_ENTITY),
        ("/tools?gateway_id=1%27%20OR%201=1", StatusCode::UNPROCESSABLE_ENTITY),
        ("/nowhere", StatusCode::NOT_FOUND),
    ] {
        let (status, _) = raw(Method::GET, path, "").await;
        assert_eq!(status, expected, "GET {path}");
    }
    let (status, _) = raw(Method::POST, &format!("/gateways/{gid}/state?activate=maybe"), "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = raw(Method::PUT, "/tools", "{}").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    assert_eq!(
        gw.metric("http_requests_total{route=\"/tools\",status=\"500\"}").await,
        None,
        "no input produced a 500"
    );
}
