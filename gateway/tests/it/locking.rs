//! Lock behaviour on real PostgreSQL (and SQLite's database lock): the fixed profile answers 409 at
//! once and never leaves a backend waiting; the legacy profile waits on the lock, visibly, in
//! `pg_stat_activity`. The gateway cascade is counted statement by statement with pg_stat_statements.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use sqlx::{Connection, Row};
use testkit::{Db, Gateway, TestDb, eventually};

/// Backends of the test database now waiting on a lock, with what they run.
async fn lock_waiters(db: &TestDb, observer: &sqlx::PgPool) -> Vec<String> {
    sqlx::query(
        "SELECT query FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
    )
    .bind(db.pg_name())
    .fetch_all(observer)
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.get::<String, _>(0))
    .collect()
}

/// Another session's open transaction holding the row lock of one tool.
struct RowLock(sqlx::PgConnection);

impl RowLock {
    async fn take(db: &TestDb, tool_id: &str) -> RowLock {
        let mut conn = db.pg_conn().await;
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        let locked: Option<String> = sqlx::query_scalar("SELECT id FROM tools WHERE id = $1 FOR UPDATE")
            .bind(tool_id)
            .fetch_optional(&mut conn)
            .await
            .unwrap();
        assert!(locked.is_some());
        RowLock(conn)
    }

    async fn release(mut self) {
        sqlx::query("COMMIT").execute(&mut self.0).await.unwrap();
    }
}

async fn observer(db: &TestDb) -> sqlx::PgPool {
    sqlx::PgPool::connect(&db.url).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_toggle_of_a_locked_row_is_409_at_once_and_nothing_waits() {
    if testkit::no_pg() {
        return;
    }
    let db = TestDb::new(Db::Postgres).await;
    let gw = Gateway::start(&db, &[("PROFILE", "fixed")]).await;
    let tid = gw.tool("contended", None).await;
    let observer = observer(&db).await;
    let lock = RowLock::take(&db, &tid).await;

    // Ten toggles at once while an observer samples pg_stat_activity.
    let sampling = async {
        let mut max_waiting = 0;
        for _ in 0..20 {
            max_waiting = max_waiting.max(lock_waiters(&db, &observer).await.len());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        max_waiting
    };
    let toggles = async {
        let mut answers = Vec::new();
        for activate in (0..10).map(|i| i % 2 == 0) {
            let start = Instant::now();
            let (status, body) = gw.toggle("tools", &tid, activate).await;
            answers.push((status, body, start.elapsed()));
        }
        answers
    };
    let (max_waiting, answers) = tokio::join!(sampling, toggles);
    for (status, body, elapsed) in answers {
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(
            body,
            json!({"detail": format!("Tool {tid} is currently being modified by another request")})
        );
        assert!(elapsed < Duration::from_secs(1), "409 took {elapsed:?}");
    }
    assert_eq!(max_waiting, 0, "no backend ever waited on a lock");
    assert_eq!(gw.metric("lock_conflicts_total{entity=\"tool\"}").await, Some(10.0));
    assert_eq!(gw.metric("db_lock_waits_in_flight").await, Some(0.0));

    lock.release().await;
    let (status, _) = gw.toggle("tools", &tid, false).await;
    assert_eq!(status, StatusCode::OK, "free again once the lock is released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_gateway_toggle_meeting_a_locked_child_is_409_and_changes_nothing() {
    if testkit::no_pg() {
        return;
    }
    let db = TestDb::new(Db::Postgres).await;
    let gw = Gateway::start(&db, &[("PROFILE", "fixed")]).await;
    let gid = gw.gateway("g").await;
    let first = gw.tool("child-1", Some(&gid)).await;
    let second = gw.tool("child-2", Some(&gid)).await;
    let observer = observer(&db).await;
    let lock = RowLock::take(&db, &second).await;

    let start = Instant::now();
    let (status, body) = gw.toggle("gateways", &gid, false).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["detail"],
        format!("Gateway {gid} is currently being modified by another request")
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(lock_waiters(&db, &observer).await.is_empty());
    // All or nothing: the gateway and its other tool are untouched.
    assert_eq!(gw.get(&format!("/gateways/{gid}")).await.1["enabled"], true);
    assert_eq!(gw.get(&format!("/tools/{first}")).await.1["enabled"], true);
    assert_eq!(gw.metric("lock_conflicts_total{entity=\"gateway\"}").await, Some(1.0));

    lock.release().await;
    let (status, _) = gw.toggle("gateways", &gid, false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(gw.get(&format!("/tools/{second}")).await.1["enabled"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_toggle_waits_on_the_lock_until_it_is_released() {
    if testkit::no_pg() {
        return;
    }
    let db = TestDb::new(Db::Postgres).await;
    let gw = Gateway::start(&db, &[("PROFILE", "legacy")]).await;
    let tid = gw.tool("contended", None).await;
    let observer = observer(&db).await;
    let lock = RowLock::take(&db, &tid).await;

    let start = Instant::now();
    let request = {
        let (http, url, token) = (
            gw.http.clone(),
            gw.url(&format!("/tools/{tid}/state?activate=false")),
            gw.token.clone(),
        );
        tokio::spawn(async move { http.post(url).bearer_auth(token).send().await.map(|r| r.status()) })
    };
    let waiting = eventually(
        Duration::from_secs(10),
        "the legacy toggle to wait on the lock",
        || async {
            let w = lock_waiters(&db, &observer).await;
            (!w.is_empty()).then_some(w)
        },
    )
    .await;
    assert_eq!(waiting.len(), 1);
    assert!(
        waiting[0].contains("FOR UPDATE") && !waiting[0].contains("NOWAIT"),
        "{waiting:?}"
    );
    assert_eq!(
        gw.metric("db_lock_waits_in_flight").await,
        Some(1.0),
        "the gateway sees its own wait"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!request.is_finished(), "still waiting while the lock is held");
    lock.release().await;
    let status = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(lock_waiters(&db, &observer).await.is_empty());
    assert_eq!(gw.metric("db_lock_waits_in_flight").await, Some(0.0));
    assert_eq!(gw.metric("lock_conflicts_total{entity=\"tool\"}").await, Some(0.0));
}

/// Statements the test database has executed so far (pg_stat_statements), leaving out the
/// observer's own queries.
async fn statements(observer: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND query NOT LIKE '%pg_stat_statements%'",
    )
    .fetch_one(observer)
    .await
    .unwrap()
}

/// (id, enabled, reachable) of every child of the gateway and of the gateway itself.
async fn snapshot(observer: &sqlx::PgPool, gid: &str) -> Vec<(String, bool, bool)> {
    sqlx::query_as(
        "SELECT id, enabled, reachable FROM gateways WHERE id = $1 \
         UNION ALL SELECT id, enabled, reachable FROM tools WHERE gateway_id = $1 \
         UNION ALL SELECT id, enabled, TRUE FROM prompts WHERE gateway_id = $1 \
         UNION ALL SELECT id, enabled, TRUE FROM resources WHERE gateway_id = $1 ORDER BY 1",
    )
    .bind(gid)
    .fetch_all(observer)
    .await
    .unwrap()
}

/// Toggle the gateway; answer the statements it took and the state it left.
async fn counted_toggle(
    observer: &sqlx::PgPool,
    gw: &Gateway,
    gid: &str,
    activate: bool,
) -> (i64, Vec<(String, bool, bool)>) {
    let before = statements(observer).await;
    let (status, body) = gw.toggle("gateways", gid, activate).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let n = statements(observer).await - before;
    (n, snapshot(observer, gid).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_cascade_is_bulk_in_fixed_and_row_by_row_in_legacy_with_the_same_result() {
    const TOOLS: i64 = 500;
    const OTHERS: i64 = 50;
    if testkit::no_pg() {
        return;
    }
    let db = TestDb::new(Db::Postgres).await;
    let fixed = Gateway::start(&db, &[("PROFILE", "fixed")]).await;
    let legacy = Gateway::start(&db, &[("PROFILE", "legacy")]).await;
    let gid = fixed.gateway("big").await;
    let observer = observer(&db).await;
    let setup = format!(
        "INSERT INTO tools (id, name, integration_type, request_type, input_schema, gateway_id, created_at, updated_at) \
         SELECT md5('t' || i), 'tool-' || i, 'REST', 'POST', '{{}}', $1, 'now', 'now' FROM generate_series(1, {TOOLS}) i; \
         INSERT INTO prompts (id, name, template, arguments, gateway_id, created_at, updated_at) \
         SELECT md5('p' || i), 'prompt-' || i, 't', '[]', $1, 'now', 'now' FROM generate_series(1, {OTHERS}) i; \
         INSERT INTO resources (id, uri, name, content, gateway_id, created_at, updated_at) \
         SELECT md5('r' || i), 'res://' || i, 'r', '', $1, 'now', 'now' FROM generate_series(1, {OTHERS}) i"
    );
    for stmt in setup.split("; ") {
        sqlx::query(stmt).bind(&gid).execute(&observer).await.unwrap();
    }
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&observer)
        .await
        .expect("the test server needs shared_preload_libraries = pg_stat_statements (make test sets it)");

    let (fixed_off, fixed_off_state) = counted_toggle(&observer, &fixed, &gid, false).await;
    let (fixed_on, fixed_on_state) = counted_toggle(&observer, &fixed, &gid, true).await;
    let (legacy_off, legacy_off_state) = counted_toggle(&observer, &legacy, &gid, false).await;
    let (legacy_on, legacy_on_state) = counted_toggle(&observer, &legacy, &gid, true).await;
    eprintln!("statements per gateway toggle with {TOOLS} tools, {OTHERS} prompts, {OTHERS} resources:");
    eprintln!("  fixed: {fixed_off} (deactivate), {fixed_on} (activate); legacy: {legacy_off}, {legacy_on}");

    assert_eq!(fixed_off_state.len() as i64, 1 + TOOLS + 2 * OTHERS);
    assert!(
        fixed_off_state.iter().all(|(_, enabled, _)| !enabled),
        "every child deactivated"
    );
    assert!(
        fixed_on_state
            .iter()
            .all(|(_, enabled, reachable)| *enabled && *reachable)
    );
    assert_eq!(fixed_off_state, legacy_off_state, "both profiles leave the same state");
    assert_eq!(fixed_on_state, legacy_on_state, "both profiles leave the same state");
    // Read, begin, timeouts, gateway update, three bulk updates, commit.
    assert!(
        fixed_off <= 10 && fixed_on <= 10,
        "fixed cascade is bounded: {fixed_off}, {fixed_on}"
    );
    let children = TOOLS + 2 * OTHERS;
    assert!(
        legacy_off >= 2 * children,
        "legacy locks and updates each child: {legacy_off}"
    );

    // With nothing left to change, the bulk statements touch no rows.
    let stamps = || async {
        sqlx::query_as::<_, (String, String)>("SELECT id, updated_at FROM tools WHERE gateway_id = $1 ORDER BY id")
            .bind(&gid)
            .fetch_all(&observer)
            .await
            .unwrap()
    };
    let before = stamps().await;
    let (status, _) = fixed.toggle("gateways", &gid, true).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stamps().await,
        before,
        "re-activating an active gateway rewrites no tool row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_fixed_toggle_is_409_while_the_database_is_locked_and_legacy_waits() {
    let db = TestDb::new(Db::Sqlite).await;
    let fixed = Gateway::start(&db, &[("PROFILE", "fixed")]).await;
    let legacy = Gateway::start(&db, &[("PROFILE", "legacy"), ("DB_LOCK_TIMEOUT_MS", "20000")]).await;
    let tid = fixed.tool("contended", None).await;

    let mut holder = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();

    let start = Instant::now();
    let (status, body) = fixed.toggle("tools", &tid, false).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["detail"],
        format!("Tool {tid} is currently being modified by another request")
    );
    assert!(start.elapsed() < Duration::from_secs(1));

    let request = {
        let (http, url, token) = (
            legacy.http.clone(),
            legacy.url(&format!("/tools/{tid}/state?activate=false")),
            legacy.token.clone(),
        );
        tokio::spawn(async move { http.post(url).bearer_auth(token).send().await.map(|r| r.status()) })
    };
    eventually(Duration::from_secs(10), "the legacy toggle to wait", || async {
        (legacy.metric("db_lock_waits_in_flight").await == Some(1.0)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!request.is_finished());
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fixed.get(&format!("/tools/{tid}")).await.1["enabled"], false);
}

/// Backends of the test database idle inside an open transaction.
async fn idle_in_transaction(db: &TestDb, observer: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state = 'idle in transaction' \
         AND pid <> pg_backend_pid()",
    )
    .bind(db.pg_name())
    .fetch_one(observer)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_legacy_tool_call_holds_its_session_open_across_the_call_and_a_fixed_one_does_not() {
    if testkit::no_pg() {
        return;
    }
    for (profile, held) in [("legacy", true), ("fixed", false)] {
        let db = TestDb::new(Db::Postgres).await;
        let gw = Gateway::start(&db, &[("PROFILE", profile)]).await;
        gw.create(
            "tools",
            json!({"tool": {"name": "sleep", "input_schema": {"type": "object"}}}),
        )
        .await;
        let mut observer = db.pg_conn().await;
        // Four calls that each take 1.5 s (the built-in sleep tool stands in for an upstream's latency).
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let http = gw.http.clone();
                let (url, token) = (gw.url("/rpc"), gw.token.clone());
                tokio::spawn(async move {
                    http.post(url)
                        .bearer_auth(token)
                        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                      "params": {"name": "sleep", "arguments": {"ms": 1500}}}))
                        .send()
                        .await
                        .unwrap()
                        .status()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let idle = idle_in_transaction(&db, &mut observer).await;
        let in_use = gw.metric("db_pool_connections{state=\"in_use\"}").await.unwrap();
        for c in calls {
            assert_eq!(c.await.unwrap(), StatusCode::OK);
        }
        if held {
            assert_eq!(idle, 4, "{profile}: each call sits idle in transaction while it waits");
            assert!(in_use >= 4.0, "{profile}: and holds a pool connection ({in_use})");
        } else {
            assert_eq!(idle, 0, "{profile}: no call holds a transaction while it waits");
        }
        let observer = std::sync::Arc::new(tokio::sync::Mutex::new(observer));
        eventually(Duration::from_secs(5), "every session released after its call", || {
            let (observer, db) = (observer.clone(), &db);
            async move { (idle_in_transaction(db, &mut *observer.lock().await).await == 0).then_some(()) }
        })
        .await;
    }
}
