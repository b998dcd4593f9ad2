//! `/metrics` as an operator's Prometheus sees it (issue #16): a real `trengo-sync run`
//! process against the fakes, scraped after its first passes. Every family README.md
//! documents is there with its labels, the list in `src/daemon/metrics.rs` and README's table
//! agree, and `promtool check metrics` (when installed) finds nothing to complain about.

mod support;

use std::time::Duration;

use support::{spawn_daemon, wait_for, write_config};
use trengo_sync::daemon::metrics::METRICS;

/// The metric names README.md's "Metrics" table lists, in order.
fn documented() -> Vec<String> {
    let readme = include_str!("../README.md");
    let section = readme
        .split("\n## Metrics\n")
        .nth(1)
        .expect("README.md has a `## Metrics` section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn readme_documents_exactly_the_metrics_the_daemon_declares() {
    let declared: Vec<String> = METRICS.iter().map(|(n, _, _)| n.to_string()).collect();
    assert_eq!(documented(), declared);
}

/// The labels of the samples of `name` (histogram samples by their `_bucket`, `_sum` and
/// `_count` lines), without `le`.
fn label_names(text: &str, name: &str) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let rest = rest
            .strip_prefix("_bucket")
            .or_else(|| rest.strip_prefix("_sum"))
            .or_else(|| rest.strip_prefix("_count"))
            .unwrap_or(rest);
        let Some(labels) = rest.strip_prefix('{') else {
            continue;
        };
        let labels = labels.split('}').next().unwrap();
        for pair in labels.split("\",") {
            if let Some((key, _)) = pair.split_once('=')
                && key != "le"
            {
                names.insert(key.trim_start_matches(',').to_string());
            }
        }
    }
    names.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_daemon_exports_every_documented_metric_after_a_pass() {
    let world = support::world(16, 6, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, listen) = write_config(&world, &dir);
    let mut child = spawn_daemon(&config);
    let http = reqwest::Client::new();
    let url = format!("http://{listen}/metrics");
    let mut text = String::new();
    // After both polls have passed once, every family has a sample.
    wait_for("both polls to pass", Duration::from_secs(90), async || {
        let Ok(response) = http.get(&url).send().await else {
            return false;
        };
        text = response.text().await.unwrap_or_default();
        ["trengo_poll", "ghl_poll"].iter().all(|job| {
            text.contains(&format!(
                "trengo_sync_last_success_timestamp_seconds{{job=\"{job}\"}}"
            ))
        }) && text.contains("api=\"ghl\"")
            && text.contains("api=\"trengo\"")
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();

    for (name, kind, labels) in METRICS {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "missing `# TYPE {name} {kind}` in:\n{text}"
        );
        let mut expected: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        expected.sort();
        assert_eq!(
            label_names(&text, name),
            expected,
            "labels of {name} in:\n{text}"
        );
    }
    // The values an operator reads first.
    assert!(
        text.contains(&format!(
            "trengo_sync_build_info{{version=\"{}\",git_commit=\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(
        text.contains("trengo_sync_api_requests_total{api=\"trengo\",status=\"200\"}"),
        "{text}"
    );
    assert!(
        text.contains("trengo_sync_pass_seconds_bucket{job=\"trengo_poll\",le=\"0.05\"}"),
        "{text}"
    );
    assert!(
        text.contains("trengo_sync_queue_depth{queue=\"retries_due\"} 0"),
        "{text}"
    );
    assert!(text.contains("trengo_sync_stuck_items 0"), "{text}");
    if std::env::var_os("SHOW_METRICS").is_some() {
        eprintln!("{text}");
    }
    support::promtool_check(&text);
}
