//! Following a `stampede run --live ADDR` in another terminal: poll `GET /snapshot` once a second and
//! say plainly when the run is not there or has ended.

use std::sync::Arc;
use std::time::Duration;

use stampede_loadgen::data::Snapshot;
use tokio::sync::watch;

pub fn attach(addr: String) -> (watch::Receiver<Option<Arc<Snapshot>>>, watch::Receiver<Option<String>>) {
    let (snap_tx, snap_rx) = watch::channel(None);
    let (status_tx, status_rx) = watch::channel(Some(format!("connecting to {addr}…")));
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .expect("client");
        let url = format!("http://{addr}/snapshot");
        let mut seen = false;
        loop {
            match http.get(&url).send().await {
                Ok(resp) if resp.status().is_success() => match resp.json::<Snapshot>().await {
                    Ok(s) => {
                        seen = true;
                        let finished = s.finished;
                        snap_tx.send_replace(Some(Arc::new(s)));
                        status_tx.send_replace(finished.then(|| "the run has finished".to_owned()));
                    }
                    Err(e) => {
                        status_tx.send_replace(Some(format!("{addr} does not serve stampede snapshots: {e}")));
                    }
                },
                Ok(resp) => {
                    status_tx.send_replace(Some(format!("{addr}: the run has not started ({})", resp.status())));
                }
                Err(_) if seen => {
                    status_tx.send_replace(Some(format!("the run at {addr} has ended (its feed is gone)")));
                }
                Err(_) => {
                    status_tx.send_replace(Some(format!(
                        "no run at {addr}: start one with `stampede run SCENARIO --live {addr}`"
                    )));
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    (snap_rx, status_rx)
}
