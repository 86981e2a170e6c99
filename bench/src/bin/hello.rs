//! The bench's ceiling: the smallest useful HTTP server, `GET /` → `ok`. Its first stdout line names
//! the address it listens on (port 0 picks a free one), as the reference gateway's does.

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    // The gateway's backlog, so the ceiling and the gateway meet a connection storm alike.
    let listener = stampede_gateway::listen(args.bind)?;
    // A closed stdout (the bench read its line and went) is not a reason to stop serving.
    stampede_loadgen::outln!("bench-hello listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await?;
    Ok(())
}
