//! State toggles: `POST /{kind}/{id}/state`. This is where the profiles differ.
//!
//! Fixed: an entity toggle locks its row without waiting (`FOR UPDATE NOWAIT`), so a contended row
//! gives a [`LockConflict`](super::LockConflict) at once; a gateway toggle reads its row without a lock,
//! contacts the upstream outside any transaction, then updates the gateway and each child table with one
//! bulk `UPDATE` that touches only rows whose state changes — each taking its rows with NOWAIT in the
//! same statement, so a toggle that meets a locked row is a 409, never a wait. Nothing in the fixed
//! profile waits on a row lock.
//!
//! Legacy: toggles wait for their locks, and a gateway toggle locks the gateway and then every child
//! row one by one (`FOR UPDATE` + `UPDATE` each) in one transaction, contacting the upstream while it
//! holds them — the pile-up of blocked queries and idle-in-transaction sessions seen in the field.

use super::backend::Backend;
use super::error::classify;
use super::read::ASSOCIATIONS_OF;
use super::{Result, Store, StoreError, on_backend};
use crate::config::{Activation, LockWait, StateCascade};
use crate::model::{Entity, Gateway, Kind, Prompt, Resource, Server, Tool, now};

/// `$1` id, `$2` enabled, `$3` updated_at.
const SET_TOOL: &str = "UPDATE tools SET enabled = $2, reachable = $2, updated_at = $3 WHERE id = $1 RETURNING *";
const SET_SERVER: &str = "UPDATE servers SET enabled = $2, updated_at = $3 WHERE id = $1 RETURNING *";
const SET_PROMPT: &str = "UPDATE prompts SET enabled = $2, updated_at = $3 WHERE id = $1 RETURNING *";
const SET_RESOURCE: &str = "UPDATE resources SET enabled = $2, updated_at = $3 WHERE id = $1 RETURNING *";

/// `$1` id, `$2` enabled, `$3` reachable, `$4` updated_at.
const SET_GATEWAY: &str = "UPDATE gateways SET enabled = $2, reachable = $3, updated_at = $4 WHERE id = $1 RETURNING *";
/// The same, failing at once (55P03) when another transaction holds the gateway's row.
const SET_GATEWAY_NOWAIT: &str = "UPDATE gateways SET enabled = $2, reachable = $3, updated_at = $4 \
     WHERE id = (SELECT id FROM gateways WHERE id = $1 FOR UPDATE NOWAIT) RETURNING *";
const GATEWAY_UPSTREAM: &str = "SELECT url, transport FROM gateways WHERE id = $1";

/// One child table of a gateway: how the two cascades change it. Parameters: `$1` the gateway's id
/// (bulk) or the child's id (row), `$2` enabled, then for tools `$3` reachable and `$4` updated_at,
/// for the others `$3` updated_at.
struct Child {
    kind: Kind,
    /// Fixed: one statement for the whole table, touching only rows whose state changes.
    bulk: &'static str,
    /// The same, locking those rows with NOWAIT first (in the same statement): a row another
    /// transaction holds makes the toggle a conflict instead of a wait.
    bulk_nowait: &'static str,
    /// Legacy: the ids to lock and update one by one.
    list: &'static str,
    row: &'static str,
}

impl Child {
    fn has_reachable(&self) -> bool {
        self.kind == Kind::Tool
    }
}

const CHILDREN: [Child; 3] = [
    Child {
        kind: Kind::Tool,
        bulk: "UPDATE tools SET enabled = $2, reachable = $3, updated_at = $4 \
               WHERE gateway_id = $1 AND (enabled <> $2 OR reachable <> $3)",
        bulk_nowait: "UPDATE tools SET enabled = $2, reachable = $3, updated_at = $4 WHERE id IN \
               (SELECT id FROM tools WHERE gateway_id = $1 AND (enabled <> $2 OR reachable <> $3) FOR UPDATE NOWAIT)",
        list: "SELECT id FROM tools WHERE gateway_id = $1 ORDER BY id",
        row: "UPDATE tools SET enabled = $2, reachable = $3, updated_at = $4 WHERE id = $1",
    },
    Child {
        kind: Kind::Prompt,
        bulk: "UPDATE prompts SET enabled = $2, updated_at = $3 WHERE gateway_id = $1 AND enabled <> $2",
        bulk_nowait: "UPDATE prompts SET enabled = $2, updated_at = $3 WHERE id IN \
               (SELECT id FROM prompts WHERE gateway_id = $1 AND enabled <> $2 FOR UPDATE NOWAIT)",
        list: "SELECT id FROM prompts WHERE gateway_id = $1 ORDER BY id",
        row: "UPDATE prompts SET enabled = $2, updated_at = $3 WHERE id = $1",
    },
    Child {
        kind: Kind::Resource,
        bulk: "UPDATE resources SET enabled = $2, updated_at = $3 WHERE gateway_id = $1 AND enabled <> $2",
        bulk_nowait: "UPDATE resources SET enabled = $2, updated_at = $3 WHERE id IN \
               (SELECT id FROM resources WHERE gateway_id = $1 AND enabled <> $2 FOR UPDATE NOWAIT)",
        list: "SELECT id FROM resources WHERE gateway_id = $1 ORDER BY id",
        row: "UPDATE resources SET enabled = $2, updated_at = $3 WHERE id = $1",
    },
];

/// Bind a child statement's parameters after `$1`.
macro_rules! bind_child {
    ($query:expr, $child:expr, $activate:expr, $reachable:expr, $ts:expr) => {{
        let mut q = $query.bind($activate);
        if $child.has_reachable() {
            q = q.bind($reachable);
        }
        q.bind($ts)
    }};
}

impl Store {
    /// Activate or deactivate one entity; a gateway cascades to its tools, prompts and resources.
    pub async fn set_state(&self, kind: Kind, id: &str, activate: bool) -> Result<Entity> {
        let _written = self.writing();
        match kind {
            Kind::Gateway => match self.inner.behaviour.cascade {
                StateCascade::Bulk => self.toggle_gateway_bulk(id, activate).await,
                StateCascade::RowLocks => self.toggle_gateway_row_locks(id, activate).await,
            }
            .map(Entity::Gateway),
            _ => self.toggle_entity(kind, id, activate).await,
        }
    }

    async fn toggle_entity(&self, kind: Kind, id: &str, activate: bool) -> Result<Entity> {
        let mode = self.inner.behaviour.lock_wait;
        let err = |e| classify(e, kind, id);
        on_backend!(&self.inner.pool, b => {
            let mut tx = b.begin_write(mode, &self.inner.stats).await.map_err(err)?;
            b.lock_row(&mut tx, kind, mode, id, &self.inner.stats).await?;
            let ts = now();
            macro_rules! set {
                ($ty:ty, $sql:expr) => {
                    sqlx::query_as::<_, $ty>($sql)
                        .bind(id)
                        .bind(activate)
                        .bind(&ts)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(err)?
                };
            }
            let entity = match kind {
                Kind::Tool => Entity::Tool(set!(Tool, SET_TOOL)),
                Kind::Server => {
                    let mut server = set!(Server, SET_SERVER);
                    server.associated_tools = sqlx::query_scalar(ASSOCIATIONS_OF)
                        .bind(id)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(err)?;
                    Entity::Server(server)
                }
                Kind::Prompt => Entity::Prompt(set!(Prompt, SET_PROMPT)),
                Kind::Resource => Entity::Resource(set!(Resource, SET_RESOURCE)),
                Kind::Gateway => unreachable!("gateways toggle through their cascade"),
            };
            tx.commit().await.map_err(err)?;
            Ok(entity)
        })
    }

    async fn toggle_gateway_bulk(&self, id: &str, activate: bool) -> Result<Gateway> {
        let err = |e| classify(e, Kind::Gateway, id);
        // Unlocked read; the upstream is contacted before any transaction starts.
        let Entity::Gateway(current) = self.get(Kind::Gateway, id).await? else {
            unreachable!("get(Gateway) returns a gateway")
        };
        let reachable = activate && self.contact_upstream(&current.url, &current.transport).await;
        let mode = self.inner.behaviour.lock_wait;
        on_backend!(&self.inner.pool, b => {
            let mut tx = b.begin_write(mode, &self.inner.stats).await.map_err(err)?;
            // Row-locking databases take the rows with NOWAIT inside the updates themselves; SQLite's
            // transaction already holds (or failed to get) the database's write lock.
            let nowait = mode == LockWait::Nowait && b.locks_rows();
            let ts = now();
            let gateway: Option<Gateway> = sqlx::query_as(if nowait { SET_GATEWAY_NOWAIT } else { SET_GATEWAY })
                .bind(id)
                .bind(activate)
                .bind(reachable)
                .bind(&ts)
                .fetch_optional(&mut *tx)
                .await
                .map_err(err)?;
            let Some(gateway) = gateway else {
                return Err(StoreError::NotFound { kind: Kind::Gateway, id: id.to_owned() });
            };
            for child in &CHILDREN {
                let sql = if nowait { child.bulk_nowait } else { child.bulk };
                bind_child!(sqlx::query(sql).bind(id), child, activate, reachable, &ts)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
            }
            tx.commit().await.map_err(err)?;
            Ok(gateway)
        })
    }

    async fn toggle_gateway_row_locks(&self, id: &str, activate: bool) -> Result<Gateway> {
        let err = |e| classify(e, Kind::Gateway, id);
        let stats = &self.inner.stats;
        on_backend!(&self.inner.pool, b => {
            let mut tx = b.begin_write(LockWait::Wait, stats).await.map_err(err)?;
            b.lock_row(&mut tx, Kind::Gateway, LockWait::Wait, id, stats).await?;
            let (url, transport): (String, String) = sqlx::query_as(GATEWAY_UPSTREAM)
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(err)?;
            // Upstream I/O while holding the gateway's lock: the session sits idle in transaction.
            let reachable = activate && self.contact_upstream(&url, &transport).await;
            let ts = now();
            for child in &CHILDREN {
                let ids: Vec<String> = sqlx::query_scalar(child.list)
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(err)?;
                for child_id in &ids {
                    let err = |e| classify(e, child.kind, child_id);
                    {
                        let _waiting = b.row_lock_waits(LockWait::Wait).then(|| stats.waiting());
                        sqlx::query(b.lock_row_sql(child.kind, LockWait::Wait))
                            .bind(child_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(err)?;
                    }
                    bind_child!(sqlx::query(child.row).bind(child_id), child, activate, reachable, &ts)
                        .execute(&mut *tx)
                        .await
                        .map_err(err)?;
                }
            }
            let gateway: Gateway = sqlx::query_as(SET_GATEWAY)
                .bind(id)
                .bind(activate)
                .bind(reachable)
                .bind(&ts)
                .fetch_one(&mut *tx)
                .await
                .map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(gateway)
        })
    }

    /// Reach the gateway's upstream: a real MCP initialize and tools/list over its transport
    /// (reachable when both answer in time), or a simulated round trip.
    async fn contact_upstream(&self, url: &str, transport: &str) -> bool {
        match self.inner.behaviour.activation {
            Activation::Simulated(delay) => {
                tokio::time::sleep(delay).await;
                true
            }
            Activation::Request { timeout } => {
                let transport = crate::upstream::Transport::parse(transport);
                match self.inner.upstream.discover(url, transport, timeout).await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(url, error = %e, "gateway upstream unreachable");
                        false
                    }
                }
            }
        }
    }
}
