//! Street events and the tablets enrolled for them: an organizer creates an
//! event, hands a one-time code to the volunteers, and a tablet exchanges the
//! code for a device token bound to the event.

use chrono::{DateTime, Utc};
use rand::Rng;
use sha2::{Digest, Sha256};
use tokio_postgres::Row;
use undersigned_domain::{Country, FieldError, FieldErrors, Text, parse_time};
use uuid::Uuid;

use crate::audit::{AuditEntry, record};
use crate::tokens::{NewToken, Role, Token, insert_token};
use crate::{Store, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub petition_id: i64,
    pub name: String,
    pub place: Option<String>,
    /// ISO code, upper case.
    pub country: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// An event as an organizer describes it, each value as typed: the API's
/// fields and the command line's options, checked by [`NewEvent::parse`].
#[derive(Debug, Clone, Default)]
pub struct EventInput {
    pub name: Option<String>,
    pub place: Option<String>,
    pub country: Option<String>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
}

/// The longest an event's name or place may be, in characters.
const EVENT_TEXT_MAX: usize = 200;

impl NewEvent {
    /// An event for the petition `petition_id`, every value checked: a name
    /// (and a place, when given) of at most 200 characters, a known country
    /// when given, and a window that ends after it starts and after `now`
    /// (an event over already has nothing left to collect). Each refusal
    /// names its field.
    pub fn parse(
        petition_id: i64,
        input: EventInput,
        now: DateTime<Utc>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut invalid = FieldErrors::default();
        let text = |v: String| Text::parse(&v, EVENT_TEXT_MAX).map(Text::into_string);
        let name = invalid.check("name", input.name.ok_or("required").and_then(text));
        // Absent is fine (`Some(None)`); present and refused is `None`.
        let place = input.place.map(text).transpose();
        let place = invalid.check("place", place);
        let country = input
            .country
            .map(|c| {
                Country::parse(&c)
                    .map(|c| c.as_str().to_owned())
                    .ok_or("unknown_country")
            })
            .transpose();
        let country = invalid.check("country", country);
        let time = |t: Option<String>| t.ok_or("required").and_then(|t| parse_time(&t));
        let starts_at = invalid.check("starts_at", time(input.starts_at));
        let ends_at = invalid.check("ends_at", time(input.ends_at));
        if let (Some(s), Some(e)) = (starts_at, ends_at) {
            if e <= s {
                invalid.push("ends_at", "not_after_starts_at");
            } else if e <= now {
                invalid.push("ends_at", "past");
            }
        }
        match (name, place, country, starts_at, ends_at) {
            (Some(name), Some(place), Some(country), Some(starts_at), Some(ends_at))
                if invalid.is_empty() =>
            {
                Ok(Self {
                    petition_id,
                    name,
                    place,
                    country,
                    starts_at,
                    ends_at,
                })
            }
            _ => Err(invalid.0),
        }
    }
}

/// An event as stored: what its organizer set, with its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Uuid,
    pub details: NewEvent,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<&Row> for Event {
    type Error = StoreError;

    fn try_from(row: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.try_get("id")?,
            details: NewEvent {
                petition_id: row.try_get("petition_id")?,
                name: row.try_get("name")?,
                place: row.try_get("place")?,
                country: row.try_get("country")?,
                starts_at: row.try_get("starts_at")?,
                ends_at: row.try_get("ends_at")?,
            },
            created_at: row.try_get("created_at")?,
        })
    }
}

/// A tablet enrolled for an event, as listed to its organizers.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: Uuid,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A tablet's enrollment: its token, in clear this once.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub token: String,
    pub device: Token,
    pub event: Event,
    pub expires_at: DateTime<Utc>,
}

/// How long after its event a tablet's token still works, for late syncs.
pub const DEVICE_GRACE: chrono::Duration = chrono::Duration::days(1);

/// How long an enrollment code can be spent.
pub const ENROLLMENT_CODE_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

impl Event {
    /// Whether a tablet enrolled at `now` could still sign: its token lasts
    /// until [`DEVICE_GRACE`] after the event, so past that a code would
    /// enroll a tablet that can do nothing.
    pub fn enrolls_tablets_at(&self, now: DateTime<Utc>) -> bool {
        self.details.ends_at + DEVICE_GRACE > now
    }
}

/// How far outside its event's window a signature's time may fall: stands
/// open early and close late, and tablets' clocks drift.
pub const SIGNING_MARGIN: chrono::Duration = chrono::Duration::hours(2);

/// How far ahead of ours a tablet's clock may run.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

impl Event {
    /// Whether a signature given at `signed_at` can belong to this event, seen
    /// at `now`; the code of the reason when not.
    pub fn check_signed_at(
        &self,
        signed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), &'static str> {
        if signed_at > now + CLOCK_SKEW {
            Err("in_the_future")
        } else if signed_at < self.details.starts_at - SIGNING_MARGIN {
            Err("before_event")
        } else if signed_at > self.details.ends_at + SIGNING_MARGIN {
            Err("after_event")
        } else {
            Ok(())
        }
    }
}

/// Crockford's base 32: no I, L, O or U, so a code read aloud or typed on a
/// tablet is not mistaken.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_LENGTH: usize = 12;

/// A new code (60 random bits) as shown: `XXXX-XXXX-XXXX`.
fn new_code() -> String {
    let mut rng = rand::rng();
    let chars: Vec<char> = (0..CODE_LENGTH)
        .map(|_| char::from(ALPHABET[rng.random_range(0..32)]))
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// What is stored of a code: the SHA-256 of its characters, read leniently
/// (case, dashes and spaces ignored; O read as 0, I and L as 1). `None` when
/// it cannot be a code.
pub fn code_hash(code: &str) -> Option<Vec<u8>> {
    let normal: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    (normal.len() == CODE_LENGTH && normal.bytes().all(|b| ALPHABET.contains(&b)))
        .then(|| Sha256::digest(normal.as_bytes()).to_vec())
}

const EVENT_COLUMNS: &str = "id, petition_id, name, place, country, starts_at, ends_at, created_at";

impl Store {
    /// Creates an event, audited in the same transaction.
    pub async fn create_event(
        &self,
        new: &NewEvent,
        mut audit: AuditEntry,
    ) -> Result<Event, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO events (id, petition_id, name, place, country, starts_at, ends_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {EVENT_COLUMNS}"
                ),
                &[
                    &Uuid::now_v7(),
                    &new.petition_id,
                    &new.name,
                    &new.place,
                    &new.country,
                    &new.starts_at,
                    &new.ends_at,
                ],
            )
            .await?;
        let event = Event::try_from(&row)?;
        if let Some(detail) = audit.detail.as_object_mut() {
            detail.insert("event".into(), event.id.to_string().into());
        }
        record(&tx, &audit).await?;
        tx.commit().await?;
        Ok(event)
    }

    pub async fn event(&self, id: Uuid) -> Result<Option<Event>, StoreError> {
        self.pool
            .get()
            .await?
            .query_opt(
                &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1"),
                &[&id],
            )
            .await?
            .as_ref()
            .map(Event::try_from)
            .transpose()
    }

    /// A petition's events, by start.
    pub async fn events(&self, petition_id: i64) -> Result<Vec<Event>, StoreError> {
        self.pool
            .get()
            .await?
            .query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE petition_id = $1
                     ORDER BY starts_at, id"
                ),
                &[&petition_id],
            )
            .await?
            .iter()
            .map(Event::try_from)
            .collect()
    }

    /// A one-time enrollment code for `event`, in clear this once (only its
    /// hash is kept), valid until `expires_at`; audited.
    pub async fn create_enrollment_code(
        &self,
        event: Uuid,
        expires_at: DateTime<Utc>,
        audit: AuditEntry,
    ) -> Result<String, StoreError> {
        let code = new_code();
        let hash = code_hash(&code).expect("a new code reads as a code");
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO enrollment_codes (code_hash, event_id, expires_at) VALUES ($1, $2, $3)",
            &[&hash, &event, &expires_at],
        )
        .await?;
        record(&tx, &audit).await?;
        tx.commit().await?;
        Ok(code)
    }

    /// Forgets codes that expired unspent: they can enroll nobody. Spent
    /// ones stay, each naming the tablet it enrolled. The number forgotten.
    pub async fn forget_expired_codes(&self) -> Result<u64, StoreError> {
        Ok(self
            .pool
            .get()
            .await?
            .execute(
                "DELETE FROM enrollment_codes WHERE used_at IS NULL AND expires_at < now()",
                &[],
            )
            .await?)
    }

    /// Spends a code: a device token bound to the code's event and its
    /// petition, labelled `label`. `None` when the code is unknown, spent or
    /// expired (which one is not told). Recorded in the audit trail as the
    /// device's own action.
    pub async fn enroll_device(
        &self,
        code: &str,
        label: &str,
        audit: AuditEntry,
    ) -> Result<Option<Enrollment>, StoreError> {
        let Some(hash) = code_hash(code) else {
            return Ok(None);
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // The row lock taken here makes a code good for one tablet only, even
        // when two race to spend it.
        let Some(row) = tx
            .query_opt(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE id =
                       (SELECT event_id FROM enrollment_codes
                        WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()
                        FOR UPDATE)"
                ),
                &[&hash],
            )
            .await?
        else {
            return Ok(None);
        };
        let event = Event::try_from(&row)?;
        let new = NewToken {
            role: Role::Device,
            petition_ids: vec![event.details.petition_id],
            countries: Vec::new(),
            expires_at: Some(event.details.ends_at + DEVICE_GRACE),
        };
        let (device, token) = insert_token(&tx, &new, Some((event.id, label))).await?;
        let spent = tx
            .execute(
                "UPDATE enrollment_codes SET used_at = now(), device_id = $2
                 WHERE code_hash = $1 AND used_at IS NULL",
                &[&hash, &device.id],
            )
            .await?;
        if spent != 1 {
            return Ok(None);
        }
        let mut audit = audit;
        audit.token_id = Some(device.id);
        audit.petition_id = Some(event.details.petition_id);
        if let Some(detail) = audit.detail.as_object_mut() {
            detail.insert("device".into(), device.id.to_string().into());
            detail.insert("event".into(), event.id.to_string().into());
        }
        record(&tx, &audit).await?;
        tx.commit().await?;
        let expires_at = event.details.ends_at + DEVICE_GRACE;
        Ok(Some(Enrollment {
            token,
            device,
            event,
            expires_at,
        }))
    }

    /// The event a device token was enrolled for.
    pub async fn device_event(&self, device: Uuid) -> Result<Option<Event>, StoreError> {
        self.pool
            .get()
            .await?
            .query_opt(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events
                     WHERE id = (SELECT event_id FROM api_tokens WHERE id = $1)"
                ),
                &[&device],
            )
            .await?
            .as_ref()
            .map(Event::try_from)
            .transpose()
    }

    /// The tablets enrolled for an event, revoked ones included, oldest first.
    pub async fn devices(&self, event: Uuid) -> Result<Vec<Device>, StoreError> {
        self.pool
            .get()
            .await?
            .query(
                "SELECT id, label, created_at, revoked_at, last_used_at FROM api_tokens
                 WHERE event_id = $1 ORDER BY created_at, id",
                &[&event],
            )
            .await?
            .iter()
            .map(|row| {
                Ok(Device {
                    id: row.try_get("id")?,
                    label: row.try_get("label")?,
                    created_at: row.try_get("created_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn codes_read_leniently_and_nothing_else_is_a_code() {
        let code = new_code();
        assert_eq!(code.len(), 14);
        let hash = code_hash(&code).unwrap();
        assert_eq!(code_hash(&code.to_lowercase()), Some(hash.clone()));
        assert_eq!(code_hash(&code.replace('-', " ")), Some(hash));
        assert_eq!(code_hash("0000-1111-2222"), code_hash("oooo-IIII-2222"));
        assert_eq!(code_hash("0000-1111-2222"), code_hash("OOOO-llll-2222"));
        assert_eq!(code_hash("0000-1111-222"), None);
        assert_eq!(code_hash("0000-1111-222U"), None);
        assert_eq!(code_hash(""), None);
    }

    fn input(starts: &str, ends: &str) -> EventInput {
        EventInput {
            name: Some("Flash mob".into()),
            starts_at: Some(starts.into()),
            ends_at: Some(ends.into()),
            ..EventInput::default()
        }
    }

    fn refused(result: Result<NewEvent, Vec<undersigned_domain::FieldError>>) -> Vec<String> {
        result
            .unwrap_err()
            .iter()
            .map(|e| format!("{}:{}", e.field, e.code))
            .collect()
    }

    #[test]
    fn an_event_without_place_or_country_is_taken() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let new = NewEvent::parse(
            7,
            input("2026-06-02T10:00:00Z", "2026-06-02T18:00:00Z"),
            now,
        )
        .unwrap();
        assert_eq!((new.petition_id, new.place, new.country), (7, None, None));
        assert_eq!(new.ends_at - new.starts_at, Duration::hours(8));
    }

    #[test]
    fn every_refusal_names_its_field() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let mut bad = input("2026-06-02T10:00:00Z", "2026-06-02T09:00:00Z");
        bad.name = Some(" ".into());
        bad.place = Some("x".repeat(201));
        bad.country = Some("XX".into());
        assert_eq!(
            refused(NewEvent::parse(7, bad, now)),
            [
                "name:required",
                "place:too_long",
                "country:unknown_country",
                "ends_at:not_after_starts_at"
            ]
        );
        let over = input("2026-05-01T10:00:00Z", "2026-05-01T18:00:00Z");
        assert_eq!(refused(NewEvent::parse(7, over, now)), ["ends_at:past"]);
        assert_eq!(
            refused(NewEvent::parse(7, EventInput::default(), now)),
            ["name:required", "starts_at:required", "ends_at:required"]
        );
    }
}
