//! The direct loop (`engine/models/direct`) against a server no one here wrote: every request it sends
//! is one Debian's nginx counts (`stub_status`), through connections nginx closes every 100 requests,
//! GETs and HEADs alike, and a ramp up and down.

use stampede_loadgen::data::RequestLoop;

use crate::run;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_the_direct_loop_is_one_nginx_counted() {
    let Some(bin) = testkit::nginx_binary() else { return };
    let nginx = testkit::StaticNginx::start(&bin, 100);
    let text = format!(
        "[target]\nurl = \"{}\"\n[load]\nusers = 40\nramp_up = \"500ms\"\nduration = \"2s\"\nramp_down = \"500ms\"\n\
         [observe]\npost_load = \"0s\"\nmetrics = \"\"\n\
         [[actions]]\nname = \"get\"\nkind = \"http\"\npath = \"/index.html\"\nweight = 3\n\
         [[actions]]\nname = \"head\"\nkind = \"http\"\nmethod = \"HEAD\"\npath = \"/index.html\"\n\
         [[actions]]\nname = \"missing\"\nkind = \"http\"\npath = \"/missing\"\nexpected = [404]\n",
        nginx.url
    );
    let before = nginx.served();
    let r = run(&text).await;
    let after = nginx.served();
    assert_eq!(r.load.request_loop, Some(RequestLoop::Direct));
    let count = |name: &str| r.actions.iter().find(|a| a.name == name).unwrap().summary.clone();
    let (get, head, missing) = (count("get"), count("head"), count("missing"));
    eprintln!("get {get:?}\nhead {head:?}\nmissing {missing:?}");
    assert!(
        get.count > 1000 && head.count > 300 && missing.count > 300,
        "{get:?} {head:?} {missing:?}"
    );
    assert_eq!(
        r.totals.failed,
        0,
        "{:?}",
        r.actions.iter().map(|a| &a.errors).collect::<Vec<_>>()
    );
    assert_eq!(
        (missing.expected, get.ok, head.ok),
        (missing.count, get.count, head.count)
    );
    // nginx counted each request answered and nothing else (a look at its count is one request).
    assert_eq!(after - before - 1, r.totals.count, "nginx's count against stampede's");
    // ~"ok\n" plus a head of ~200 bytes: every answer's bytes were counted.
    let bytes = r.totals.bytes_read.expect("counted");
    assert!(bytes > r.totals.count * 100, "{bytes} bytes");
}

/// Requests a server read and hung up on, unanswered.
static HUNG_UP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_a_new_connection_leaves_unanswered_is_sent_once() {
    // Only a reused connection's silence may be a stale keep-alive worth a second try: on a new one the
    // server saw the request, and sending it again would make it two.
    let url = testkit::tcp_server(|mut sock| async move {
        let mut buf = Vec::new();
        if testkit::read_head(&mut sock, &mut buf).await.is_some() {
            HUNG_UP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    })
    .await;
    let text = format!(
        "[target]\nurl = \"{url}\"\n[load]\nusers = 4\nduration = \"1s\"\n[observe]\npost_load = \"0s\"\nmetrics = \"\"\n\
         [[actions]]\nname = \"get\"\nkind = \"http\"\npath = \"/\"\n"
    );
    let r = run(&text).await;
    assert_eq!(r.load.request_loop, Some(RequestLoop::Direct));
    assert!(r.totals.count > 100, "{:?}", r.totals);
    assert_eq!(r.totals.failed, r.totals.count);
    assert_eq!(
        HUNG_UP.load(std::sync::atomic::Ordering::Relaxed),
        r.totals.count,
        "requests the server saw against the failures counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_every_request_of_the_direct_loop_is_one_nginx_counted() {
    let Some(bin) = testkit::nginx_binary() else { return };
    let certs = testkit::Certs::new();
    // nginx closes each connection after 100 requests: new handshakes (resumed) all through the run.
    let nginx = testkit::StaticNginx::start_tls(&bin, 100, &certs);
    let text = format!(
        "[target]\nurl = \"{}\"\ncacert = \"{}\"\n[load]\nusers = 40\nramp_up = \"500ms\"\nduration = \"2s\"\n\
         ramp_down = \"500ms\"\n[observe]\npost_load = \"0s\"\nmetrics = \"\"\n\
         [[actions]]\nname = \"get\"\nkind = \"http\"\npath = \"/index.html\"\nweight = 3\n\
         [[actions]]\nname = \"missing\"\nkind = \"http\"\npath = \"/missing\"\nexpected = [404]\n",
        nginx.url,
        certs.path("ca.pem").display()
    );
    let before = nginx.served();
    let r = run(&text).await;
    let after = nginx.served();
    assert_eq!(r.load.request_loop, Some(RequestLoop::Direct));
    assert!(r.totals.count > 1000, "{:?}", r.totals);
    assert_eq!(
        r.totals.failed,
        0,
        "{:?}",
        r.actions.iter().map(|a| &a.errors).collect::<Vec<_>>()
    );
    assert_eq!(after - before - 1, r.totals.count, "nginx's count against stampede's");
    // The answers' bytes as sent, decrypted: a head of ~200 bytes and "ok\n" (or the 404 page).
    let bytes = r.totals.bytes_read.expect("counted");
    assert!(
        bytes > r.totals.count * 100 && bytes < r.totals.count * 1000,
        "{bytes} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_the_direct_loop_does_not_trust_is_a_connect_failure() {
    let Some(bin) = testkit::nginx_binary() else { return };
    let (certs, other) = (testkit::Certs::new(), testkit::Certs::new());
    let nginx = testkit::StaticNginx::start_tls(&bin, 100, &certs);
    let text = format!(
        "[target]\nurl = \"{}\"\ncacert = \"{}\"\n[load]\nusers = 4\nduration = \"1s\"\n[observe]\npost_load = \"0s\"\n\
         metrics = \"\"\n[[actions]]\nname = \"get\"\nkind = \"http\"\npath = \"/index.html\"\n",
        nginx.url,
        other.path("ca.pem").display()
    );
    let before = nginx.served();
    let r = run(&text).await;
    let after = nginx.served();
    assert_eq!(r.load.request_loop, Some(RequestLoop::Direct));
    // Counted as connect errors, as a refused connect is, not as requests.
    assert!(r.totals.count == 0 && r.totals.connect_errors > 0, "{:?}", r.totals);
    let errors = format!("{:?}", r.actions[0].errors);
    assert!(
        errors.contains("TLS handshake") && errors.contains("certificate"),
        "{errors}"
    );
    assert_eq!(after - before - 1, 0, "no request reached nginx");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_handshake_that_stalls_is_a_connection_not_made() {
    // A server that takes the connection and never says a word: the handshake never ends.
    let url = testkit::tcp_server(|sock| async move {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        drop(sock);
    })
    .await;
    let https = url.replacen("http://", "https://", 1);
    let text = format!(
        "[target]\nurl = \"{https}\"\ninsecure = true\ntimeout = \"300ms\"\n[load]\nusers = 2\nduration = \"1s\"\n\
         [observe]\npost_load = \"0s\"\nmetrics = \"\"\n[[actions]]\nname = \"get\"\nkind = \"http\"\npath = \"/\"\n"
    );
    let r = run(&text).await;
    assert_eq!(r.load.request_loop, Some(RequestLoop::Direct));
    assert!(r.totals.count == 0 && r.totals.connect_errors > 0, "{:?}", r.totals);
    let errors = format!("{:?}", r.actions[0].errors);
    assert!(errors.contains("timed out"), "{errors}");
}
