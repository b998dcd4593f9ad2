//! Alerts (`[notify]`, issue #16) through the real binary: `notify test` reaches a loopback
//! webhook receiver and an SMTP server, and a running daemon whose Trengo poll stops succeeding
//! says so once, then says it recovered.

mod support;

use std::path::Path;
use std::time::Duration;

use support::sinks::{http_sink, smtp_sink};
use support::{spawn_daemon, wait_for, write_config};
use trengo_sync::sim::faults::Faults;

const LIMIT: Duration = Duration::from_secs(90);

fn add_notify(config: &Path, section: &str) {
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str("\n[notify]\n");
    text.push_str(section);
    std::fs::write(config, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_test_reaches_the_webhook_and_the_mail_server() {
    let world = support::world(31, 3, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(&world, &dir);
    let (url, hooks) = http_sink().await;
    let (port, mails) = smtp_sink().await;
    // The URL carries a token: it comes from a file, as secrets do.
    let url_file = dir.path().join("webhook-url");
    std::fs::write(&url_file, &url).unwrap();
    add_notify(
        &config,
        &format!(
            "webhook_url_file = {:?}\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\n\
             smtp_security = \"none\"\nmail_from = \"sync@example.com\"\n\
             mail_to = [\"ops@example.com\"]\n",
            url_file.to_str().unwrap()
        ),
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_trengo-sync"))
        .args(["notify", "test", "--config", config.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("webhook: delivered") && stdout.contains("e-mail: sent"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("secret-token"),
        "the webhook URL is a secret: {stdout}"
    );
    let hook: serde_json::Value = serde_json::from_str(&hooks.lock().unwrap()[0]).unwrap();
    assert_eq!(hook["events"][0]["key"], "test", "{hook}");
    let mail = mails.lock().unwrap()[0].clone();
    assert!(mail.contains("Subject: trengo-sync test alert"), "{mail}");
    assert!(mail.contains("To: ops@example.com"), "{mail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_that_stops_succeeding_alerts_once_and_then_recovers() {
    let world = support::world(32, 3, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, listen) = write_config(&world, &dir);
    let (url, hooks) = http_sink().await;
    add_notify(
        &config,
        &format!(
            "webhook_url = {url:?}\nwebhook_format = \"slack\"\ncheck_every = \"1s\"\n\
             poll_failed_periods = 1\n"
        ),
    );
    let mut daemon = spawn_daemon(&config);
    let base = format!("http://{listen}");
    wait_for("readiness", LIMIT, async || {
        reqwest::get(format!("{base}/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;

    // Trengo answers only 5xx: the Trengo poll fails at every run.
    world.trengo().set_faults(Faults {
        server_error_rate: 1.0,
        ..Faults::default()
    });
    let texts = || -> Vec<String> {
        hooks
            .lock()
            .unwrap()
            .iter()
            .map(|b| {
                serde_json::from_str::<serde_json::Value>(b).unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    wait_for("the poll alert", LIMIT, async || {
        texts()
            .iter()
            .any(|t| t.contains("[ALERT] poll_failing:trengo_poll"))
    })
    .await;
    world.trengo().set_faults(Faults::default());
    wait_for("the recovery", LIMIT, async || {
        texts()
            .iter()
            .any(|t| t.contains("[RECOVERED] poll_failing:trengo_poll"))
    })
    .await;
    let alerts = texts()
        .iter()
        .filter(|t| t.contains("[ALERT] poll_failing:trengo_poll"))
        .count();
    assert_eq!(alerts, 1, "said more than once: {:?}", texts());
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    assert_eq!(daemon.wait().unwrap().code(), Some(0));
}
