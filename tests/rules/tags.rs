//! Labels ⇄ managed contact tags (sync-model.md §3): the contact-level set merge.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_label_on_a_ticket_becomes_a_contact_tag_and_unmanaged_ones_never_cross() {
    let world = world(25, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let link = open_link(&engine, &dir).await;
    let person = world
        .people()
        .iter()
        .find(|p| p.ghl_contact_id == link.ghl_contact_id)
        .unwrap()
        .clone();
    let t = world.trengo();
    t.add_label(link.ticket_id, label(&world, "trengo:callback"))
        .unwrap();
    t.add_label(link.ticket_id, label(&world, "Urgent"))
        .unwrap();
    world
        .ghl()
        .add_contact_tag(&person.ghl_contact_id, "newsletter-2026")
        .unwrap();
    until_quiet(&engine, 4).await;
    let tags = contact_tags(&world, &person);
    assert!(tags.iter().any(|t| t == "trengo:callback"), "{tags:?}");
    assert!(
        !tags.iter().any(|t| t.eq_ignore_ascii_case("urgent")),
        "{tags:?}"
    );
    let on_ticket = labels(&engine, link.ticket_id).await;
    assert!(!on_ticket.iter().any(|l| l == "newsletter-2026"));
    assert!(
        on_ticket.iter().any(|l| l == "Urgent"),
        "an unmanaged label was removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghl_tag_added_goes_to_the_open_linked_tickets_only() {
    let world = world(26, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, closed, open) = two_tickets(&world, &dir).await;
    world.trengo().close_ticket(closed).unwrap();
    until_quiet(&engine, 4).await;
    let contact = link_of_ticket(&dir, open).unwrap().ghl_contact_id;
    // A tag no ticket has carried yet (its label is created: create_labels is on).
    world
        .ghl()
        .add_contact_tag(&contact, "trengo:added-later")
        .unwrap();
    until_quiet(&engine, 4).await;
    assert!(
        labels(&engine, open)
            .await
            .contains(&"trengo:added-later".into())
    );
    assert!(
        !labels(&engine, closed)
            .await
            .contains(&"trengo:added-later".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghl_tag_removed_leaves_every_linked_ticket_carrying_it() {
    let world = world(27, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, a, b) = two_tickets(&world, &dir).await;
    let vip = label(&world, "trengo:vip");
    world.trengo().add_label(a, vip).unwrap();
    world.trengo().add_label(b, vip).unwrap();
    world.trengo().close_ticket(a).unwrap();
    until_quiet(&engine, 4).await;
    let contact = link_of_ticket(&dir, a).unwrap().ghl_contact_id;
    world
        .ghl()
        .remove_contact_tag(&contact, "trengo:vip")
        .unwrap();
    until_quiet(&engine, 4).await;
    assert!(!labels(&engine, a).await.contains(&"trengo:vip".into()));
    assert!(!labels(&engine, b).await.contains(&"trengo:vip".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_keeps_a_tag_while_any_linked_ticket_even_a_closed_one_carries_the_label() {
    let world = world(28, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, a, b) = two_tickets(&world, &dir).await;
    let person = untagged_person(&world);
    // A label only these two tickets will ever carry.
    let gold = engine
        .trengo
        .create_label("trengo:gold", "#D4AF37")
        .await
        .unwrap()
        .id;
    world.trengo().add_label(a, gold).unwrap();
    world.trengo().add_label(b, gold).unwrap();
    until_quiet(&engine, 4).await;
    world.trengo().close_ticket(a).unwrap();
    world.trengo().remove_label(b, gold).unwrap();
    until_quiet(&engine, 4).await;
    assert!(
        contact_tags(&world, &person).contains(&"trengo:gold".into()),
        "the closed ticket still carries trengo:gold; the contact lost it"
    );
    world.trengo().remove_label(a, gold).unwrap();
    until_quiet(&engine, 4).await;
    assert!(!contact_tags(&world, &person).contains(&"trengo:gold".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_label_is_created_only_when_create_labels_is_on() {
    let world = world(29, 8, 5).await;
    let (on, off) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let person = untagged_person(&world);
    let ticket = labelled_ticket(&world, &person, "Brand question");
    let no_labels = [("create_labels = true", "create_labels = false")];
    let engine = settled(&world, &off, &no_labels, "").await;
    world
        .ghl()
        .add_contact_tag(&person.ghl_contact_id, "trengo:brand-new")
        .unwrap();
    until_quiet(&engine, 4).await;
    assert!(world.trengo().label_id("trengo:brand-new").is_none());
    drop(engine);

    let engine = settled(&world, &on, &[], "").await;
    assert!(world.trengo().label_id("trengo:brand-new").is_some());
    assert!(
        labels(&engine, ticket)
            .await
            .contains(&"trengo:brand-new".into())
    );
}
