//! The session bus: how replicas find each other's sessions. A session (HTTP+SSE or Streamable HTTP)
//! lives in the replica that opened it — its stream, its producer task — but behind a load balancer a
//! client's next request may reach any replica. A replica that gets a request for a session it does
//! not hold asks the others on PostgreSQL's `LISTEN/NOTIFY` ("who holds session X?"); the owner answers
//! with its own URL, and the request is forwarded there ([`crate::api::forward`]). The field used a
//! shared cache for the same job; PostgreSQL is what every replica already shares.
//!
//! The listener must reach PostgreSQL itself: `LISTEN` does not survive a transaction-pooling PgBouncer,
//! so the bus has its own URL (`SESSION_BUS_URL`) and its own two connections, apart from the store's
//! pool — a pool run dry must not also cut the replicas off from each other.
//!
//! Messages are short text on one channel: `q <asker> <nonce> <session>` and
//! `a <asker> <nonce> <owner url>`. Every replica sees every message; only the owner answers a question,
//! and only the asker reads an answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::sync::oneshot;

use super::Registry;

const CHANNEL: &str = "stampede_sessions";
/// Owners remembered per replica; past this the memory is cleared (it refills from the bus).
const OWNERS_KEPT: usize = 100_000;

pub struct Bus {
    /// This replica's name on the bus.
    me: String,
    /// Where other replicas forward a request for a session held here.
    url: String,
    notify: PgPool,
    pending: Mutex<HashMap<u64, oneshot::Sender<String>>>,
    next: AtomicU64,
    /// Session → owner URL, learnt from answers.
    owners: Mutex<HashMap<String, String>>,
    timeout: Duration,
    /// Forwards requests to owners (no overall timeout: a forwarded stream lasts as long as it lasts).
    http: reqwest::Client,
    listener: tokio::task::JoinHandle<()>,
}

impl Bus {
    /// Join the bus at `database_url`, answering for the sessions `registry` holds; `url` is where
    /// this replica is reached.
    pub async fn join(
        database_url: &str,
        url: String,
        registry: Arc<Registry>,
        timeout: Duration,
    ) -> anyhow::Result<Arc<Bus>> {
        let notify = PgPoolOptions::new().max_connections(2).connect(database_url).await?;
        let mut listener = PgListener::connect(database_url).await?;
        listener.listen(CHANNEL).await?;
        let me = uuid::Uuid::new_v4().simple().to_string();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()?;
        let bus = Arc::new_cyclic(|weak: &std::sync::Weak<Bus>| {
            let weak = weak.clone();
            let listener = tokio::spawn(async move {
                loop {
                    let message = match listener.recv().await {
                        Ok(m) => m,
                        Err(e) => {
                            // PgListener reconnects on the next recv; back off so a database that is
                            // away does not become a spin.
                            tracing::warn!(error = %e, "session bus: listening failed");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    };
                    let Some(bus) = weak.upgrade() else { return };
                    bus.on_message(message.payload(), &registry);
                }
            });
            Bus {
                me,
                url,
                notify,
                pending: Mutex::new(HashMap::new()),
                next: AtomicU64::new(0),
                owners: Mutex::new(HashMap::new()),
                timeout,
                http,
                listener,
            }
        });
        Ok(bus)
    }

    fn on_message(&self, payload: &str, registry: &Registry) {
        let mut parts = payload.splitn(4, ' ');
        let (Some(kind), Some(asker), Some(nonce), Some(rest)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        match kind {
            "q" if asker != self.me && registry.holds(rest) => {
                let answer = format!("a {asker} {nonce} {}", self.url);
                let pool = self.notify.clone();
                tokio::spawn(async move {
                    if let Err(e) = publish(&pool, &answer).await {
                        tracing::warn!(error = %e, "session bus: answering failed");
                    }
                });
            }
            "a" if asker == self.me => {
                let Ok(nonce) = nonce.parse::<u64>() else { return };
                if let Some(tx) = self.pending.lock().expect("bus lock").remove(&nonce) {
                    let _ = tx.send(rest.to_owned());
                }
            }
            _ => {}
        }
    }

    /// The URL of the replica that holds `session`, or `None` when no replica answers in time.
    pub async fn owner(&self, session: &str) -> Option<String> {
        if let Some(url) = self.owners.lock().expect("bus lock").get(session) {
            return Some(url.clone());
        }
        let nonce = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("bus lock").insert(nonce, tx);
        let asked = publish(&self.notify, &format!("q {} {nonce} {session}", self.me)).await;
        let url = match asked {
            Ok(()) => tokio::time::timeout(self.timeout, rx).await.ok().and_then(Result::ok),
            Err(e) => {
                tracing::warn!(error = %e, "session bus: asking failed");
                None
            }
        };
        self.pending.lock().expect("bus lock").remove(&nonce);
        let url = url?;
        let mut owners = self.owners.lock().expect("bus lock");
        if owners.len() >= OWNERS_KEPT {
            owners.clear();
        }
        owners.insert(session.to_owned(), url.clone());
        Some(url)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The owner no longer holds `session` (it answered 404): ask again next time.
    pub fn forget(&self, session: &str) {
        self.owners.lock().expect("bus lock").remove(session);
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

async fn publish(pool: &PgPool, payload: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(pool)
        .await
        .map(drop)
}
