// Stamp results files with the revision that produced them (`git describe --dirty`).
//
// The inputs watched are HEAD, the branch it names and packed-refs (a commit or a checkout changes the
// revision) and this crate's sources (an edit changes "dirty"), never `.git/index`: `describe --dirty`
// rewrites the index of a fresh clone (its entries are racy), even with `--no-optional-locks` (git
// 2.47), so watching it made every second build rebuild loadgen and everything above it. Only files
// that exist are watched: cargo reruns a build script whose watched file is missing on every build.
// A build without the repository (a container image's) is given it: STAMPEDE_GIT_REVISION.
fn main() {
    println!("cargo:rerun-if-env-changed=STAMPEDE_GIT_REVISION");
    if let Some(rev) = std::env::var("STAMPEDE_GIT_REVISION").ok().filter(|r| !r.is_empty()) {
        println!("cargo:rustc-env=STAMPEDE_GIT_REVISION={rev}");
        return;
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("--no-optional-locks")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let rev = git(&["describe", "--always", "--dirty"]).unwrap_or_default();
    println!("cargo:rustc-env=STAMPEDE_GIT_REVISION={rev}");
    let dir = |args: &[&str]| git(args).map(|d| std::path::absolute(d).unwrap_or_default());
    // HEAD is the worktree's; refs and packed-refs are the repository's (the same outside a worktree).
    let mut watched = Vec::new();
    if let Some(git_dir) = dir(&["rev-parse", "--git-dir"]) {
        watched.push(git_dir.join("HEAD"));
    }
    if let Some(common) = dir(&["rev-parse", "--git-common-dir"]) {
        watched.push(common.join("packed-refs"));
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(common.join(branch));
        }
    }
    for path in watched.iter().filter(|p| p.is_file()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rerun-if-changed=src");
}
