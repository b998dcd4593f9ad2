//! The daemon as a process among processes (issue #13 items 3 and 4): one writer per store,
//! and SIGTERM ends a long pass within `schedule.stop_grace`.
//!
//! Both tests run the real binary against the fakes on loopback. No assertion is about time:
//! the SIGTERM test proves the pass was abandoned from what the store recorded (a start with no
//! end), and that the next start converges without duplicates.

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::reliability::{
    links_so_far, open_intents, settled_links, signal_and_wait, spawn_trengo_sync,
    trengo_sync_command,
};
use support::{store_path, total_writes, wait_for, write_config};
use trengo_sync::sim::faults::Faults;
use trengo_sync::store::Store;

/// Runs `trengo-sync ARGS --config CONFIG` to its end with `env` added; a process still
/// running after a minute (a second daemon that was let in) is killed and the test fails.
fn run_to_end(args: &[&str], config: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = trengo_sync_command(args, config, env);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`trengo-sync {args:?}` was still running after a minute");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits for `child` to end (it was asked to stop); kills it and fails after `limit`, so a
/// daemon that ignores the request cannot hang the suite.
fn wait_for_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the daemon did not exit within {limit:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_or_once_on_a_store_in_use_exits_naming_the_file_and_the_holder() {
    let world = support::world(41, 6, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(&world, &dir);
    let store = store_path(&dir);
    let mut daemon = spawn_trengo_sync(&["run"], &config, &[], None);
    let linked = settled_links(&world, &store, Duration::from_secs(2)).await;
    let writes = total_writes(&world);

    let holder = format!("pid {}", daemon.id());
    let shown = store.display().to_string();
    // A second daemon (on another port, so the store is what refuses it) and a `once`.
    let other_port = [("TRENGO_SYNC__HTTP__LISTEN", "127.0.0.1:0")];
    for (args, env) in [(&["run"][..], &other_port[..]), (&["once"][..], &[][..])] {
        let out = tokio::task::spawn_blocking({
            let config = config.clone();
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let env: Vec<(String, String)> = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let env: Vec<(&str, &str)> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                run_to_end(&args, &config, &env)
            }
        })
        .await
        .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(&shown), "{args:?} must name the store: {err}");
        assert!(
            err.contains(&holder),
            "{args:?} must name the holder: {err}"
        );
    }
    assert_eq!(
        total_writes(&world),
        writes,
        "the refused processes wrote nothing"
    );

    // The reading commands work beside the daemon.
    let link = linked[0].id.0.to_string();
    for args in [&["status"][..], &["plan"][..], &["explain", &link][..]] {
        let out = run_to_end(args, &config, &[]);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }

    // Once the daemon is gone, the store is free again.
    let status = signal_and_wait(&mut daemon, "TERM");
    assert_eq!(status.code(), Some(0), "{status}");
    let out = run_to_end(&["once"], &config, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Whether the store at `path` records a pass that started and never ended.
fn unfinished_pass(path: &Path) -> Option<String> {
    let store = Store::open_read_only(path).ok()?;
    trengo_sync::store::runs::all(store.conn())
        .ok()?
        .into_iter()
        .find(|r| match (r.last_started_at, r.last_finished_at) {
            (Some(started), Some(finished)) => started > finished,
            (Some(_), None) => true,
            _ => false,
        })
        .map(|r| r.job)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_long_pass_exits_within_the_grace_and_the_next_start_resumes_cleanly() {
    let world = support::world(43, 16, 6).await;
    // Every request takes 1.5 s: the first pass (linking 16 tickets, several requests each)
    // lasts minutes, far longer than the world's `stop_grace = "5s"`.
    let slow = Faults {
        latency_ms: 1500,
        ..Faults::default()
    };
    world.trengo().set_faults(slow.clone());
    world.ghl().set_faults(slow);
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(&world, &dir);
    let store = store_path(&dir);
    let log = dir.path().join("daemon.log");
    let mut daemon = spawn_trengo_sync(&["run"], &config, &[], Some(&log));

    // Mid-pass: a pass has started and not ended, and it has already written.
    wait_for(
        "a pass that has written and is still going",
        Duration::from_secs(120),
        async || total_writes(&world) > 0 && unfinished_pass(&store).is_some(),
    )
    .await;
    let sent = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = wait_for_exit(&mut daemon, Duration::from_secs(120));
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM is a clean stop: {status}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let abandoned = unfinished_pass(&store);
    assert!(
        abandoned.is_some(),
        "the daemon waited for the pass to end instead of abandoning it after stop_grace"
    );
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains("abandoned"), "{log_text}");

    // The next start (fakes fast again) settles what was in flight and converges.
    world.trengo().set_faults(Faults::default());
    world.ghl().set_faults(Faults::default());
    let mut daemon = spawn_trengo_sync(&["run"], &config, &[], Some(&log));
    let linked = settled_links(&world, &store, Duration::from_secs(3)).await;
    assert_eq!(open_intents(&store), Some(0), "every intent settled");
    let status = signal_and_wait(&mut daemon, "TERM");
    assert_eq!(status.code(), Some(0), "{status}");
    assert_eq!(links_so_far(&store).len(), linked.len());

    let reader_dir = tempfile::tempdir().unwrap();
    let reader = support::engine(&world, &reader_dir).await;
    let (links, duplicates) = support::audit(&world, &dir, &reader).await;
    assert!(links > 0);
    assert!(duplicates.is_empty(), "{duplicates:#?}");
}
