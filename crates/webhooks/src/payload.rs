//! What a message says: Standard Webhooks' envelope (`type`, `timestamp`,
//! `data`) around what happened. A thin payload: receipts, petition,
//! country, channel and times; a signer's name and address only for an
//! endpoint that asked for them (an admin's choice) and a signer who asked
//! to be kept informed.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use undersigned_store::{Due, Person, SignatureFacts};
use uuid::Uuid;

/// The `webhook-id` of the message at `position` in event `event`: the
/// same on every try (no `.` in it, as the specification asks).
pub fn message_id(event: i64, position: i32) -> String {
    format!("msg_{event}_{position}")
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The body of a due message, minified as it is signed.
pub fn body(due: &Due) -> Vec<u8> {
    let mut data = Map::new();
    data.insert("petition".into(), due.petition.clone().into());
    if let Some(signature) = &due.signature {
        signature_data(signature, &mut data);
    }
    if let Some(Value::Object(extra)) = &due.data {
        for (k, v) in extra {
            data.insert(k.clone(), v.clone());
        }
    }
    envelope(&due.kind, due.occurred_at, Value::Object(data))
}

fn signature_data(s: &SignatureFacts, data: &mut Map<String, Value>) {
    data.insert("receipt".into(), s.receipt.to_string().into());
    data.insert("country".into(), s.country.clone().into());
    data.insert("signer_kind".into(), s.signer_kind.clone().into());
    data.insert("channel".into(), s.channel.clone().into());
    data.insert("signed_at".into(), time(s.signed_at).into());
    data.insert("event".into(), json!(s.event_id));
    if let Some(person) = &s.person {
        data.insert("person".into(), person_data(person));
    }
}

fn person_data(p: &Person) -> Value {
    json!({
        "full_name": p.full_name,
        "email": p.email,
        "organization": p.organization,
        "postal_code": p.postal_code,
        "city": p.city,
        "locale": p.locale,
        "consent_updates": true,
    })
}

/// The body `POST /v1/webhooks/{id}/test` sends.
pub fn test_body(webhook: Uuid, now: DateTime<Utc>) -> Vec<u8> {
    envelope("webhook.test", now, json!({ "webhook": webhook }))
}

fn envelope(kind: &str, at: DateTime<Utc>, data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"type": kind, "timestamp": time(at), "data": data}))
        .expect("a JSON value serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(person: Option<Person>) -> Due {
        Due {
            message: 7,
            position: 2,
            retry: None,
            xid: Some("1000".into()),
            kind: "signature.counted".into(),
            occurred_at: "2026-12-07T10:00:00Z".parse().unwrap(),
            attempts: 0,
            petition: "declaration".into(),
            data: None,
            signature: Some(SignatureFacts {
                receipt: Uuid::nil(),
                country: "FR".into(),
                signer_kind: "person".into(),
                channel: "web".into(),
                signed_at: "2026-12-07T09:59:59Z".parse().unwrap(),
                event_id: None,
                person,
            }),
        }
    }

    #[test]
    fn a_signature_message_is_thin_unless_a_person_is_given() {
        let thin: Value = serde_json::from_slice(&body(&due(None))).unwrap();
        assert_eq!(
            thin,
            json!({"type": "signature.counted", "timestamp": "2026-12-07T10:00:00.000000Z",
                   "data": {"petition": "declaration", "receipt": Uuid::nil(), "country": "FR",
                            "signer_kind": "person", "channel": "web",
                            "signed_at": "2026-12-07T09:59:59.000000Z", "event": null}})
        );
        let full: Value = serde_json::from_slice(&body(&due(Some(Person {
            full_name: "Ada".into(),
            email: Some("ada@example.org".into()),
            organization: None,
            postal_code: None,
            city: None,
            locale: Some("fr".into()),
        }))))
        .unwrap();
        assert_eq!(full["data"]["person"]["email"], "ada@example.org");
        assert_eq!(message_id(7, 2), "msg_7_2");
    }
}
