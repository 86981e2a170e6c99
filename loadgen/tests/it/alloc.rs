//! The request loop allocates nothing per request once warm: a counting allocator counts every
//! allocation made on the load threads (`stampede-load-N`, where the users run) while a real run drives
//! `http` and `rpc` actions (on tasks) or `http` alone (on the direct loop) at an in-process server on
//! real sockets, and the steady part of the run
//! (from its second second to its fourth) must show none. A `Box`, `String` or `format!` per request
//! would show as at least one per request.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::routing::{get, post};
use serde_json::{Value, json};
use stampede_loadgen::data::RequestLoop;
use stampede_loadgen::engine::{self, RunOptions};
use stampede_loadgen::scenario;

struct Counting;

static LOAD_THREAD_ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Whether this thread is a load thread: unknown (0), yes (1), no (2).
    static KIND: Cell<u8> = const { Cell::new(0) };
    /// Set while the thread's name is looked up, so an allocation on the way is not looked into again.
    static LOOKING: Cell<bool> = const { Cell::new(false) };
}

fn on_load_thread() -> bool {
    let kind = KIND.with(Cell::get);
    if kind != 0 {
        return kind == 1;
    }
    if LOOKING.with(|l| l.replace(true)) {
        return false;
    }
    let load = std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("stampede-load-"));
    KIND.with(|k| k.set(if load { 1 } else { 2 }));
    LOOKING.with(|l| l.set(false));
    load
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if on_load_thread() {
            LOAD_THREAD_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if on_load_thread() {
            LOAD_THREAD_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

async fn target() -> SocketAddr {
    let app = axum::Router::new().route("/ok", get(|| async { "ok" })).route(
        "/rpc",
        post(|Json(req): Json<Value>| async move { Json(json!({"jsonrpc": "2.0", "id": req["id"], "result": {}})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_loop_allocates_nothing_per_request_once_warm() {
    let addr = target().await;
    let actions = "[[actions]]\nname = \"get\"\nkind = \"http\"\npath = \"/ok\"\n\
                   [[actions]]\nname = \"rpc\"\nkind = \"rpc\"\nmethod = \"tools/list\"\nparams = { server_id = \"{bool}\" }\n";
    assert_eq!(steady_allocations(addr, actions).await, RequestLoop::Tasks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_loop_allocates_nothing_per_request_once_warm() {
    let addr = target().await;
    let actions = "[[actions]]\nname = \"get\"\nkind = \"http\"\npath = \"/ok\"\n";
    assert_eq!(steady_allocations(addr, actions).await, RequestLoop::Direct);
}

/// Run `actions` against the target and check the steady part allocates nothing per request on the
/// load threads; which loop ran them.
async fn steady_allocations(addr: SocketAddr, actions: &str) -> RequestLoop {
    let text = format!(
        "name = \"alloc\"\n[target]\nurl = \"http://{addr}\"\n[load]\nusers = 16\nduration = \"4s\"\n\
         [observe]\npost_load = \"0s\"\nmetrics = \"\"\n{actions}"
    );
    let s = scenario::parse("alloc.toml", &text, "alloc", &[]).unwrap_or_else(|e| panic!("{e}"));
    let (cell, mut snapshots) = tokio::sync::watch::channel(None);
    let options = RunOptions {
        snapshots: Some(Arc::new(cell)),
    };
    // (allocations on the load threads, requests) at the first snapshot at or after each mark.
    let watcher = tokio::spawn(async move {
        let mut marks = Vec::new();
        for at in [1.0, 3.0] {
            loop {
                snapshots.changed().await.unwrap();
                let seen = snapshots
                    .borrow_and_update()
                    .as_ref()
                    .map(|s| (s.elapsed_s, s.totals_all.count));
                if let Some((elapsed, count)) = seen
                    && elapsed >= at
                {
                    marks.push((LOAD_THREAD_ALLOCS.load(Ordering::Relaxed), count));
                    break;
                }
            }
        }
        marks
    });
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let out = engine::run(s, options, rx).await.expect("run");
    let marks = watcher.await.unwrap();
    let (allocs, requests) = (marks[1].0 - marks[0].0, marks[1].1 - marks[0].1);
    println!("steady part: {requests} requests, {allocs} allocations on the load threads");
    assert!(requests > 1000, "the run made too few requests to tell: {requests}");
    // The counter sees the load threads at all (warming up allocates: users' buffers, connections):
    // were they renamed, it would count nothing and pass whatever the loop did.
    assert!(
        marks[0].0 > 0,
        "no allocation seen on a `stampede-load-*` thread while warming up: is the counter blind?"
    );
    assert!(
        out.timeline.totals_all().failed == 0,
        "every request answered: {:?}",
        out.timeline.totals_all().failures
    );
    assert!(
        allocs * 1000 < requests,
        "{allocs} allocations for {requests} requests: the request loop allocates per request"
    );
    let results = stampede_loadgen::results::Results::from_run(&out, None);
    results.load.request_loop.expect("recorded")
}
