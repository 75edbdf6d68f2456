//! A petition's count over time: `GET /v1/petitions/{slug}/history`, public
//! like the counter, read from the history the counts' own transactions keep.

use chrono::{DateTime, Utc};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use undersigned_domain::{FieldError, parse_time};
use undersigned_store::{Interval, READ_DEADLINE, within};

use crate::call::{Answer, Call};
use crate::problem::ApiError;
use crate::query::Query;
use crate::reply::json;

/// Intervals one read may span at most: a week of minutes, more than a year
/// of hours, decades of days.
pub const MAX_INTERVALS: i32 = 10_080;

/// `GET /v1/petitions/{slug}/history?interval=minute|hour|day&since=&until=`:
/// the intervals in which the count changed, each with its net change
/// (`signed`) and the count at its end. `interval` is `hour` unless given;
/// `until` is now; `since` is the petition's creation, or as far back as
/// [`MAX_INTERVALS`] reach from `until`.
pub async fn show(call: Call<'_>) -> Answer {
    let app = call.app;
    call.shield()?;
    let petition = call.petition().await?;
    let query = Query::of(call.uri());
    let mut errors = Vec::new();
    let interval = match query.get("interval") {
        None => Interval::Hour,
        Some(name) => Interval::parse(name).unwrap_or_else(|| {
            errors.push(FieldError::new("interval", "not_an_interval"));
            Interval::Hour
        }),
    };
    let mut time = |name: &'static str| -> Option<DateTime<Utc>> {
        match parse_time(query.get(name)?) {
            Ok(t) => Some(t),
            Err(code) => {
                errors.push(FieldError::new(name, code));
                None
            }
        }
    };
    let (since, until) = (time("since"), time("until"));
    let until = until.unwrap_or_else(Utc::now);
    let longest = interval.length() * MAX_INTERVALS;
    let since = since.unwrap_or_else(|| petition.created_at.max(until - longest));
    if since >= until {
        errors.push(FieldError::new("since", "not_before_until"));
    } else if until - since > longest {
        errors.push(FieldError::new("since", "range_too_long"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let points = within(
        READ_DEADLINE,
        app.store.history(petition.id, interval, since, until),
    )
    .await?;
    let points: Vec<Value> = points
        .iter()
        .map(|p| {
            json!({
                "at": p.at,
                "signed": p.signed,
                "total": p.total,
                "people": p.people,
                "organizations": p.organizations,
            })
        })
        .collect();
    let mut response = json(
        StatusCode::OK,
        &json!({
            "petition": petition.slug,
            "interval": interval.name(),
            "since": since,
            "until": until,
            "points": points,
        }),
    );
    let h = response.headers_mut();
    // Counts only, as public as the counter; a reader a minute behind is fine.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=30"),
    );
    crate::cors::public(h);
    Ok(response)
}
