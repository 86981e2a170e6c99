//! SIGKILL in the middle of a gateway's cascade leaves no half-toggled gateway: the gateway and every
//! tool it owns change in one transaction, so after a crash at any moment they agree — all toggled or
//! none. Killed at spread-out moments of the request, on both backends and in both profiles (legacy's
//! row-lock loop is the slow one, the likelier to be cut inside).

use std::time::Duration;

use serde_json::Value;
use testkit::{Db, Gateway, TestDb, both};

both!(a_killed_cascade_is_all_or_nothing);

const TOOLS: usize = 300;

/// The gateway's `enabled` and how many of its tools are enabled, read from a freshly started gateway.
async fn state(gw: &Gateway, id: &str) -> (bool, usize) {
    let (_, g) = gw.get(&format!("/gateways/{id}")).await;
    let (_, tools) = gw
        .get(&format!("/tools?gateway_id={id}&include_inactive=true&limit=1000"))
        .await;
    let tools = tools.as_array().unwrap_or_else(|| panic!("a list: {tools}"));
    assert_eq!(tools.len(), TOOLS, "every tool is listed");
    let enabled = tools.iter().filter(|t| t["enabled"] == Value::Bool(true)).count();
    (g["enabled"] == Value::Bool(true), enabled)
}

async fn a_killed_cascade_is_all_or_nothing(db: Db) {
    let db = TestDb::new(db).await;
    let gw = Gateway::start(&db, &[]).await;
    let id = gw.gateway("crash").await;
    for i in 0..TOOLS {
        gw.tool(&format!("t{i}"), Some(&id)).await;
    }
    // How long a whole toggle takes here: the kills are spread over 1.5 times that.
    let started = std::time::Instant::now();
    gw.toggle("gateways", &id, false).await;
    gw.toggle("gateways", &id, true).await;
    let span = started.elapsed().as_micros() as u64 * 3 / 4;
    gw.stop().await;
    let (mut committed, mut rolled_back) = (0, 0);
    for trial in 0..16u64 {
        let profile = if trial % 2 == 0 { "fixed" } else { "legacy" };
        let gw = Gateway::start(&db, &[("PROFILE", profile)]).await;
        let (before, tools_before) = state(&gw, &id).await;
        assert_eq!(
            tools_before,
            if before { TOOLS } else { 0 },
            "trial {trial} starts consistent"
        );
        let request = gw
            .http
            .post(gw.url(&format!("/gateways/{id}/state?activate={}", !before)))
            .bearer_auth(&gw.token)
            .send();
        let pending = tokio::spawn(request);
        // Spread over the request's life: before it arrives, inside the cascade, after the commit.
        let at = span * trial / 16;
        tokio::time::sleep(Duration::from_micros(at)).await;
        gw.kill().await;
        let _ = pending.await;

        let gw = Gateway::start(&db, &[]).await;
        let (after, enabled) = state(&gw, &id).await;
        assert!(
            (after && enabled == TOOLS) || (!after && enabled == 0),
            "trial {trial} ({profile}, killed after {at} µs): gateway enabled {after}, {enabled} of {TOOLS} tools enabled"
        );
        if after == before {
            rolled_back += 1;
        } else {
            committed += 1;
        }
        gw.stop().await;
    }
    eprintln!(
        "16 kills over 0..{span} µs: {committed} cascades committed whole, {rolled_back} not at all, none in part"
    );
}
