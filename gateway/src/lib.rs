//! stampede's reference MCP gateway: the HTTP surface of docs/api.md over PostgreSQL or SQLite, with the
//! fixed lock behaviour by default and the field failures behind `--profile legacy`.

pub mod api;
pub mod auth;
pub mod config;
pub mod conn;
pub mod metrics;
pub mod model;
pub mod rpc;
mod server;
pub use server::listen;
pub mod session;
pub mod store;
pub mod upstream;

pub use server::serve;
