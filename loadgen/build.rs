// Stamp results files with the revision that produced them. `--no-optional-locks`: `describe --dirty`
// refreshes the index, and writing it back would touch `.git/index` — an input of this script — so
// every build would see it changed and rebuild loadgen and everything above it.
// A build without the repository (a container image's) is given it: STAMPEDE_GIT_REVISION.
fn main() {
    println!("cargo:rerun-if-env-changed=STAMPEDE_GIT_REVISION");
    if let Some(rev) = std::env::var("STAMPEDE_GIT_REVISION").ok().filter(|r| !r.is_empty()) {
        println!("cargo:rustc-env=STAMPEDE_GIT_REVISION={rev}");
        return;
    }
    let rev = std::process::Command::new("git")
        .args(["--no-optional-locks", "describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!("cargo:rustc-env=STAMPEDE_GIT_REVISION={rev}");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/index");
}
