//! Resource limits under hostile peers (issue #13 items 9–11): answers larger than the body
//! cap fail their item with a clear error instead of being read whole; webhooks with a missing
//! or odd timestamp or a forged event name are refused; half-sent requests on the daemon's
//! listener neither pile up nor starve `/healthz` and the API clients of file descriptors.

mod support;

use trengo_sync::api::{ApiError, MAX_BODY_BYTES};
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
