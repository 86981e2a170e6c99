//! Creates and deletes. A delete locks its row first, the way a toggle does, so it also answers 409
//! (or waits, in the legacy profile) while the row is being modified.

use super::backend::Backend;
use super::error::classify;
use super::{Result, Store, StoreError, on_backend, per_kind};
use crate::config::Activation;
use crate::model::{
    Gateway, Kind, NewGateway, NewPrompt, NewResource, NewServer, NewTool, Prompt, Resource, Server, Tool, new_id, now,
};

const INSERT_GATEWAY: &str = "INSERT INTO gateways (id, name, url, transport, description, enabled, reachable, \
     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, TRUE, TRUE, $6, $6) RETURNING *";
const INSERT_TOOL: &str = "INSERT INTO tools (id, name, url, description, integration_type, request_type, \
     input_schema, gateway_id, enabled, reachable, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE, TRUE, $9, $9) RETURNING *";
const INSERT_FEDERATED_TOOL: &str = "INSERT INTO tools (id, name, url, description, integration_type, \
     request_type, input_schema, gateway_id, enabled, reachable, created_at, updated_at, original_name) \
     VALUES ($1, $2, NULL, $3, 'MCP', $4, $5, $6, TRUE, TRUE, $7, $7, $8)";
const INSERT_SERVER: &str = "INSERT INTO servers (id, name, description, enabled, created_at, updated_at) \
     VALUES ($1, $2, $3, TRUE, $4, $4) RETURNING *";
const INSERT_ASSOCIATION: &str = "INSERT INTO server_tools (server_id, tool_id) VALUES ($1, $2)";
const INSERT_PROMPT: &str = "INSERT INTO prompts (id, name, description, template, arguments, gateway_id, enabled, \
     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7, $7) RETURNING *";
const INSERT_RESOURCE: &str = "INSERT INTO resources (id, uri, name, description, content, mime_type, gateway_id, \
     enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8, $8) RETURNING *";

impl Store {
    /// Register a gateway. Unless activation is simulated, its upstream is initialized and listed
    /// first, outside any transaction (an upstream that fails is a 502/504 and nothing is written);
    /// the gateway and its federated tools are then inserted together.
    pub async fn create_gateway(&self, g: &NewGateway) -> Result<Gateway> {
        let _written = self.writing();
        g.validate()?;
        let federated = match self.inner.behaviour.activation {
            Activation::Simulated(_) => Vec::new(),
            Activation::Request { timeout } => {
                let transport = crate::upstream::Transport::parse(&g.transport);
                self.inner
                    .upstream
                    .discover(&g.url, transport, timeout)
                    .await
                    .map_err(|source| StoreError::Upstream {
                        url: g.url.clone(),
                        source,
                    })?
            }
        };
        let id = new_id();
        let ts = now();
        let err = |e| classify(e, Kind::Gateway, &id);
        let slug = slug(&g.name);
        on_backend!(&self.inner.pool, b => {
            let mut tx = b.pool().begin().await.map_err(err)?;
            let gateway: Gateway = sqlx::query_as(INSERT_GATEWAY)
                .bind(&id)
                .bind(&g.name)
                .bind(&g.url)
                .bind(&g.transport)
                .bind(&g.description)
                .bind(&ts)
                .fetch_one(&mut *tx)
                .await
                .map_err(err)?;
            for tool in &federated {
                let tool_id = new_id();
                sqlx::query(INSERT_FEDERATED_TOOL)
                    .bind(&tool_id)
                    .bind(format!("{slug}-{}", tool.name))
                    .bind(&tool.description)
                    .bind(&g.transport)
                    .bind(tool.input_schema.to_string())
                    .bind(&id)
                    .bind(&ts)
                    .bind(&tool.name)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| classify(e, Kind::Tool, &tool_id))?;
            }
            tx.commit().await.map_err(err)?;
            Ok(gateway)
        })
    }

    pub async fn create_tool(&self, t: &NewTool) -> Result<Tool> {
        let _written = self.writing();
        t.validate()?;
        let id = new_id();
        let schema = t.input_schema.to_string();
        on_backend!(&self.inner.pool, b => sqlx::query_as(INSERT_TOOL)
            .bind(&id)
            .bind(&t.name)
            .bind(&t.url)
            .bind(&t.description)
            .bind(&t.integration_type)
            .bind(&t.request_type)
            .bind(&schema)
            .bind(&t.gateway_id)
            .bind(now())
            .fetch_one(b.pool())
            .await)
        .map_err(|e| classify(e, Kind::Tool, &id))
    }

    pub async fn create_server(&self, s: &NewServer) -> Result<Server> {
        let _written = self.writing();
        s.validate()?;
        let id = new_id();
        let err = |e| classify(e, Kind::Server, &id);
        let mut tools = s.associated_tools.clone();
        tools.sort();
        tools.dedup();
        on_backend!(&self.inner.pool, b => {
            let mut tx = b.pool().begin().await.map_err(err)?;
            let mut server: Server = sqlx::query_as(INSERT_SERVER)
                .bind(&id)
                .bind(&s.name)
                .bind(&s.description)
                .bind(now())
                .fetch_one(&mut *tx)
                .await
                .map_err(err)?;
            for tool in &tools {
                sqlx::query(INSERT_ASSOCIATION)
                    .bind(&id)
                    .bind(tool)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
            }
            tx.commit().await.map_err(err)?;
            server.associated_tools = tools;
            Ok(server)
        })
    }

    pub async fn create_prompt(&self, p: &NewPrompt) -> Result<Prompt> {
        let _written = self.writing();
        p.validate()?;
        let id = new_id();
        let arguments = serde_json::to_string(&p.arguments).expect("arguments serialize");
        on_backend!(&self.inner.pool, b => sqlx::query_as(INSERT_PROMPT)
            .bind(&id)
            .bind(&p.name)
            .bind(&p.description)
            .bind(&p.template)
            .bind(&arguments)
            .bind(&p.gateway_id)
            .bind(now())
            .fetch_one(b.pool())
            .await)
        .map_err(|e| classify(e, Kind::Prompt, &id))
    }

    pub async fn create_resource(&self, r: &NewResource) -> Result<Resource> {
        let _written = self.writing();
        r.validate()?;
        let id = new_id();
        on_backend!(&self.inner.pool, b => sqlx::query_as(INSERT_RESOURCE)
            .bind(&id)
            .bind(&r.uri)
            .bind(&r.name)
            .bind(&r.description)
            .bind(&r.content)
            .bind(&r.mime_type)
            .bind(&r.gateway_id)
            .bind(now())
            .fetch_one(b.pool())
            .await)
        .map_err(|e| classify(e, Kind::Resource, &id))
    }

    /// Delete one entity (a gateway takes its tools, prompts and resources with it).
    pub async fn delete(&self, kind: Kind, id: &str) -> Result<()> {
        let _written = self.writing();
        let mode = self.inner.behaviour.lock_wait;
        let err = |e| classify(e, kind, id);
        on_backend!(&self.inner.pool, b => {
            let mut tx = b.begin_write(mode, &self.inner.stats).await.map_err(err)?;
            b.lock_row(&mut tx, kind, mode, id, &self.inner.stats).await?;
            sqlx::query(per_kind!(kind, "DELETE FROM ", " WHERE id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            tx.commit().await.map_err(err)
        })
    }
}

/// A gateway's name as its federated tools' prefix: lowercase, runs of anything but letters and
/// digits as one `-` (ContextForge names them the same way).
fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}
