//! A session's start, in the era its `protocol` picks: `server/discover` (the stateless era) or
//! `initialize` and `notifications/initialized` (the session era). `auto` asks `server/discover` and
//! starts with `initialize` when the server does not speak the stateless era, as the official SDK's
//! client does: anything but a broken connection or a timeout counts as "does not".

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use protocol::{Era, Version, envelope};

use super::Protocol;
use super::exchange::{Answered, Awaits, Failed, exchange, status_failure};
use super::session::State;
use crate::actions::Env;
use crate::actions::conn::Conn;
use crate::actions::jsonrpc::Reply;
use crate::data::FailureKind;

pub(super) async fn start(
    protocol: Protocol,
    env: &Env,
    conn: &mut Conn,
    url: &str,
    body: &mut String,
    st: &mut State,
) -> Result<(), Failed> {
    st.session_id.clear();
    match protocol {
        Protocol::Pinned(v) if v.era() == Era::Session => initialize(env, conn, url, body, st, v).await,
        Protocol::Pinned(v) => {
            discover(env, conn, url, body, st, v).await?;
            if st.version != v.as_str() {
                return Err(Failed::protocol(
                    Some(200),
                    format!("server/discover does not list {v} among the supported versions"),
                ));
            }
            Ok(())
        }
        Protocol::Auto => match discover(env, conn, url, body, st, Version::LATEST).await {
            Ok(()) if !st.version.is_empty() => Ok(()),
            Err(f) if matches!(f.kind, FailureKind::Connect | FailureKind::Timeout) => Err(f),
            _ => {
                env.recorder.gauges.mcp.fell_back.fetch_add(1, Ordering::Relaxed);
                initialize(env, conn, url, body, st, Version::LATEST_SESSION).await
            }
        },
    }
}

/// `server/discover` at version `v`: keeps the newest stateless version the server lists in
/// `st.version` (empty when it lists none).
async fn discover(
    env: &Env,
    conn: &mut Conn,
    url: &str,
    body: &mut String,
    st: &mut State,
    v: Version,
) -> Result<(), Failed> {
    st.era = Era::Stateless;
    st.version.clear();
    st.version.push_str(v.as_str());
    if st.meta_of != v.as_str() {
        // It answers every input request (MRTR), so it says it can.
        st.meta = envelope::meta(v, &protocol::mrtr::answering_capabilities(), &client_info()).to_string();
        st.meta_of.clear();
        st.meta_of.push_str(v.as_str());
    }
    st.name.clear();
    let id = st.next_id();
    body.clear();
    let _ = write!(
        body,
        r#"{{"jsonrpc":"2.0","id":{id},"method":"server/discover","params":{{"_meta":{}}}}}"#,
        st.meta
    );
    match exchange(env, conn, url, body, st, "server/discover", Awaits::Discover(id)).await? {
        Answered::Reply(_, Reply::Result) => Ok(()),
        Answered::Reply(status, Reply::Error(code)) => Err(Failed::json_rpc(
            status,
            code,
            format!("server/discover refused with JSON-RPC error {code}"),
        )),
        Answered::Reply(status, Reply::Neither) => Err(Failed::protocol(
            Some(status),
            "server/discover answered neither a result nor an error",
        )),
        Answered::Accepted => Err(Failed::protocol(
            Some(202),
            "server/discover answered 202 without a reply",
        )),
        Answered::Gone(status) => Err(status_failure(status, "server/discover answered 404")),
    }
}

fn client_info() -> serde_json::Value {
    serde_json::json!({"name": "stampede", "version": env!("CARGO_PKG_VERSION")})
}

/// `initialize` asking for `v`, then `notifications/initialized`; keeps the session id and the
/// version the server chose.
async fn initialize(
    env: &Env,
    conn: &mut Conn,
    url: &str,
    body: &mut String,
    st: &mut State,
    v: Version,
) -> Result<(), Failed> {
    st.era = Era::Session;
    st.session_id.clear();
    st.version.clear();
    st.name.clear();
    let id = st.next_id();
    body.clear();
    let _ = write!(
        body,
        r#"{{"jsonrpc":"2.0","id":{id},"method":"initialize","params":{{"protocolVersion":"{v}","capabilities":{{}},"clientInfo":{}}}}}"#,
        client_info()
    );
    match exchange(env, conn, url, body, st, "initialize", Awaits::Initialize(id)).await? {
        Answered::Reply(_, Reply::Result) => {}
        Answered::Reply(status, Reply::Error(code)) => {
            return Err(Failed::json_rpc(
                status,
                code,
                format!("initialize refused with JSON-RPC error {code}"),
            ));
        }
        Answered::Reply(status, Reply::Neither) => {
            return Err(Failed::protocol(
                Some(status),
                "initialize answered neither a result nor an error",
            ));
        }
        Answered::Accepted => return Err(Failed::protocol(Some(202), "initialize answered 202 without a reply")),
        Answered::Gone(status) => return Err(status_failure(status, "initialize answered 404")),
    }
    if st.version.is_empty() {
        st.version.push_str(v.as_str());
    }
    body.clear();
    body.push_str(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    match exchange(env, conn, url, body, st, "notifications/initialized", Awaits::Nothing).await? {
        Answered::Gone(status) => Err(Failed::session_not_found(status, "at notifications/initialized")),
        Answered::Accepted | Answered::Reply(..) => Ok(()),
    }
}
