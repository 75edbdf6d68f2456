//! Events and the tablets enrolled for them, against the real Postgres: a code
//! enrolls one tablet only, even when two race for it; an expired or unknown
//! code enrolls none; a device is bound to its event and can be revoked.

mod common;

use chrono::{Duration, Utc};
use common::setup;
use undersigned_store::{Actor, AuditEntry, NewEvent, Role};

fn audit(action: &'static str) -> AuditEntry {
    AuditEntry::new(&Actor::default(), action, serde_json::json!({}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_enrolls_one_tablet_for_its_event_and_the_tablet_can_be_revoked() {
    let (db, store, petition) = setup().await;
    let now = Utc::now();
    let event = store
        .create_event(
            &NewEvent {
                petition_id: petition,
                name: "Stand on Fountain Square".into(),
                place: Some("Baku".into()),
                country: Some("AZ".into()),
                starts_at: now - Duration::hours(1),
                ends_at: now + Duration::hours(5),
            },
            audit("event.create"),
        )
        .await
        .unwrap();
    assert_eq!(store.event(event.id).await.unwrap(), Some(event.clone()));
    assert_eq!(
        store.events(petition).await.unwrap(),
        std::slice::from_ref(&event)
    );

    // Two tablets race for one code: exactly one is enrolled.
    let code = store
        .create_enrollment_code(event.id, now + Duration::hours(1), audit("code"))
        .await
        .unwrap();
    let lower = code.to_lowercase();
    let (a, b) = tokio::join!(
        store.enroll_device(&code, "tablet A", audit("device.enroll")),
        store.enroll_device(&lower, "tablet B", audit("device.enroll")),
    );
    let enrolled: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(enrolled.len(), 1, "one tablet per code");
    let tablet = &enrolled[0];
    assert_eq!(tablet.event.id, event.id);
    assert_eq!(tablet.device.role, Role::Device);
    assert_eq!(tablet.device.petition_ids, [petition]);
    assert_eq!(tablet.device.event_id, Some(event.id));
    // The token is the tablet's: it authenticates, bound to the event.
    let seen = store.authenticate(&tablet.token).await.unwrap().unwrap();
    assert_eq!((seen.id, seen.event_id), (tablet.device.id, Some(event.id)));
    // Spent, it enrolls nobody else; nor does an unknown or malformed code.
    assert!(
        store
            .enroll_device(&code, "again", audit("device.enroll"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .enroll_device("0000-0000-0000", "x", audit("device.enroll"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .enroll_device("not a code", "x", audit("device.enroll"))
            .await
            .unwrap()
            .is_none()
    );
    // An expired code enrolls nobody.
    let stale = store
        .create_enrollment_code(event.id, now - Duration::seconds(1), audit("code"))
        .await
        .unwrap();
    assert!(
        store
            .enroll_device(&stale, "late", audit("device.enroll"))
            .await
            .unwrap()
            .is_none()
    );

    // Expired codes are forgotten; the spent one stays, naming its tablet.
    assert_eq!(store.forget_expired_codes().await.unwrap(), 1);
    let kept: Vec<Option<uuid::Uuid>> = db
        .sql()
        .await
        .query("SELECT device_id FROM enrollment_codes", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kept, [Some(tablet.device.id)]);

    // Listed with its label; revoked, it no longer authenticates and stays listed.
    let devices = store.devices(event.id).await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].id, tablet.device.id);
    assert!(
        devices[0]
            .label
            .as_deref()
            .is_some_and(|l| l.starts_with("tablet "))
    );
    assert!(
        store
            .revoke_token(tablet.device.id, audit("device.revoke"))
            .await
            .unwrap()
    );
    assert!(store.authenticate(&tablet.token).await.unwrap().is_none());
    assert!(
        store.devices(event.id).await.unwrap()[0]
            .revoked_at
            .is_some()
    );

    // Only hashes are stored, and every step is in the audit trail.
    let sql = db.sql().await;
    // The table has no column for the code itself: its row is found by hash.
    let stored: i64 = sql
        .query_one(
            "SELECT count(*) FROM enrollment_codes
             WHERE code_hash = sha256(convert_to(replace($1, '-', ''), 'UTF8'))
               AND device_id = $2 AND used_at IS NOT NULL",
            &[&code, &tablet.device.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1, "the spent code, by its hash, names the tablet");
    let actions: Vec<String> = sql
        .query("SELECT action FROM audit_log ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        actions,
        [
            "petition.create",
            "event.create",
            "code",
            "device.enroll",
            "code",
            "device.revoke"
        ]
    );
    // An event must end after it starts.
    let backwards = store
        .create_event(
            &NewEvent {
                petition_id: petition,
                name: "Backwards".into(),
                place: None,
                country: None,
                starts_at: now,
                ends_at: now - Duration::hours(1),
            },
            audit("event.create"),
        )
        .await;
    assert!(backwards.is_err());
    db.drop().await;
}
