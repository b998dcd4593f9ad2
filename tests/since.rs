//! The initial-sync cutoff (`link.since`, issue #16) through the real binary: `plan` shows that
//! the first pass would link only the tickets updated since the cutoff, and `once` links
//! exactly those.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use support::write_config;

/// The tickets a plan or pass output says it links.
fn linked_tickets(output: &str) -> BTreeSet<i64> {
    output
        .lines()
        .filter_map(|l| l.trim().strip_prefix("link ticket #"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

fn with_since(config: &Path, since: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let text = text.replacen("[link]\n", &format!("[link]\nsince = {since:?}\n"), 1);
    std::fs::write(config, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_pass_links_only_tickets_updated_since_the_cutoff() {
    // 40 tickets spread over the last 30 days.
    let world = support::world(41, 40, 8).await;
    let everything = {
        let dir = tempfile::tempdir().unwrap();
        let (config, _) = write_config(&world, &dir);
        linked_tickets(&support::cli(&config, &["plan"]))
    };
    let dated = {
        let dir = tempfile::tempdir().unwrap();
        let (config, _) = write_config(&world, &dir);
        with_since(&config, "2000-01-01");
        linked_tickets(&support::cli(&config, &["plan"]))
    };
    assert_eq!(
        dated, everything,
        "a cutoff before everything takes everything"
    );

    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(&world, &dir);
    with_since(&config, "10d");
    let planned = linked_tickets(&support::cli(&config, &["plan"]));
    assert!(!planned.is_empty(), "no recent ticket planned");
    assert!(
        planned.len() < everything.len() && planned.is_subset(&everything),
        "the cutoff took {planned:?} of {everything:?}"
    );

    // `once` links exactly what `plan` showed.
    support::cli(&config, &["once"]);
    let linked: BTreeSet<i64> = support::links(&dir).iter().map(|l| l.ticket_id).collect();
    assert_eq!(linked, planned);
}
