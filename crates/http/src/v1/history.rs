//! A petition's count over time: `GET /v1/petitions/{slug}/history`, public
//! like the counter, read from the history the counts' own transactions keep.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
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
/// the count at `since` (`start`), then the intervals in which it changed,
/// each with its net change (`signed`) and the count at its end. `interval`
/// is `hour` unless given; `until` is now; `since` is the petition's
/// creation, or as far back as [`MAX_INTERVALS`] reach from `until`. A point
/// is a whole interval, so `since` is rounded down and `until` up to
/// interval boundaries (UTC), and the answer says what they became.
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
    let asked_until = until.unwrap_or_else(Utc::now);
    if since.is_some_and(|since| since >= asked_until) {
        errors.push(FieldError::new("since", "not_before_until"));
    }
    let step = interval.length();
    let longest = step * MAX_INTERVALS;
    let until = boundary(asked_until, step, Rounding::Up);
    // By default from the petition's creation; a range that ends before it
    // is one interval, with no point.
    let since = since.unwrap_or_else(|| petition.created_at.max(until - longest).min(until - step));
    let since = boundary(since, step, Rounding::Down);
    if until - since > longest {
        errors.push(FieldError::new("since", "range_too_long"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let history = within(
        READ_DEADLINE,
        app.store.history(petition.id, interval, since, until),
    )
    .await?;
    let points: Vec<Value> = history
        .points
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
            "start": {
                "total": history.start.total(),
                "people": history.start.people,
                "organizations": history.start.organizations,
            },
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

enum Rounding {
    Down,
    Up,
}

/// `t` on a boundary of `step` (UTC, whose days start on the epoch's
/// minute grid); as it is past 2262, where chrono's rounding (in
/// nanoseconds) stops and no petition has a point.
fn boundary(t: DateTime<Utc>, step: TimeDelta, rounding: Rounding) -> DateTime<Utc> {
    match rounding {
        Rounding::Down => t.duration_trunc(step),
        Rounding::Up => t.duration_round_up(step),
    }
    .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    #[test]
    fn ranges_are_whole_intervals() {
        let hour = TimeDelta::hours(1);
        let t = at("2026-12-06T07:30:15.5Z");
        assert_eq!(
            boundary(t, hour, Rounding::Down),
            at("2026-12-06T07:00:00Z")
        );
        assert_eq!(boundary(t, hour, Rounding::Up), at("2026-12-06T08:00:00Z"));
        let day = TimeDelta::days(1);
        assert_eq!(boundary(t, day, Rounding::Up), at("2026-12-07T00:00:00Z"));
        let edge = at("2026-12-06T00:00:00Z");
        assert_eq!(boundary(edge, day, Rounding::Up), edge);
        assert_eq!(boundary(edge, day, Rounding::Down), edge);
    }
}
