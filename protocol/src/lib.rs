//! MCP on the wire, shared by every stampede part that speaks it (the gateway's `/mcp`,
//! `stampede upstream`, the generator's `mcp` action), so clients and servers here agree by
//! construction.
//!
//! Two eras: the session era (2024-11-05 to 2025-11-25: `initialize`, `Mcp-Session-Id`) and the
//! stateless era (2026-07-28: every request carries its version and capabilities in `params._meta`
//! and mirrors its routing in headers). A server tells them apart by the `MCP-Protocol-Version`
//! header of a POST, as the specification's backward-compatibility section and the official SDKs do.

pub mod envelope;
pub mod error;
pub mod handshake;
pub mod header;
pub mod mrtr;
pub mod origin;
pub mod result;
mod version;
mod visit;

pub use error::Rejection;
pub use version::{Era, Version};
