//! What an operator meets at the command line (issue #16): `demo --duration` in both forms,
//! `sim`'s output saved as a configuration file, shell completions and the man page.
//! Everything runs through the real binary.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Output, Stdio};

fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trengo-sync"));
    cmd.env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("TRENGO_SYNC") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn run(args: &[&str]) -> Output {
    binary().args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn demo_accepts_a_duration_with_a_unit_and_bare_seconds() {
    for duration in ["1s", "1"] {
        let out = run(&["demo", "--duration", duration]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "demo --duration {duration}: {}",
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        assert!(stdout.contains("stops after 1s"), "{stdout}");
        assert!(stdout.contains("summary"), "{stdout}");
    }
}

#[test]
fn demo_refuses_a_duration_it_cannot_read_and_says_what_it_expects() {
    let out = run(&["demo", "--duration", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("`40s`"), "{stderr}");
    assert!(stderr.contains("soon"), "{stderr}");
}

#[test]
fn sim_output_saved_as_a_file_is_a_configuration_check_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = binary()
        .args(["sim", "--tickets", "3"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The notice comes after the configuration, on stderr: once it is there, stdout is whole.
    // Read on a thread, so a notice that never comes fails the test instead of hanging it.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut notice = String::new();
        for line in stderr.lines() {
            let Ok(line) = line else { break };
            notice.push_str(&line);
            notice.push('\n');
            if line.contains("Serving until Ctrl-C.") {
                break;
            }
        }
        let _ = tx.send(notice);
    });
    let notice = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_default();
    child.kill().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child.wait().unwrap();
    assert!(notice.contains("Serving until Ctrl-C."), "stderr: {notice}");
    assert!(!stdout.contains("Serving until"), "{stdout}");
    assert!(stdout.contains("[trengo]"), "{stdout}");

    // The whole of stdout, as `trengo-sync sim > sim.toml` saves it.
    let path = dir.path().join("sim.toml");
    std::fs::write(&path, &stdout).unwrap();
    let out = binary()
        .args(["check", "--config", path.to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "check refused sim's output: {}\n{stdout}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("configuration"),
        "{}",
        text(&out.stdout)
    );
}

mod support;

/// `history` through the binary while `run` is running (with info logs to a file): a ticket
/// closed in Trengo shows as the task completion that crossed to GHL, narrowed by link, field
/// and time, and as JSON; the daemon's log says the same change in one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_shows_what_crossed_while_the_daemon_runs_and_the_log_says_it_too() {
    use std::time::Duration;
    let world = support::world(21, 6, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _listen) = support::write_config(&world, &dir);
    let log_path = dir.path().join("daemon.log");
    let mut daemon = binary()
        .args(["run", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    support::wait_for("links", Duration::from_secs(60), async || {
        std::fs::metadata(support::store_path(&dir)).is_ok() && !support::links(&dir).is_empty()
    })
    .await;
    let link = support::links(&dir)
        .into_iter()
        .find(|l| world.trengo().ticket_json(l.ticket_id).unwrap()["status"] != "CLOSED")
        .expect("an open linked ticket");
    world.trengo().close_ticket(link.ticket_id).unwrap();
    let completion = format!("complete GHL task {}", link.task_id);
    let history = |args: &[&str]| {
        let mut all = vec!["history", "--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    support::wait_for(
        "the completion in history",
        Duration::from_secs(60),
        async || history(&[]).contains(&completion),
    )
    .await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    let all = history(&[]);
    let line = all.lines().find(|l| l.contains(&completion)).unwrap();
    assert!(line.contains(&format!("link {}", link.id.0)), "{line}");
    assert!(line.contains("status"), "{line}");
    assert!(line.contains("→ GHL"), "{line}");

    let by_link = history(&["--link", &link.id.0.to_string()]);
    assert!(by_link.contains(&completion), "{by_link}");
    assert!(
        by_link
            .lines()
            .all(|l| l.contains(&format!("link {} ", link.id.0))),
        "{by_link}"
    );
    let tags_only = history(&["--field", "tags"]);
    assert!(!tags_only.contains(&completion), "{tags_only}");
    assert!(history(&["--since", "1h"]).contains(&completion));
    let future = history(&["--since", "2999-01-01"]);
    assert!(
        future.contains("nothing in the ledger for since 2999-01-01"),
        "{future}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&history(&["--json", "--field", "status"])).unwrap();
    let entry = json
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["op"].as_str().is_some_and(|op| op.contains(&completion)))
        .unwrap_or_else(|| panic!("no completion in {json}"));
    assert_eq!(entry["direction"], "to_ghl");
    assert_eq!(entry["link"], link.id.0);
    assert_eq!(entry["kind"], "applied");

    // The daemon's info log: the same change, one line.
    assert_eq!(
        log.lines().filter(|l| l.contains(&completion)).count(),
        1,
        "{log}"
    );
}

#[test]
fn history_refuses_a_since_it_cannot_read() {
    let out = run(&["history", "--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`7d`"), "{}", text(&out.stderr));
}
