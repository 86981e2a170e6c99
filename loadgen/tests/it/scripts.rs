//! The scripts that start throwaway parts on a shared machine, attacked as another local user would:
//! a state file planted where `contextforge.sh` looks, and a connection to the throwaway PostgreSQL
//! (and the PgBouncer in front of it) without its password.

use std::process::Command;

use sqlx::Connection as _;

fn script(name: &str) -> Command {
    Command::new(testkit::root().join("scripts").join(name))
}

#[test]
fn contextforge_stop_neither_sources_nor_removes_what_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("keep"), "mine").unwrap();
    let marker = dir.path().join("ran");
    let state = dir.path().join("planted.state");
    let planted = format!(
        "CF_PID=999999\nCF_DIR={}\ntouch {}\n",
        victim.display(),
        marker.display()
    );
    std::fs::write(&state, planted).unwrap();
    let out = script("contextforge.sh")
        .arg("stop")
        .env("STAMPEDE_CF_STATE", &state)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("left alone"), "{err}");
    assert!(victim.join("keep").exists(), "the planted directory was removed");
    assert!(!marker.exists(), "the planted state was run as a script");
}

/// Whether `url` can be connected to.
async fn connects(url: &str) -> bool {
    sqlx::PgConnection::connect(url).await.is_ok()
}

/// `url` without its password.
fn without_password(url: &str) -> String {
    let mut u = reqwest::Url::parse(url).unwrap();
    u.set_password(None).unwrap();
    u.to_string()
}

#[tokio::test]
async fn the_throwaway_postgresql_and_pgbouncer_want_the_generated_password() {
    if testkit::no_pg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pg_state = dir.path().join("pg-state");
    let started = script("pg.sh")
        .arg("start")
        .env("STAMPEDE_PG_STATE", &pg_state)
        .output()
        .unwrap();
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let url = String::from_utf8(started.stdout).unwrap().trim().to_owned();
    let stop_pg = || {
        let _ = script("pg.sh").arg("stop").env("STAMPEDE_PG_STATE", &pg_state).status();
    };
    let parsed = reqwest::Url::parse(&url).unwrap();
    let password_given = parsed.password().is_some_and(|p| p.len() >= 16);
    let (with, without) = (connects(&url).await, connects(&without_password(&url)).await);

    let pgb_state = dir.path().join("pgb-state");
    let bouncer = script("pgbouncer.sh")
        .args(["start", &url])
        .env("STAMPEDE_PGBOUNCER_STATE", &pgb_state)
        .output()
        .unwrap();
    let pgb_url = String::from_utf8_lossy(&bouncer.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("url=").map(str::to_owned));
    let through = match &pgb_url {
        Some(u) => Some((connects(u).await, connects(&without_password(u)).await)),
        None => None,
    };
    let _ = script("pgbouncer.sh")
        .arg("stop")
        .env("STAMPEDE_PGBOUNCER_STATE", &pgb_state)
        .status();
    stop_pg();

    assert!(
        password_given,
        "the URL carries a generated password: {}",
        without_password(&url)
    );
    assert!(with, "the password lets its owner in");
    assert!(!without, "no password, no connection");
    let (with, without) = through.unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&bouncer.stderr)));
    assert!(
        with && !without,
        "PgBouncer: with the password {with}, without {without}"
    );
}
