//! Following runs started with `stampede run --live ADDR` in other terminals (or pods): poll each
//! address's `GET /snapshot` once a second and show them as one run — several shards' feeds merged each
//! second (`stampede_loadgen::merge::merge_snapshots`) — and say plainly which is not there or has ended.

use std::sync::Arc;
use std::time::Duration;

use stampede_loadgen::data::Snapshot;
use tokio::sync::watch;

/// What one address answered this second.
enum Feed {
    Snapshot(Box<Snapshot>),
    /// Not (or no longer) a run's feed: the line that says why.
    Problem(String),
}

async fn poll(http: &reqwest::Client, addr: &str, seen: bool) -> Feed {
    let url = format!("http://{addr}/snapshot");
    match http.get(&url).send().await {
        Ok(resp) if resp.status().is_success() => match resp.json::<Snapshot>().await {
            Ok(s) => Feed::Snapshot(Box::new(s)),
            Err(e) => Feed::Problem(format!("{addr} does not serve stampede snapshots: {e}")),
        },
        Ok(resp) if resp.status() == reqwest::StatusCode::UNAUTHORIZED => Feed::Problem(format!(
            "{addr} asks for a token: set {} to the run's",
            stampede_loadgen::live::TOKEN_ENV
        )),
        Ok(resp) => Feed::Problem(format!("{addr}: the run has not started ({})", resp.status())),
        Err(_) if seen => Feed::Problem(format!("the run at {addr} has ended (its feed is gone)")),
        Err(_) => Feed::Problem(format!(
            "no run at {addr}: start one with `stampede run SCENARIO --live {addr}`"
        )),
    }
}

pub fn attach(addrs: Vec<String>) -> (watch::Receiver<Option<Arc<Snapshot>>>, watch::Receiver<Option<String>>) {
    let (snap_tx, snap_rx) = watch::channel(None);
    let (status_tx, status_rx) = watch::channel(Some(format!("connecting to {}…", addrs.join(", "))));
    tokio::spawn(async move {
        // A feed that asks for a token gets the one in the same variable `stampede run` reads.
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(value) = std::env::var(stampede_loadgen::live::TOKEN_ENV)
            .ok()
            .filter(|t| !t.is_empty())
            .and_then(|t| reqwest::header::HeaderValue::from_str(&format!("Bearer {t}")).ok())
        {
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .default_headers(headers)
            .build()
            .expect("client");
        // Each address's last snapshot: a shard whose feed ended still counts with what it last said.
        let mut last: Vec<Option<Snapshot>> = addrs.iter().map(|_| None).collect();
        loop {
            let polls = addrs
                .iter()
                .zip(&last)
                .map(|(addr, last)| poll(&http, addr, last.is_some()));
            let mut problems = Vec::new();
            for (feed, slot) in futures_util::future::join_all(polls).await.into_iter().zip(&mut last) {
                match feed {
                    Feed::Snapshot(s) => *slot = Some(*s),
                    Feed::Problem(p) => problems.push(p),
                }
            }
            let seen: Vec<&Snapshot> = last.iter().flatten().collect();
            if let Some(merged) = stampede_loadgen::merge::merge_snapshots(&seen) {
                let finished = merged.finished && seen.len() == addrs.len();
                snap_tx.send_replace(Some(Arc::new(merged)));
                if problems.is_empty() || finished {
                    problems = finished
                        .then(|| "the run has finished".to_owned())
                        .into_iter()
                        .collect();
                }
            }
            status_tx.send_replace((!problems.is_empty()).then(|| problems.join("; ")));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    (snap_rx, status_rx)
}
