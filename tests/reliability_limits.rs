//! Resource limits under hostile peers (issue #13 items 9–11): answers larger than the body
//! cap fail their item with a clear error instead of being read whole; webhooks with a missing
//! or odd timestamp or a forged event name are refused; half-sent requests on the daemon's
//! listener neither pile up nor starve `/healthz` and the API clients of file descriptors.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::reliability::{Edit, apply, settled_links, signal_and_wait};
use trengo_sync::api::{ApiError, MAX_BODY_BYTES};
use trengo_sync::daemon::server::MAX_CONNECTIONS;
use trengo_sync::daemon::webhooks::sign_trengo;
use trengo_sync::sim::faults::Faults;

/// Issue #13 item 11: an answer over [`MAX_BODY_BYTES`] from either fake is not read whole;
/// the call fails with an error naming the endpoint and the limit, and an answer under the
/// limit (padded the same way) still reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_over_the_body_cap_fails_naming_the_endpoint_and_the_limit() {
    let world = support::world(63, 3, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = support::engine(&world, &dir).await;
    let person = world.people()[0].clone();
    let pad = |bytes: usize| Faults {
        pad_bytes: bytes,
        ..Faults::default()
    };

    // Padding under the cap is still a valid answer.
    world.trengo().set_faults(pad(1024 * 1024));
    world.ghl().set_faults(pad(1024 * 1024));
    engine
        .trengo
        .contact(person.trengo_contact_id)
        .await
        .unwrap();
    engine.ghl.contact(&person.ghl_contact_id).await.unwrap();

    world.trengo().set_faults(pad(MAX_BODY_BYTES + 1));
    world.ghl().set_faults(pad(MAX_BODY_BYTES + 1));
    let trengo = engine
        .trengo
        .contact(person.trengo_contact_id)
        .await
        .unwrap_err();
    let ghl = engine
        .ghl
        .contact(&person.ghl_contact_id)
        .await
        .unwrap_err();
    for (error, endpoint) in [
        (
            trengo,
            format!("Trengo GET /api/v2/contacts/{}", person.trengo_contact_id),
        ),
        (ghl, format!("GHL GET /contacts/{}", person.ghl_contact_id)),
    ] {
        assert!(
            matches!(error, ApiError::TooLarge { .. }),
            "not a size error: {error}"
        );
        assert!(
            !error.is_retryable(),
            "an oversized answer is retried: {error}"
        );
        let text = error.to_string();
        assert!(text.contains(&endpoint), "{text} does not name {endpoint}");
        assert!(
            text.contains("8 MiB limit"),
            "{text} does not name the limit"
        );
    }
    world.shutdown().await;
}

/// Starts `trengo-sync run` under `ulimit -n NOFILE` (a shell sets the limit, then execs the
/// daemon), polling every second, output appended to `log`.
fn spawn_limited_daemon(
    config: &std::path::Path,
    nofile: u32,
    log: &std::path::Path,
) -> std::process::Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_trengo-sync"))
        .args(["run", "--config", config.to_str().unwrap()]);
    for (k, _) in std::env::vars() {
        if k.starts_with("TRENGO_SYNC__") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "warn")
        .envs(support::reliability::FAST_SCHEDULE)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap()
}

/// Whether the server closed `socket` (EOF or reset) before `deadline`.
fn closed_by_server(socket: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        socket.set_read_timeout(Some(left)).unwrap();
        match socket.read(&mut buf) {
            Ok(0) => return true,
            // An error answer (408) before the close is fine; keep reading to the close.
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

/// Issue #13 items 10 and 9: a daemon allowed 128 open files gets 140 half-sent requests
/// (slowloris). `/healthz` still answers, a ticket closed meanwhile still crosses to GHL, and
/// every half-sent request is closed by the daemon instead of staying open. A webhook whose
/// event name carries a newline and an ESC is refused 404 and forges no log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_neither_stay_open_nor_starve_health_or_sync() {
    const NOFILE: u32 = 128;
    const SLOW: usize = 140;
    assert!(
        MAX_CONNECTIONS + 40 < NOFILE as usize,
        "the cap must leave room"
    );
    let world = support::world(64, 8, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, listen) = support::write_config(&world, &dir);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("enabled = false", "enabled = true")
        + "\n[webhooks.trengo_secrets]\nTICKET_CLOSED = \"whsec-limits\"\n";
    std::fs::write(&config, text).unwrap();
    let log = dir.path().join("output.log");
    let mut daemon = spawn_limited_daemon(&config, NOFILE, &log);
    let store = support::store_path(&dir);
    let linked = settled_links(&world, &store, Duration::from_secs(4)).await;

    // 140 connections that send half a request and then nothing.
    let mut slow: Vec<TcpStream> = (0..SLOW)
        .map(|_| {
            let mut s = TcpStream::connect(listen).unwrap();
            s.write_all(b"GET /status HTTP/1.1\r\nHost: trengo-sync\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();

    // While they hang: a ticket is closed, and the daemon must still reach both APIs.
    let _ = apply(&world, &linked, &Edit::CloseTicket(0));
    let task = linked[0].task_id.clone();
    let contact = linked[0].ghl_contact_id.clone();
    // A reader of its own (its own store), to look at GHL as the daemon's clients see it.
    let reader_dir = tempfile::tempdir().unwrap();
    let reader = support::engine(&world, &reader_dir).await;
    support::wait_for(
        "the close to cross to GHL",
        Duration::from_secs(120),
        async || {
            reader
                .ghl
                .tasks(&contact)
                .await
                .is_ok_and(|tasks| tasks.iter().any(|t| t.id == task && t.completed))
        },
    )
    .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let health = http
        .get(format!("http://{listen}/healthz"))
        .send()
        .await
        .expect("/healthz did not answer");
    assert_eq!(health.status().as_u16(), 200);

    // Every half-sent request is closed by the daemon (header read timeout), the ones that
    // waited in the accept queue too.
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut open = 0;
    for socket in &mut slow {
        if !closed_by_server(socket, deadline) {
            open += 1;
        }
    }
    assert_eq!(open, 0, "half-sent requests still open");

    // A forged event name: a newline that would start a fake log line, and an ESC.
    let body = format!("ticket_id={}", linked[1].ticket_id);
    let signature = sign_trengo(
        "whsec-limits",
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );
    for event in [
        "TICKET_CLOSED%0A2030-01-01T00:00:00Z%20ERROR%20FORGED-LINE",
        "TICKET_CLOSED%1B%5B2J",
    ] {
        let answer = http
            .post(format!("http://{listen}/webhooks/trengo/{event}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("Trengo-Signature", signature.clone())
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 404, "{event}");
    }
    assert_eq!(signal_and_wait(&mut daemon, "TERM").code(), Some(0));
    let output = std::fs::read_to_string(&log).unwrap();
    assert!(
        output.contains("refused a Trengo webhook"),
        "the refusal is not logged:\n{output}"
    );
    for line in output.lines() {
        assert!(!line.starts_with("2030-01-01"), "a forged log line: {line}");
        assert!(!line.contains('\u{1b}'), "an ESC in the log: {line:?}");
    }
    assert!(
        !output.contains("Too many open files"),
        "the daemon ran out of descriptors:\n{output}"
    );
    world.shutdown().await;
}
