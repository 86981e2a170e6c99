//! Reads: list with filters and cursor pagination, get by id. No locks, on either backend. The REST
//! endpoints take the answer as the JSON body to send, kept between writes (`cache.rs`): a hit costs a
//! hash lookup and a reference count, a miss one query (two for servers) and one serialization.

use bytes::Bytes;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use sqlx::{Database, Executor, IntoArguments};

use super::backend::Backend;
use super::error::classify;
use super::{Inner, ListQuery, Page, Result, Store, StoreError, on_backend, per_kind};
use crate::model::{Entity, Gateway, Kind, Prompt, Resource, Server, Tool};

/// How a listing is sent: the bare array, or `{"<kind>s": [...], "nextCursor": …}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListShape {
    Items,
    Paginated,
}

/// What a cached REST answer was the answer to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum ReadKey {
    List(Kind, ListQuery, ListShape),
    Get(Kind, String),
}

/// `{"<kind>": [...], "nextCursor": …}` without building a JSON tree first.
struct Paginated<'a> {
    key: &'static str,
    page: &'a Page<Entity>,
}

impl Serialize for Paginated<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry(self.key, &self.page.items)?;
        map.serialize_entry("nextCursor", &self.page.next_cursor)?;
        map.end()
    }
}

fn body(value: &impl Serialize) -> Bytes {
    // The entities are plain data: serializing them cannot fail.
    Bytes::from(serde_json::to_vec(value).expect("entities serialize"))
}

/// `$1` include inactive, `$2` cursor (the last id of the previous page), `$3` limit.
macro_rules! list_sql {
    ($kind:expr) => {
        per_kind!(
            $kind,
            "SELECT * FROM ",
            " WHERE (enabled OR $1) AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        )
    };
}

const LIST_TOOLS_OF_GATEWAY: &str = "SELECT * FROM tools WHERE (enabled OR $1) AND ($2 IS NULL OR id > $2) \
     AND gateway_id = $4 ORDER BY id LIMIT $3";

/// Associations of the servers whose ids lie in `[$1, $2]` (one page of servers).
const ASSOCIATIONS_IN_RANGE: &str =
    "SELECT server_id, tool_id FROM server_tools WHERE server_id >= $1 AND server_id <= $2 ORDER BY server_id, tool_id";

pub(crate) const ASSOCIATIONS_OF: &str = "SELECT tool_id FROM server_tools WHERE server_id = $1 ORDER BY tool_id";

impl Store {
    /// A listing as the JSON body the REST endpoint sends, from memory when nothing was written since.
    pub async fn list_json(&self, kind: Kind, query: ListQuery, shape: ListShape) -> Result<Bytes> {
        let Inner { writes, reads, .. } = &*self.inner;
        let key = ReadKey::List(kind, query, shape);
        reads
            .get_or_fill(writes, &key, || async {
                let ReadKey::List(_, query, _) = &key else {
                    unreachable!("built above")
                };
                let page = self.list(kind, query).await?;
                Ok(match shape {
                    ListShape::Items => body(&page.items),
                    ListShape::Paginated => body(&Paginated {
                        key: kind.plural(),
                        page: &page,
                    }),
                })
            })
            .await
    }

    /// One entity as the JSON body the REST endpoint sends, from memory when nothing was written since.
    pub async fn get_json(&self, kind: Kind, id: &str) -> Result<Bytes> {
        let Inner { writes, reads, .. } = &*self.inner;
        let key = ReadKey::Get(kind, id.to_owned());
        reads
            .get_or_fill(writes, &key, || async { Ok(body(&self.get(kind, id).await?)) })
            .await
    }

    pub async fn list(&self, kind: Kind, q: &ListQuery) -> Result<Page<Entity>> {
        // One row more than asked tells whether there is a next page.
        let fetch = q.limit.map_or(i64::MAX, |l| i64::from(l) + 1);
        let mut items = on_backend!(&self.inner.pool, b => {
            let p = b.pool();
            let sql = match (kind, &q.gateway_id) {
                (Kind::Tool, Some(_)) => LIST_TOOLS_OF_GATEWAY,
                _ => list_sql!(kind),
            };
            macro_rules! fetch {
                ($ty:ty, $variant:ident) => {{
                    let mut query = sqlx::query_as::<_, $ty>(sql)
                        .bind(q.include_inactive)
                        .bind(q.cursor.as_deref())
                        .bind(fetch);
                    if let (Kind::Tool, Some(g)) = (kind, &q.gateway_id) {
                        query = query.bind(g.as_str());
                    }
                    query.fetch_all(p).await.map_err(|e| classify(e, kind, ""))?
                        .into_iter().map(Entity::$variant).collect::<Vec<_>>()
                }};
            }
            match kind {
                Kind::Gateway => fetch!(Gateway, Gateway),
                Kind::Tool => fetch!(Tool, Tool),
                Kind::Server => {
                    let mut servers: Vec<Server> = sqlx::query_as(sql)
                        .bind(q.include_inactive)
                        .bind(q.cursor.as_deref())
                        .bind(fetch)
                        .fetch_all(p)
                        .await
                        .map_err(|e| classify(e, kind, ""))?;
                    attach_associations(p, &mut servers).await?;
                    servers.into_iter().map(Entity::Server).collect()
                }
                Kind::Prompt => fetch!(Prompt, Prompt),
                Kind::Resource => fetch!(Resource, Resource),
            }
        });
        let next_cursor = match q.limit {
            Some(limit) if items.len() > limit as usize => {
                items.truncate(limit as usize);
                items.last().map(|e| e.id().to_owned())
            }
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }

    pub async fn get(&self, kind: Kind, id: &str) -> Result<Entity> {
        let not_found = || StoreError::NotFound {
            kind,
            id: id.to_owned(),
        };
        let sql = per_kind!(kind, "SELECT * FROM ", " WHERE id = $1");
        on_backend!(&self.inner.pool, b => {
            let p = b.pool();
            macro_rules! get {
                ($ty:ty) => {
                    sqlx::query_as::<_, $ty>(sql)
                        .bind(id)
                        .fetch_optional(p)
                        .await
                        .map_err(|e| classify(e, kind, id))?
                        .ok_or_else(not_found)?
                };
            }
            Ok(match kind {
                Kind::Gateway => Entity::Gateway(get!(Gateway)),
                Kind::Tool => Entity::Tool(get!(Tool)),
                Kind::Server => {
                    let mut server = get!(Server);
                    server.associated_tools = sqlx::query_scalar(ASSOCIATIONS_OF)
                        .bind(id)
                        .fetch_all(p)
                        .await
                        .map_err(|e| classify(e, kind, id))?;
                    Entity::Server(server)
                }
                Kind::Prompt => Entity::Prompt(get!(Prompt)),
                Kind::Resource => Entity::Resource(get!(Resource)),
            })
        })
    }
}

/// Fill `associated_tools` of one page of servers (sorted by id) with a single range query.
async fn attach_associations<'e, DB, E>(exec: E, servers: &mut [Server]) -> Result<()>
where
    DB: Database,
    E: Executor<'e, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    (String, String): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let (Some(first), Some(last)) = (servers.first(), servers.last()) else {
        return Ok(());
    };
    let pairs: Vec<(String, String)> = sqlx::query_as(ASSOCIATIONS_IN_RANGE)
        .bind(first.id.as_str())
        .bind(last.id.as_str())
        .fetch_all(exec)
        .await
        .map_err(|e| classify(e, Kind::Server, ""))?;
    // Both lists are sorted by server id: walk them together.
    let mut pairs = pairs.into_iter().peekable();
    for server in servers.iter_mut() {
        while let Some((sid, _)) = pairs.peek() {
            match sid.as_str().cmp(server.id.as_str()) {
                std::cmp::Ordering::Less => {
                    pairs.next();
                }
                std::cmp::Ordering::Equal => {
                    let (_, tool) = pairs.next().expect("peeked");
                    server.associated_tools.push(tool);
                }
                std::cmp::Ordering::Greater => break,
            }
        }
    }
    Ok(())
}
