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
