//! Start the gateway: open the store, bind, serve until SIGINT/SIGTERM, drain within a deadline.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::api::{self, App, AppState};
use crate::auth::Auth;
use crate::config::ServeArgs;
use crate::conn::{ConnHandle, CuttableListener};
use crate::metrics::Metrics;
use crate::rpc::Rpc;
use crate::session::Registry;
use crate::store::{PoolConfig, Store};

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Checked before anything is opened: a gateway reachable from elsewhere must not take tokens anyone
    // can mint from the published default.
    let secret = &args.auth.jwt_secret_key;
    let weak = match secret.len() {
        _ if secret == crate::config::DEFAULT_SECRET => Some("the default JWT secret (anyone could mint a token)"),
        0 => Some("an empty JWT secret (anyone could mint a token)"),
        n if n < crate::config::MIN_SECRET_BYTES => Some("a JWT secret shorter than 32 bytes (it can be guessed)"),
        _ => None,
    };
    if let Some(weak) = weak {
        anyhow::ensure!(
            args.bind.ip().is_loopback(),
            "refusing to serve {} with {weak}: set JWT_SECRET_KEY (or --jwt-secret-key) to a secret of your \
             own, e.g. JWT_SECRET_KEY=$(openssl rand -hex 32)",
            args.bind
        );
        if secret != crate::config::DEFAULT_SECRET {
            tracing::warn!("serving {} with {weak}: loopback only", args.bind);
        }
    }
    anyhow::ensure!(
        args.bind.ip().is_loopback() || args.auth.auth_required,
        "refusing to serve {} without authentication (AUTH_REQUIRED=false): that is for loopback only",
        args.bind
    );
    let behaviour = args.behaviour();
    let url = args.database_url();
    let pool = PoolConfig {
        size: args.db_pool_size.max(1),
        acquire_timeout: std::time::Duration::from_millis(args.db_pool_timeout_ms),
        pooler: args.db_pooler,
    };
    let upstream = crate::upstream::Client::new(args.outbound_allow, args.upstream_max_bytes)?;
    let store = Store::open(&url, pool, behaviour, upstream.clone())
        .await
        .with_context(|| format!("opening the database {}", redact(&url)))?;

    let info = info_labels(&args, &store);
    let listener = listen(args.bind).with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr()?;
    let sessions = Registry::new(args.sse(), args.mcp_idle_timeout(), args.session_caps());
    let bus = join_bus(&args, addr, &sessions).await?;
    let state = AppState::new(App {
        store: store.clone(),
        auth: Arc::new(Auth::new(&args.auth)),
        metrics: Metrics::default(),
        rpc: Rpc {
            store: store.clone(),
            upstream,
            sleep_max: std::time::Duration::from_millis(args.sleep_tool_max_ms),
            prompt_max: args.prompt_max_bytes,
            // Lists are as fresh as the read cache keeps them; every answer depends on the caller's
            // token, so no cache may share it across callers.
            stateless: protocol::result::Decoration::new(
                &crate::rpc::server_info(),
                args.read_cache_ms,
                protocol::result::CacheScope::Private,
            ),
        },
        sessions: Arc::clone(&sessions),
        bus,
        streamable_replies: args.streamable_http_replies,
        messages: Arc::new(tokio::sync::Semaphore::new(args.max_messages_in_flight.max(1))),
        origins: Arc::new(protocol::origin::Origins::new(args.allowed_origins.clone())),
        local_host: addr.to_string(),
        info: Arc::new(info),
        replica: replica_name(&args, addr)?,
    });
    let app = api::slowdown::layer(
        api::router(
            state,
            api::extract::BodyLimit {
                max_bytes: args.max_body_bytes,
                timeout: args.body_read_timeout,
            },
        ),
        std::time::Duration::from_micros(args.test_only_cpu_cost_us),
        std::time::Duration::from_micros(args.test_only_delay_us),
    );
    // Signals are caught from before the address is announced: whoever reads it may stop us at once.
    let stop_signal = exposition::shutdown_signal().context("installing the SIGINT/SIGTERM handlers")?;
    // The first line on stdout is the address, so scripts and tests that bind port 0 can find it.
    // A closed stdout (the reader has gone) is not a reason to stop serving.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "stampede-gateway listening on http://{addr}").and_then(|()| stdout.flush());
    drop(stdout);
    tracing::info!(%addr, backend = store.backend_name(), ?behaviour, sse = ?args.sse(), "serving");

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop_signal.await;
        let _ = stop_tx.send(true);
    });
    let mut drain_rx = stop_rx.clone();
    let server = axum::serve(
        CuttableListener::new(
            listener,
            args.max_connections,
            args.header_read_timeout,
            Some(args.keepalive_timeout).filter(|t| !t.is_zero()),
        )
        .reading_streams(args.sse().detection == crate::config::Detection::On),
        app.into_make_service_with_connect_info::<ConnHandle>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
        tracing::info!(
            sessions = sessions.active(),
            "shutting down: no new connections, ending SSE sessions, draining"
        );
        // Streams end after their final frame, so their connections can drain.
        sessions.shut_down();
    });
    let deadline = args.shutdown_timeout;
    tokio::select! {
        result = server => result.context("serving HTTP")?,
        _ = async {
            let _ = drain_rx.wait_for(|stop| *stop).await;
            tokio::time::sleep(deadline).await;
        } => tracing::warn!(?deadline, "drain deadline passed; closing remaining connections"),
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The labels of `stampede_gateway_info`: what this gateway was configured to do.
fn info_labels(args: &ServeArgs, store: &Store) -> Vec<(&'static str, String)> {
    let behaviour = args.behaviour();
    vec![
        ("profile", args.profile.as_str().to_owned()),
        ("backend", store.backend_name().to_owned()),
        ("state_cascade", behaviour.cascade.as_str().to_owned()),
        ("lock_wait", behaviour.lock_wait.as_str().to_owned()),
    ]
}

/// The session bus, when replicas share one: this replica joins it, advertising where it is reached.
async fn join_bus(
    args: &ServeArgs,
    addr: std::net::SocketAddr,
    sessions: &Arc<Registry>,
) -> anyhow::Result<Option<Arc<crate::session::Bus>>> {
    let Some(bus_url) = args.session_bus() else {
        if args.session_bus_url.is_some() {
            tracing::info!("SESSION_BUS is off: this replica answers for its own sessions only");
        }
        return Ok(None);
    };
    let advertise = args
        .session_bus_advertise
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let timeout = std::time::Duration::from_millis(args.session_bus_timeout_ms);
    let bus = crate::session::Bus::join(bus_url, advertise, Arc::clone(sessions), timeout)
        .await
        .with_context(|| format!("joining the session bus at {}", redact(bus_url)))?;
    Ok(Some(bus))
}

/// `REPLICA_NAME`, or the address this replica listens on.
fn replica_name(args: &ServeArgs, addr: std::net::SocketAddr) -> anyhow::Result<axum::http::HeaderValue> {
    let name = args.replica_name.clone().unwrap_or_else(|| addr.to_string());
    axum::http::HeaderValue::try_from(name).context("REPLICA_NAME is not a valid header value")
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &userinfo[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Connections the kernel queues before they are accepted (capped by `net.core.somaxconn`). tokio's
/// `TcpListener::bind` asks for 1024: 4000 users connecting at once overflowed it, and each dropped SYN
/// came back after the client's 1 s (then 3 s) retransmit — the bench's p99 of 1–3 s at 4000
/// connections.
const BACKLOG: u32 = 8192;

/// A listening socket on `addr` with a backlog for connection storms.
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(super::redact("postgres://u:secret@h:5/db"), "postgres://u:***@h:5/db");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
