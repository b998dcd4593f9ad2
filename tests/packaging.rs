//! Packages and what they rely on (issue #16): shell completions, man pages and the container
//! health check through the real binary; the Dockerfile's structure (no docker engine here to
//! build it) and the `cargo deb` metadata. `.ci/run` builds the .deb itself and lists it.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trengo-sync"));
    cmd.args(args).env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("TRENGO_SYNC") {
            cmd.env_remove(k);
        }
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn project_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name))
        .unwrap_or_else(|e| panic!("cannot read {name}: {e}"))
}

#[test]
fn completions_cover_every_command_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for command in ["run", "history", "status", "completions"] {
            assert!(
                script.contains(command),
                "{shell} lacks {command}:\n{script}"
            );
        }
    }
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_prints_the_page_and_writes_one_per_command() {
    let out = run(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH trengo-sync 1"),
        "{page}"
    );
    assert!(page.contains("history"), "{page}");

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("man1");
    let out = run(&["man", "--dir", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for page in [
        "trengo-sync.1",
        "trengo-sync-run.1",
        "trengo-sync-history.1",
    ] {
        let body = std::fs::read_to_string(target.join(page)).unwrap();
        assert!(body.contains(".SH NAME"), "{page}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_passes_against_a_running_daemon_and_fails_without_one() {
    let world = support::world(31, 4, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, listen) = support::write_config(&world, &dir);
    let config = config.to_str().unwrap().to_string();

    let out = run(&["healthcheck", "--config", &config]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&listen.to_string()), "{stderr}");
    assert!(stderr.contains("http.listen"), "{stderr}");

    let mut daemon = support::spawn_daemon(Path::new(&config));
    let mut last = String::new();
    support::wait_for("a healthy daemon", Duration::from_secs(60), async || {
        let out = run(&["healthcheck", "--config", &config]);
        last = text(&out.stderr);
        out.status.code() == Some(0)
    })
    .await;
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert!(last.is_empty(), "{last}");
}

/// The instructions of the Dockerfile's last stage (the image that runs).
fn runtime_stage(dockerfile: &str) -> Vec<String> {
    let joined = dockerfile.replace("\\\n", " ");
    let lines: Vec<String> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    lines[last_from..].to_vec()
}

#[test]
fn dockerfile_builds_on_rust_and_runs_non_root_with_state_in_a_volume_and_a_health_check() {
    let dockerfile = project_file("Dockerfile");
    assert!(
        dockerfile.contains("ARG RUST_IMAGE=rust:")
            && dockerfile.contains("FROM ${RUST_IMAGE} AS builder"),
        "the builder is the official Rust image"
    );
    let stage = runtime_stage(&dockerfile);
    assert!(
        !stage[0].contains("RUST_IMAGE"),
        "runs on the small image: {}",
        stage[0]
    );
    let user = stage
        .iter()
        .rfind(|l| l.starts_with("USER "))
        .expect("the runtime stage sets USER");
    let who = user.trim_start_matches("USER ").split(':').next().unwrap();
    assert!(who != "root" && who != "0", "{user}");
    assert!(
        stage
            .iter()
            .any(|l| l.starts_with("VOLUME") && l.contains("/var/lib/trengo-sync")),
        "{stage:?}"
    );
    let health = stage
        .iter()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("a HEALTHCHECK");
    assert!(health.contains("\"healthcheck\""), "{health}");
    assert!(
        stage
            .iter()
            .any(|l| l.contains("TRENGO_SYNC__STORE__PATH=/var/lib/trengo-sync/")),
        "the store is in the volume: {stage:?}"
    );
    // What the image build copies exists, and the build context leaves out the target dir.
    for copied in ["Cargo.toml", "Cargo.lock", "build.rs", "src", "benches"] {
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(copied).exists(),
            "{copied}"
        );
    }
    assert!(project_file(".dockerignore").lines().any(|l| l == "target"));
    let compose = project_file("compose.yaml");
    assert!(compose.contains("/var/lib/trengo-sync"), "{compose}");
    assert!(compose.contains("TOKEN_FILE: /run/secrets/"), "{compose}");
}

#[test]
fn deb_metadata_installs_the_binary_both_units_and_the_example_configuration() {
    let manifest: toml::Value = project_file("Cargo.toml").parse().unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    let assets: Vec<(String, String)> = deb["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a[0].as_str().unwrap().to_string(),
                a[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let installs = |source: &str, dest: &str| {
        assets
            .iter()
            .any(|(s, d)| s == source && d.starts_with(dest))
    };
    assert!(
        installs("target/release/trengo-sync", "usr/bin/"),
        "{assets:?}"
    );
    assert!(installs(
        "systemd/trengo-sync.service",
        "lib/systemd/system/"
    ));
    assert!(installs(
        "systemd/trengo-sync@.service",
        "lib/systemd/system/"
    ));
    assert!(installs(
        "config.example.toml",
        "etc/trengo-sync/config.toml"
    ));
    assert_eq!(
        deb["conf-files"].as_array().unwrap()[0].as_str(),
        Some("/etc/trengo-sync/config.toml")
    );
    // The units start the binary where the package puts it.
    for unit in [
        "systemd/trengo-sync.service",
        "systemd/trengo-sync@.service",
    ] {
        assert!(
            project_file(unit).contains("ExecStart=/usr/bin/trengo-sync run"),
            "{unit}"
        );
    }
    // Every source outside target/ (which packaging/build-deb fills) is in the repository.
    for (source, _) in assets.iter().filter(|(s, _)| !s.starts_with("target/")) {
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(source).exists(),
            "{source}"
        );
    }
}
