//! Build script: tells the binary which git commit it was built from, for the
//! `trengo_sync_build_info` metric. `TRENGO_SYNC_GIT_COMMIT` in the build environment wins
//! (a container build has no `.git`); else `git rev-parse` on the checkout; else `unknown`.
//! Nothing here touches the network.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=TRENGO_SYNC_GIT_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let from_env = std::env::var("TRENGO_SYNC_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    let commit = from_env.or_else(|| {
        // Rebuild when HEAD moves: HEAD itself (a branch switch) and the branch's ref (a
        // commit), in this worktree's git dir and the shared one. Only paths that exist, since
        // cargo reruns on every build for a missing one.
        let git_dir = git(&["rev-parse", "--git-dir"]).map(PathBuf::from);
        let common = git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from);
        let head_ref = git(&["symbolic-ref", "-q", "HEAD"]);
        let mut watch = Vec::new();
        if let Some(dir) = &git_dir {
            watch.push(dir.join("HEAD"));
        }
        if let (Some(dir), Some(r)) = (common.as_ref().or(git_dir.as_ref()), &head_ref) {
            watch.push(dir.join(r));
            watch.push(dir.join("packed-refs"));
        }
        for path in watch.into_iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
        git(&["rev-parse", "--short=12", "HEAD"])
    });
    println!(
        "cargo:rustc-env=TRENGO_SYNC_GIT_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".to_string())
    );
}
