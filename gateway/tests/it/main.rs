//! The reference gateway's integration tests: the real `stampede-gateway` binary on a real socket,
//! over SQLite or a fresh PostgreSQL database (`testkit`). Each module says what it tests.

mod api;
mod cli;
mod concurrency;
mod conformance;
mod crash;
mod hostile;
mod locking;
mod mcp;
mod readme;
mod relay;
mod replicas;
mod schemathesis;
mod slowloris;
mod sse_disconnects;
mod stateless;
mod streamable;
