//! The lookups MCP needs: enabled tools (of a server), one tool by name, resources by URI, prompts by
//! name. Unlocked reads, the same SQL on both backends.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use super::backend::Backend;
use super::error::classify;
use super::{Result, Store, on_backend};
use crate::model::{Kind, Prompt, Resource, Tool};

const ENABLED_TOOLS: &str = "SELECT * FROM tools WHERE enabled ORDER BY name";
const ENABLED_TOOLS_OF_SERVER: &str = "SELECT t.* FROM tools t JOIN server_tools st ON st.tool_id = t.id \
     WHERE st.server_id = $1 AND t.enabled ORDER BY t.name";
const TOOL_BY_NAME: &str = "SELECT * FROM tools WHERE name = $1";
const ENABLED_RESOURCES: &str = "SELECT * FROM resources WHERE enabled ORDER BY uri";
const RESOURCE_BY_URI: &str = "SELECT * FROM resources WHERE uri = $1";
const ENABLED_PROMPTS: &str = "SELECT * FROM prompts WHERE enabled ORDER BY name";
const PROMPT_BY_NAME: &str = "SELECT * FROM prompts WHERE name = $1";
const SERVER_EXISTS: &str = "SELECT id FROM servers WHERE id = $1";

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

    /// Enabled tools, or the enabled tools associated with one server.
    pub async fn enabled_tools(&self, server_id: Option<&str>) -> Result<Vec<Tool>> {
        match server_id {
            Some(id) => self.rows(Kind::Tool, ENABLED_TOOLS_OF_SERVER, Some(id)).await,
            None => self.rows(Kind::Tool, ENABLED_TOOLS, None).await,
        }
    }

    pub async fn tool_by_name(&self, name: &str) -> Result<Option<Tool>> {
        Ok(self.rows(Kind::Tool, TOOL_BY_NAME, Some(name)).await?.pop())
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

    pub async fn server_exists(&self, id: &str) -> Result<bool> {
        let found: Vec<(String,)> = self.rows(Kind::Server, SERVER_EXISTS, Some(id)).await?;
        Ok(!found.is_empty())
    }
}
