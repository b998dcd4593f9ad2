//! Link rules (sync-model.md §2): label, channel and team rules, contact by e-mail then phone,
//! tag and title-prefix rules, adoption, leaving scope.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelled_ticket_gets_a_task_titled_by_its_subject_on_the_contact_found_by_email() {
    let world = world(11, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let person = world.people()[1].clone();
    let ticket = labelled_ticket(&world, &person, "Invoice 2291 is wrong");
    let engine = settled(&world, &dir, &[], "").await;
    let link = link_of_ticket(&dir, ticket).expect("the labelled ticket was not linked");
    assert_eq!(link.ghl_contact_id, person.ghl_contact_id);
    let task = task(&engine, &link).await;
    assert_eq!(task.title.as_deref(), Some("Invoice 2291 is wrong"));
    let url = format!("{}/tickets/{ticket}", world.trengo_web_url());
    assert!(task.body.unwrap_or_default().contains(&url));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelled_ticket_without_email_gets_a_task_on_the_contact_found_by_phone() {
    let world = world(12, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(&world, &dir, &[], "").await;
    let person = world.people()[2].clone();
    let whatsapp = world.trengo().channel_ids()[1];
    // The same person writing in on WhatsApp: a Trengo contact with only a phone.
    let by_phone = engine
        .trengo
        .create_contact(whatsapp, &person.phone, Some(&person.name))
        .await
        .unwrap();
    assert!(by_phone.email.is_none());
    let ticket = new_ticket_in(&world, by_phone.id, whatsapp, "Delivery");
    world
        .trengo()
        .add_label(ticket, label(&world, LINK_LABEL))
        .unwrap();
    settle(&engine).await;
    let link = link_of_ticket(&dir, ticket).expect("the ticket was not linked by phone");
    assert_eq!(link.ghl_contact_id, person.ghl_contact_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_is_created_in_ghl_only_when_create_contacts_is_on() {
    let world = world(13, 8, 5).await;
    let email = "new.customer@example.org";
    let (refused, allowed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let engine = engine_with(&world, &refused, &[], "").await;
    let channel = world.trengo_channel_id().unwrap();
    let stranger = engine
        .trengo
        .create_contact(channel, email, Some("New Customer"))
        .await
        .unwrap();
    let ticket = new_ticket_in(&world, stranger.id, channel, "First order");
    world
        .trengo()
        .add_label(ticket, label(&world, LINK_LABEL))
        .unwrap();

    settle(&engine).await;
    assert!(link_of_ticket(&refused, ticket).is_none());
    let found = engine.ghl.find_duplicate(Some(email), None).await.unwrap();
    assert!(
        found.is_none(),
        "a GHL contact was made although not allowed"
    );

    let allowed_engine = settled(
        &world,
        &allowed,
        &[("create_contacts = false", "create_contacts = true")],
        "",
    )
    .await;
    let link = link_of_ticket(&allowed, ticket).expect("no link with create_contacts on");
    let contact = allowed_engine
        .ghl
        .contact(&link.ghl_contact_id)
        .await
        .unwrap();
    assert_eq!(contact.email.as_deref(), Some(email));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_in_a_configured_channel_is_linked_without_the_label() {
    let world = world(14, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let person = world.people()[1].clone();
    let (email, whatsapp) = (
        world.trengo_channel_id().unwrap(),
        world.trengo().channel_ids()[1],
    );
    let in_channel = new_ticket_in(&world, person.trengo_contact_id, whatsapp, "By WhatsApp");
    let elsewhere = new_ticket_in(&world, person.trengo_contact_id, email, "By e-mail");
    let rule = format!("create_contacts = false\ntrengo_channels = [{whatsapp}]");
    settled(&world, &dir, &[("create_contacts = false", &rule)], "").await;
    assert!(link_of_ticket(&dir, in_channel).is_some());
    assert!(link_of_ticket(&dir, elsewhere).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_of_a_configured_team_is_linked_without_the_label() {
    let world = world(15, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let probe = engine_with(&world, &dir, &[], "").await;
    let team = {
        let mut teams = std::pin::pin!(probe.trengo.teams());
        futures::StreamExt::next(&mut teams)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    drop(probe);
    let person = world.people()[1].clone();
    let channel = world.trengo_channel_id().unwrap();
    let of_team = new_ticket_in(&world, person.trengo_contact_id, channel, "For the team");
    let other = new_ticket_in(&world, person.trengo_contact_id, channel, "For nobody");
    let dir = tempfile::tempdir().unwrap();
    let rule = format!("create_contacts = false\ntrengo_teams = [{team}]");
    let engine = engine_with(&world, &dir, &[("create_contacts = false", &rule)], "").await;
    engine
        .trengo
        .assign(of_team, Assignee::Team(team))
        .await
        .unwrap();
    settle(&engine).await;
    assert!(link_of_ticket(&dir, of_team).is_some());
    assert!(link_of_ticket(&dir, other).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagged_contact_task_gets_a_ticket_with_the_body_as_internal_note_and_url_written_back() {
    let world = world(16, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(&world, &dir, &[], "").await;
    // Person 0 is the showcase: tagged for the link rule, with an open task.
    let person = world.people()[0].clone();
    let before = engine.ghl.tasks(&person.ghl_contact_id).await.unwrap();
    settle(&engine).await;
    let link = links(&dir)
        .into_iter()
        .find(|l| l.origin == Origin::Ghl && l.ghl_contact_id == person.ghl_contact_id)
        .expect("the tagged contact's open task got no ticket");
    let body = before
        .iter()
        .find(|t| t.id == link.task_id)
        .and_then(|t| t.body.clone())
        .unwrap();
    let made = ticket(&engine, link.ticket_id).await;
    assert_eq!(made.channel_id(), world.trengo_channel_id());
    let notes = messages(&engine, link.ticket_id).await;
    assert!(
        notes
            .iter()
            .any(|(kind, text)| *kind == MessageKind::Note && text.contains(&body)),
        "the task body is not an internal note: {notes:?}"
    );
    let url = format!("{}/tickets/{}", world.trengo_web_url(), link.ticket_id);
    assert!(task(&engine, &link).await.body.unwrap().contains(&url));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_titled_with_the_prefix_gets_a_ticket_without_the_contact_tag() {
    let world = world(17, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let person = untagged_person(&world);
    let prefixed = world
        .ghl()
        .create_task(
            &person.ghl_contact_id,
            &json!({"title": "[Trengo] Refund order 1182", "body": "Refund it."}),
        )
        .unwrap();
    let plain = world
        .ghl()
        .create_task(
            &person.ghl_contact_id,
            &json!({"title": "Refund order 1183"}),
        )
        .unwrap();
    let rule = format!("ghl_tag = \"{LINK_TAG}\"\nghl_title_prefix = \"[trengo]\"");
    settled(
        &world,
        &dir,
        &[(&format!("ghl_tag = \"{LINK_TAG}\""), &rule)],
        "",
    )
    .await;
    assert!(link_of_task(&dir, prefixed["id"].as_str().unwrap()).is_some());
    assert!(link_of_task(&dir, plain["id"].as_str().unwrap()).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ticket_channel_tagged_contacts_tasks_get_no_ticket() {
    let world = world(18, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let channel = format!(
        "trengo_channel_id = {}\n",
        world.trengo_channel_id().unwrap()
    );
    settled(&world, &dir, &[(&channel, "")], "").await;
    let made: Vec<Link> = links(&dir)
        .into_iter()
        .filter(|l| l.origin == Origin::Ghl)
        .collect();
    assert!(made.is_empty(), "tickets were made for tasks: {made:?}");
    assert!(!links(&dir).is_empty(), "the Trengo → GHL rule still links");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_already_carrying_a_ticket_url_is_adopted_not_duplicated() {
    let world = world(19, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let person = untagged_person(&world);
    let ticket = labelled_ticket(&world, &person, "Made by hand");
    let url = format!("{}/tickets/{ticket}", world.trengo_web_url());
    let by_hand = world
        .ghl()
        .create_task(
            &person.ghl_contact_id,
            &json!({"title": "Made by hand", "body": format!("See {url}")}),
        )
        .unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let link = link_of_ticket(&dir, ticket).unwrap();
    assert_eq!(link.task_id, by_hand["id"].as_str().unwrap());
    let naming = engine
        .ghl
        .tasks(&person.ghl_contact_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.body.as_deref().unwrap_or("").contains(&url))
        .count();
    assert_eq!(naming, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_store_is_rebuilt_by_adoption_without_a_duplicate() {
    let world = world(20, 10, 5).await;
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    settled(&world, &first, &[], "").await;
    let engine = settled(&world, &second, &[], "").await;
    let pairs = |dir| {
        let mut p: Vec<(i64, String)> = links(dir)
            .into_iter()
            .map(|l| (l.ticket_id, l.task_id))
            .collect();
        p.sort();
        p
    };
    assert_eq!(pairs(&first), pairs(&second));
    let (_, duplicates) = audit(&world, &second, &engine).await;
    assert!(duplicates.is_empty(), "{duplicates:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_leaving_scope_stops_syncing_and_deletes_nothing() {
    let world = world(21, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let person = untagged_person(&world);
    let ticket = labelled_ticket(&world, &person, "Leaving soon");
    let engine = settled(&world, &dir, &[], "").await;
    let link = link_of_ticket(&dir, ticket).unwrap();
    world
        .trengo()
        .remove_label(ticket, label(&world, LINK_LABEL))
        .unwrap();
    until_quiet(&engine, 4).await;
    assert!(!links(&dir).iter().any(|l| l.id == link.id));
    assert!(
        ledger(&dir)
            .iter()
            .any(|e| e.kind == EntryKind::Unlinked && e.link_id == Some(link.id))
    );
    world.trengo().close_ticket(ticket).unwrap();
    until_quiet(&engine, 4).await;
    let task = task(&engine, &link).await;
    assert!(
        !task.completed,
        "a ticket out of scope still completed its task"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_leaving_scope_leaves_the_contact_tags_its_labels_made() {
    let world = world(22, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let person = untagged_person(&world);
    let ticket = labelled_ticket(&world, &person, "Leaving with a tag");
    // A second linked ticket keeps the contact's group in play after the first one leaves.
    labelled_ticket(&world, &person, "Staying without the tag");
    world
        .trengo()
        .add_label(ticket, label(&world, "trengo:vip"))
        .unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let tags = |world: &SimWorld| {
        world.ghl().contact_json(&person.ghl_contact_id).unwrap()["tags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    assert!(tags(&world).contains(&"trengo:vip".to_owned()));
    world
        .trengo()
        .remove_label(ticket, label(&world, LINK_LABEL))
        .unwrap();
    until_quiet(&engine, 4).await;
    assert!(
        tags(&world).contains(&"trengo:vip".to_owned()),
        "leaving scope removed the tag the ticket's label had made: {:?}",
        tags(&world)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_leaving_scope_while_its_contacts_tag_item_fails_leaves_the_tag_all_the_same() {
    let world = world(22, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let person = untagged_person(&world);
    let ticket = labelled_ticket(&world, &person, "Leaving with a tag");
    let staying = labelled_ticket(&world, &person, "Staying without the tag");
    world
        .trengo()
        .add_label(ticket, label(&world, "trengo:vip"))
        .unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    assert!(contact_tags(&world, &person).contains(&"trengo:vip".to_owned()));
    assert!(
        !labels(&engine, staying)
            .await
            .contains(&"trengo:vip".to_owned()),
        "the staying ticket carries the label too: leaving would depart nothing"
    );
    // In one pass: the ticket leaves scope, and a GHL tag arrives whose label Trengo lacks,
    // so the contact's tag item fails (the user has just turned label creation off).
    let no_labels = [("create_labels = true", "create_labels = false")];
    // The daemon restarted with the new setting (one writer per store at a time).
    drop(engine);
    let engine = engine_with(&world, &dir, &no_labels, "").await;
    world
        .trengo()
        .remove_label(ticket, label(&world, LINK_LABEL))
        .unwrap();
    world
        .ghl()
        .add_contact_tag(&person.ghl_contact_id, "trengo:no-label-yet")
        .unwrap();
    for _ in 0..2 {
        let report = engine
            .pass(PassKind::Reconcile, PassOptions::default())
            .await
            .unwrap();
        assert!(!report.failed.is_empty(), "the tag item did not fail");
    }
    // Someone makes the label in Trengo; the held-back item goes through.
    engine
        .trengo
        .create_label("trengo:no-label-yet", "#5D9CEC")
        .await
        .unwrap();
    until_quiet(&engine, 4).await;
    let tags = contact_tags(&world, &person);
    assert!(
        tags.contains(&"trengo:vip".to_owned()),
        "the tag made by the leaving ticket's label was removed once the item went through: {tags:?}"
    );
}
