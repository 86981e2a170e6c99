//! The lookups MCP needs: enabled tools (of a server), one tool by name, resources by URI, prompts by
//! name. Unlocked reads, the same SQL on both backends.

use std::sync::Arc;

use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use super::backend::Backend;
use super::error::classify;
use super::{Inner, Result, Store, StoreError, on_backend};
use crate::model::{Entity, Gateway, Kind, Prompt, Resource, Tool};

// `tools/list` as one JSON text built by the database: a row per tool would cost a decoded row (and,
// on SQLite, a hop from sqlx's worker thread) per tool; the bench found that to be most of the gateway's
// CPU per call. The shape is `ToolInfo`'s: name, description only when set, inputSchema.
const SQLITE_TOOLS_JSON: &str = "SELECT COALESCE(json_group_array(json(info)), '[]') FROM (SELECT CASE WHEN description IS NULL \
     THEN json_object('name', name, 'inputSchema', json(input_schema)) \
     ELSE json_object('name', name, 'description', description, 'inputSchema', json(input_schema)) END AS info \
     FROM tools WHERE enabled ORDER BY name)";
const SQLITE_TOOLS_OF_SERVER_JSON: &str = "SELECT COALESCE(json_group_array(json(info)), '[]') FROM (SELECT CASE WHEN t.description IS NULL \
     THEN json_object('name', t.name, 'inputSchema', json(t.input_schema)) \
     ELSE json_object('name', t.name, 'description', t.description, 'inputSchema', json(t.input_schema)) END AS info \
     FROM tools t JOIN server_tools st ON st.tool_id = t.id WHERE st.server_id = $1 AND t.enabled ORDER BY t.name)";
const PG_TOOLS_JSON: &str = "SELECT COALESCE(json_agg(CASE WHEN description IS NULL \
     THEN json_build_object('name', name, 'inputSchema', input_schema::json) \
     ELSE json_build_object('name', name, 'description', description, 'inputSchema', input_schema::json) END \
     ORDER BY name), '[]')::text FROM tools WHERE enabled";
const PG_TOOLS_OF_SERVER_JSON: &str = "SELECT COALESCE(json_agg(CASE WHEN t.description IS NULL \
     THEN json_build_object('name', t.name, 'inputSchema', t.input_schema::json) \
     ELSE json_build_object('name', t.name, 'description', t.description, 'inputSchema', t.input_schema::json) END \
     ORDER BY t.name), '[]')::text FROM tools t JOIN server_tools st ON st.tool_id = t.id \
     WHERE st.server_id = $1 AND t.enabled";
const TOOL_BY_NAME: &str = "SELECT * FROM tools WHERE name = $1";
const ENABLED_RESOURCES: &str = "SELECT * FROM resources WHERE enabled ORDER BY uri";
const RESOURCE_BY_URI: &str = "SELECT * FROM resources WHERE uri = $1";
const ENABLED_PROMPTS: &str = "SELECT * FROM prompts WHERE enabled ORDER BY name";
const PROMPT_BY_NAME: &str = "SELECT * FROM prompts WHERE name = $1";
const SERVER_EXISTS: &str = "SELECT id FROM servers WHERE id = $1";
const SERVER_TOOL_SOURCES: &str = "SELECT t.original_name, t.enabled, g.id, g.name, g.url, g.transport, g.enabled \
     FROM server_tools st JOIN tools t ON t.id = st.tool_id LEFT JOIN gateways g ON g.id = t.gateway_id \
     WHERE st.server_id = $1";

/// A tool as `tools/call` finds it: the tool, and the gateway a federated one is called on.
pub struct ToolRoute {
    pub tool: Tool,
    pub gateway: Option<Gateway>,
}

/// A virtual server whose every tool is federated from one MCP server over Streamable HTTP: its
/// endpoint fronts that server whole (`api/relay.rs`), narrowed to the server's tools.
#[derive(Debug)]
pub struct FrontedServer {
    pub gateway_id: String,
    pub gateway_name: String,
    pub url: String,
    pub enabled: bool,
    /// The server's enabled tools, by the federated server's own names.
    pub tools: std::collections::HashSet<String>,
}

type SourceRow = (
    Option<String>,
    bool,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<bool>,
);

impl Store {
    /// Rows of `sql` with at most one text parameter, on whichever backend this is.
    async fn rows<T>(&self, kind: Kind, sql: &'static str, arg: Option<&str>) -> Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, PgRow> + for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin,
    {
        on_backend!(&self.inner.pool, b => {
            let mut query = sqlx::query_as::<_, T>(sql);
            if let Some(arg) = arg {
                query = query.bind(arg);
            }
            query.fetch_all(b.pool()).await.map_err(|e| classify(e, kind, arg.unwrap_or("")))
        })
    }

    /// The enabled tools (of a server) as `tools/list` lists them: a JSON array built in one query, kept
    /// in memory until the next write (`cache.rs`).
    pub async fn enabled_tools_json(&self, server_id: Option<&str>) -> Result<Arc<RawValue>> {
        let Inner { writes, tools, .. } = &*self.inner;
        let key = server_id.map(str::to_owned);
        tools
            .get_or_fill(writes, &key, || async {
                let (sql, arg) = match (&self.inner.pool, server_id) {
                    (super::Pool::Pg(_), Some(id)) => (PG_TOOLS_OF_SERVER_JSON, Some(id)),
                    (super::Pool::Pg(_), None) => (PG_TOOLS_JSON, None),
                    (super::Pool::Sqlite(_), Some(id)) => (SQLITE_TOOLS_OF_SERVER_JSON, Some(id)),
                    (super::Pool::Sqlite(_), None) => (SQLITE_TOOLS_JSON, None),
                };
                let mut rows: Vec<(String,)> = self.rows(Kind::Tool, sql, arg).await?;
                let text = rows.pop().map_or_else(|| "[]".to_owned(), |(json,)| json);
                let json: Arc<RawValue> = RawValue::from_string(text)
                    .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?
                    .into();
                Ok(json)
            })
            .await
    }

    async fn tool_by_name(&self, name: &str) -> Result<Option<Tool>> {
        Ok(self.rows(Kind::Tool, TOOL_BY_NAME, Some(name)).await?.pop())
    }

    /// What a `tools/call` of `name` needs: the tool and, for a federated one, its gateway; kept until
    /// the next write, like `tools/list` (two database round trips per call otherwise).
    pub async fn tool_route(&self, name: &str) -> Result<Option<Arc<ToolRoute>>> {
        let Inner { writes, routes, .. } = &*self.inner;
        routes
            .get_or_fill(writes, &name.to_owned(), || async {
                let Some(tool) = self.tool_by_name(name).await? else {
                    return Ok(None);
                };
                let gateway = match &tool.gateway_id {
                    Some(id) if tool.original_name.is_some() => match self.get(Kind::Gateway, id).await? {
                        Entity::Gateway(g) => Some(g),
                        _ => unreachable!("get(Gateway) returns a gateway"),
                    },
                    _ => None,
                };
                Ok(Some(Arc::new(ToolRoute { tool, gateway })))
            })
            .await
    }

    pub async fn enabled_resources(&self) -> Result<Vec<Resource>> {
        self.rows(Kind::Resource, ENABLED_RESOURCES, None).await
    }

    pub async fn resource_by_uri(&self, uri: &str) -> Result<Option<Resource>> {
        Ok(self.rows(Kind::Resource, RESOURCE_BY_URI, Some(uri)).await?.pop())
    }

    pub async fn enabled_prompts(&self) -> Result<Vec<Prompt>> {
        self.rows(Kind::Prompt, ENABLED_PROMPTS, None).await
    }

    pub async fn prompt_by_name(&self, name: &str) -> Result<Option<Prompt>> {
        Ok(self.rows(Kind::Prompt, PROMPT_BY_NAME, Some(name)).await?.pop())
    }

    /// What server `id` fronts, if its tools are all federated from one Streamable HTTP server; kept
    /// until the next write, like `tools/list`, as every request on the server's endpoint asks.
    pub async fn fronted_server(&self, id: &str) -> Result<Option<Arc<FrontedServer>>> {
        let Inner { writes, fronts, .. } = &*self.inner;
        fronts
            .get_or_fill(writes, &id.to_owned(), || async {
                let rows: Vec<SourceRow> = self.rows(Kind::Server, SERVER_TOOL_SOURCES, Some(id)).await?;
                Ok(fronted(rows).map(Arc::new))
            })
            .await
    }

    pub async fn server_exists(&self, id: &str) -> Result<bool> {
        let found: Vec<(String,)> = self.rows(Kind::Server, SERVER_EXISTS, Some(id)).await?;
        Ok(!found.is_empty())
    }
}

/// The one Streamable HTTP server all of a virtual server's tools come from; `None` when they come from
/// none, from the gateway itself or from more than one.
fn fronted(rows: Vec<SourceRow>) -> Option<FrontedServer> {
    let mut front: Option<FrontedServer> = None;
    for (original, tool_enabled, id, name, url, transport, enabled) in rows {
        let (Some(original), Some(id), Some(name), Some(url), Some(transport), Some(enabled)) =
            (original, id, name, url, transport, enabled)
        else {
            return None;
        };
        if crate::upstream::Transport::parse(&transport) != crate::upstream::Transport::StreamableHttp {
            return None;
        }
        let front = match &mut front {
            Some(front) if front.gateway_id != id => return None,
            Some(front) => front,
            None => front.insert(FrontedServer {
                gateway_id: id,
                gateway_name: name,
                url,
                enabled,
                tools: std::collections::HashSet::new(),
            }),
        };
        if tool_enabled {
            front.tools.insert(original);
        }
    }
    front
}
