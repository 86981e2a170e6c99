//! Many requests at once against one row, and a database that goes away and comes back.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;
use testkit::{Db, Gateway, TestDb, both, eventually};

both!(concurrent_toggles_of_one_tool_give_200_or_409_and_the_last_write_wins);

async fn concurrent_toggles_of_one_tool_give_200_or_409_and_the_last_write_wins(db: Db) {
    let db = TestDb::new(db).await;
    let gw = Gateway::start(&db, &[("PROFILE", "fixed")]).await;
    let tid = gw.tool("hot", None).await;

    let mut set = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (http, token) = (gw.http.clone(), gw.token.clone());
        let url = gw.url(&format!("/tools/{tid}/state?activate={}", i % 2 == 0));
        set.spawn(async move {
            let resp = http.post(url).bearer_auth(token).send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        });
    }
    let answers = set.join_all().await;

    let mut wins: Vec<&Value> = Vec::new();
    for (status, body) in &answers {
        match *status {
            StatusCode::OK => wins.push(&body["tool"]),
            StatusCode::CONFLICT => assert!(body["detail"].as_str().unwrap().contains("currently being modified")),
            other => panic!("only 200 and 409 are allowed, got {other}: {body}"),
        }
    }
    assert!(!wins.is_empty(), "at least one toggle succeeds");
    let conflicts = answers.len() - wins.len();
    eprintln!("{} succeeded, {conflicts} answered 409", wins.len());

    // Writes are serialized by the lock and stamped while holding it: the latest stamp is the last write.
    let last = wins
        .iter()
        .max_by_key(|t| t["updatedAt"].as_str().unwrap().to_owned())
        .unwrap();
    let (_, now) = gw.get(&format!("/tools/{tid}")).await;
    assert_eq!(
        now["enabled"], last["enabled"],
        "final state is the last successful write"
    );
    assert_eq!(now["updatedAt"], last["updatedAt"]);
    assert_eq!(
        gw.metric("lock_conflicts_total{entity=\"tool\"}").await,
        Some(conflicts as f64),
        "every 409 is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_gives_503_and_the_gateway_recovers() {
    if testkit::no_pg() {
        return;
    }
    let db = TestDb::new(Db::Postgres).await;
    let mut gw = Gateway::start(&db, &[("DB_POOL_TIMEOUT_MS", "2000")]).await;
    let tid = gw.tool("t", None).await;
    let name = db.pg_name().to_owned();
    let mut admin = sqlx::PgConnection::connect(&testkit::pg_admin_url()).await.unwrap();

    // Refuse new connections and cut the open ones.
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&mut admin)
        .await
        .unwrap();

    let resp = gw.http.get(gw.url("/ready")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "not ready");
    assert!(body["error"].is_string());
    assert_eq!(
        gw.http.get(gw.url("/health")).send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    for _ in 0..3 {
        let (status, body) = gw.get("/tools").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["detail"], "Database unavailable");
        let (status, _) = gw.toggle("tools", &tid, false).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        // JSON-RPC says the same, without the driver's text.
        let (_, answer) = gw.rpc("prompts/list", serde_json::json!({})).await;
        assert_eq!(answer["error"]["message"], "Database unavailable", "{answer}");
    }
    assert!(gw.is_running(), "no panic, no exit");

    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&mut admin)
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "the gateway to be ready again", || async {
        let status = gw.http.get(gw.url("/ready")).send().await.ok()?.status();
        (status == StatusCode::OK).then_some(())
    })
    .await;
    let (status, _) = gw.toggle("tools", &tid, false).await;
    assert_eq!(status, StatusCode::OK);
    let (status, tools) = gw.get("/tools?include_inactive=true").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tools[0]["enabled"], false);
    assert!(gw.stop().await);
}
