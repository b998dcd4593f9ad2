//! Internal notes ⇄ GHL notes (sync-model.md §3 "comments"): copies, routing, customer messages.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_internal_notes_are_copied_once_when_a_link_is_made() {
    let world = world(30, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let person = untagged_person(&world);
    let channel = world.trengo_channel_id().unwrap();
    let ticket = new_ticket_in(&world, person.trengo_contact_id, channel, "Stock");
    world
        .trengo()
        .post_note(ticket, "Checked stock: three left.")
        .unwrap();
    world
        .trengo()
        .add_label(ticket, label(&world, LINK_LABEL))
        .unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    until_quiet(&engine, 2).await;
    let bodies = note_bodies(&engine, &person).await;
    assert_eq!(
        copies(&bodies, "Checked stock: three left."),
        1,
        "{bodies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghl_note_naming_a_ticket_reaches_that_ticket_only_as_an_internal_note() {
    let world = world(31, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, older, newer) = two_tickets(&world, &dir).await;
    let contact = link_of_ticket(&dir, older).unwrap().ghl_contact_id;
    let text = format!("Re #{older}: the customer called back.");
    world.ghl().add_note(&contact, &text).unwrap();
    until_quiet(&engine, 4).await;
    let on_older = messages(&engine, older).await;
    let copy: Vec<_> = on_older.iter().filter(|(_, t)| t.contains(&text)).collect();
    assert_eq!(copy.len(), 1, "{on_older:?}");
    assert_eq!(
        copy[0].0,
        MessageKind::Note,
        "GHL text reached the customer"
    );
    let on_newer = messages(&engine, newer).await;
    assert!(!on_newer.iter().any(|(_, t)| t.contains(&text)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghl_note_without_a_ticket_number_goes_to_the_most_recently_updated_open_ticket() {
    let world = world(32, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, open, latest) = two_tickets(&world, &dir).await;
    // The most recently updated ticket is closed: the note goes to the open one.
    world.trengo().close_ticket(latest).unwrap();
    until_quiet(&engine, 4).await;
    let contact = link_of_ticket(&dir, open).unwrap().ghl_contact_id;
    world
        .ghl()
        .add_note(&contact, "Sent the brochure by post.")
        .unwrap();
    until_quiet(&engine, 4).await;
    let has = |m: Vec<(MessageKind, String)>| {
        m.iter()
            .any(|(k, t)| *k == MessageKind::Note && t.contains("Sent the brochure by post."))
    };
    assert!(has(messages(&engine, open).await));
    assert!(!has(messages(&engine, latest).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_messages_reach_ghl_only_when_enabled() {
    for enabled in [false, true] {
        let world = world(33, 8, 5).await;
        let dir = tempfile::tempdir().unwrap();
        let person = untagged_person(&world);
        let ticket = labelled_ticket(&world, &person, "Parcel");
        let extra = if enabled {
            "\n[comments]\ninclude_customer_messages = true\n"
        } else {
            ""
        };
        let engine = settled(&world, &dir, &[], extra).await;
        world
            .trengo()
            .post_customer_message(ticket, "Where is parcel 4471?")
            .unwrap();
        until_quiet(&engine, 4).await;
        let bodies = note_bodies(&engine, &person).await;
        let expected = usize::from(enabled);
        assert_eq!(
            copies(&bodies, "Where is parcel 4471?"),
            expected,
            "{bodies:?}"
        );
    }
}
