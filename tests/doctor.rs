//! `trengo-sync doctor` against the fakes: a kind account where everything the engine assumes
//! holds, and a harsh one with a difference planted for each check, which doctor must report.

mod support;

use trengo_sync::config::{Config, Zone};
use trengo_sync::doctor::{self, DoctorOptions, DoctorReport, Outcome};
use trengo_sync::sim::Faults;
use trengo_sync::sim::world::{SimWorld, WorldOptions};
use trengo_sync::store::{self, Store};
use trengo_sync::sync::engine::Engine;

fn line<'a>(report: &'a DoctorReport, check: &str) -> &'a doctor::Finding {
    report
        .finding(check)
        .unwrap_or_else(|| panic!("no line for {check}:\n{}", report.text()))
}

async fn doctor_on(
    world: &SimWorld,
    dir: &tempfile::TempDir,
    edit: impl FnOnce(&mut Config),
) -> (Engine, DoctorReport) {
    let mut config = world
        .config(&support::store_path(dir), "127.0.0.1:0".parse().unwrap())
        .unwrap();
    edit(&mut config);
    let engine =
        Engine::from_config(&config, trengo_sync::clock::SystemClock::shared(), false).unwrap();
    let ticket = world.trengo().ticket_ids()[0];
    let options = DoctorOptions {
        probe_writes: true,
        ticket: Some(ticket),
    };
    let report = doctor::run(&engine, &options).await;
    (engine, report)
}

#[tokio::test]
async fn doctor_passes_a_kind_account_and_reports_each_planted_difference_in_a_harsh_one() {
    // Kind: every uncertain switch set the optimistic way, the configuration matching.
    let mut kind = WorldOptions::unpaced(21, 30, 6);
    kind.assignee = true;
    kind.trengo.next_link_keeps_filters = true;
    kind.trengo.label_bumps_updated_at = true;
    kind.trengo.note_bumps_updated_at = true;
    kind.trengo.users_carry_account_zone = true;
    let world = support::start_world(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, report) = doctor_on(&world, &dir, |_| {}).await;
    let text = report.text();
    for f in &report.findings {
        assert!(
            !matches!(f.outcome, Outcome::Fail | Outcome::Warn),
            "kind account: {}\n{text}",
            f.check
        );
    }
    assert_eq!(report.exit_code(), doctor::EXIT_OK, "{text}");
    assert_eq!(line(&report, "trengo paging").outcome, Outcome::Ok);
    assert!(
        line(&report, "trengo updated_at_gt")
            .found
            .contains("narrows")
    );
    assert!(
        line(&report, "probe label")
            .found
            .contains("attaching label")
    );
    assert!(
        line(&report, "probe label")
            .found
            .contains(" moves updated_at")
    );
    assert!(
        line(&report, "probe note")
            .found
            .contains(" moves updated_at")
    );
    assert_eq!(line(&report, "probe zone").outcome, Outcome::Ok);
    assert_eq!(
        line(&report, "trengo rate-limit headers").outcome,
        Outcome::Ok
    );
    assert_eq!(line(&report, "ghl GET /users/").outcome, Outcome::Ok);
    let bumps = engine
        .store
        .call(|s| store::facts::learned_bumps(s.conn()))
        .await
        .unwrap();
    assert_eq!((bumps.label, bumps.note), (Some(true), Some(true)));
    // The probe left the ticket's labels as they were.
    let ticket = world.trengo().ticket_ids()[0];
    let labels = engine.trengo.ticket(ticket).await.unwrap().labels;
    engine.bind_identity().await.unwrap();
    // One writer per store: this engine goes before the next doctor opens the store.
    drop(engine);
    let (engine, again) = doctor_on(&world, &dir, |_| {}).await;
    assert_eq!(line(&again, "store binding").outcome, Outcome::Ok);
    assert_eq!(engine.trengo.ticket(ticket).await.unwrap().labels, labels);

    // Harsh: the fakes' pessimistic defaults, an account west of the configured zone, a GHL
    // users answer of another shape, a channel the token cannot see, the store bound elsewhere.
    let mut harsh = WorldOptions::unpaced(22, 30, 6);
    harsh.assignee = true;
    harsh.trengo.zone = chrono_tz::America::New_York;
    let world = support::start_world(harsh).await;
    world.ghl().set_faults(Faults {
        strip_keys: vec!["users".into()],
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(support::store_path(&dir)).unwrap();
        let other = store::identity::Identity {
            trengo_account: "https://other.example (agency 1)".into(),
            ghl_location: "another-location".into(),
        };
        store::identity::bind(s.conn(), &other, chrono::Utc::now()).unwrap();
    }
    let (engine, report) = doctor_on(&world, &dir, |c| {
        c.trengo.timezone = Zone(chrono_tz::Europe::Amsterdam);
        c.link.trengo_channel_id = Some(999_999);
    })
    .await;
    let text = report.text();
    assert_eq!(report.exit_code(), doctor::EXIT_CHECK_FAILED, "{text}");
    let paging = line(&report, "trengo paging");
    assert!(paging.found.contains("drops the filters"), "{text}");
    let zone = line(&report, "trengo.zone");
    assert_eq!(
        zone.outcome,
        Outcome::Warn,
        "users' zone is only a hint: {text}"
    );
    assert!(zone.found.contains("Africa/Cairo"), "{text}");
    let probe_zone = line(&report, "probe zone");
    assert_eq!(probe_zone.outcome, Outcome::Fail, "{text}");
    assert!(probe_zone.found.contains("UTC-05:00"), "{text}");
    assert!(probe_zone.todo.contains("trengo.timezone"), "{text}");
    assert!(
        line(&report, "probe label").found.contains("does not move"),
        "{text}"
    );
    assert!(
        line(&report, "probe note").found.contains("does not move"),
        "{text}"
    );
    let users = line(&report, "ghl GET /users/");
    assert_eq!(users.outcome, Outcome::Fail, "{text}");
    assert!(
        users.found.contains("users") && users.todo.contains("shape"),
        "{text}"
    );
    let channel = line(&report, "config link.trengo_channel_id");
    assert_eq!(channel.outcome, Outcome::Fail, "{text}");
    assert_eq!(
        line(&report, "store binding").outcome,
        Outcome::Fail,
        "{text}"
    );
    let learned = engine
        .store
        .call(|s| {
            Ok((
                store::facts::learned_bumps(s.conn())?,
                store::facts::learned_trengo_offset(s.conn())?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(
        (learned.0.label, learned.0.note),
        (Some(false), Some(false))
    );
    assert_eq!(learned.1.map(|(o, _)| o), Some(-5 * 3600));
    // The start check now refuses: the learned offset is proof.
    let refused = doctor::zone_gate(&engine.trengo, &engine.store)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("trengo.timezone"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_command_prints_json_for_scripts_and_exits_by_the_worst_finding() {
    // The fakes' defaults: users carry another zone than the account's, a hint only.
    let world = support::world(23, 12, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = support::write_config(&world, &dir);
    let run = |args: Vec<String>| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_trengo-sync"))
                .arg("doctor")
                .args(&args)
                .args(["--config", config.to_str().unwrap()])
                .output()
                .unwrap()
        })
    };
    let out = run(vec!["--json".into()]).await.unwrap();
    assert_eq!(out.status.code(), Some(i32::from(doctor::EXIT_WARNINGS)));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["exit_code"], doctor::EXIT_WARNINGS);
    let findings = json["findings"].as_array().unwrap();
    let zone = findings
        .iter()
        .find(|f| f["check"] == "trengo.zone")
        .unwrap();
    assert_eq!(zone["outcome"], "warn", "{zone}");
    assert!(
        findings
            .iter()
            .any(|f| f["check"] == "probe" && f["outcome"] == "skip")
    );

    // Read-only means read-only: no write reached either fake.
    assert_eq!(support::total_writes(&world), 0);

    // A probe without its ticket is refused by the command line itself.
    let out = run(vec!["--probe-writes".into()]).await.unwrap();
    assert_eq!(out.status.code(), Some(2));
}
