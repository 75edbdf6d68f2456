//! A petition's count over time, as the triggers of migration V17 keep it:
//! each change to a count, in the minute, hour and day it was made.

use chrono::{DateTime, Utc};

use crate::{Store, StoreError};

/// The width of one point of a history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Minute,
    Hour,
    Day,
}

impl Interval {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "minute" => Some(Self::Minute),
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    pub fn length(self) -> chrono::Duration {
        match self {
            Self::Minute => chrono::Duration::minutes(1),
            Self::Hour => chrono::Duration::hours(1),
            Self::Day => chrono::Duration::days(1),
        }
    }
}

/// A petition's count at the start of a history, and the intervals after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The count when the first interval starts: the level a chart starts
    /// from, even when nothing changed in the range.
    pub start: Tally,
    pub points: Vec<HistoryPoint>,
}

/// A count, and its people and organizations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub people: i64,
    pub organizations: i64,
}

impl Tally {
    pub fn total(self) -> i64 {
        self.people + self.organizations
    }
}

/// One interval in which the count changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPoint {
    /// The interval's start (UTC).
    pub at: DateTime<Utc>,
    /// The net change of the count in the interval: signatures counted, less
    /// those removed (invalidated, withdrawn, erased), plus those restored.
    pub signed: i64,
    /// The count at the interval's end, and its people and organizations.
    pub total: i64,
    pub people: i64,
    pub organizations: i64,
}

impl Store {
    /// The petition's count at `since` (rounded down to its interval) and
    /// in the `interval`s that start from then until before `until`, only
    /// those in which it changed, oldest first; each point's totals include
    /// every change before `since`. Reads at most the rows of those
    /// intervals, and for the count at `since` at most the days before and
    /// the hours and minutes of the first day: a year of a busy petition
    /// reads as its 365 days.
    pub async fn history(
        &self,
        petition_id: i64,
        interval: Interval,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<History, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "WITH bounds AS (
                     SELECT date_trunc($2, $3::timestamptz, 'UTC') AS since,
                            date_trunc('day', $3::timestamptz, 'UTC') AS day,
                            date_trunc('hour', $3::timestamptz, 'UTC') AS hour
                 ), before AS (
                     SELECT coalesce(sum(h.people), 0)::bigint AS people,
                            coalesce(sum(h.organizations), 0)::bigint AS organizations
                     FROM count_history h, bounds b
                     WHERE h.petition_id = $1
                       AND ((h.unit = 'day' AND h.at < b.day)
                         OR (h.unit = 'hour' AND h.at >= b.day AND h.at < least(b.hour, b.since))
                         OR (h.unit = 'minute' AND h.at >= least(b.hour, b.since) AND h.at < b.since))
                 ), points AS (
                     SELECT h.at, sum(h.people)::bigint AS people,
                            sum(h.organizations)::bigint AS organizations
                     FROM count_history h, bounds b
                     WHERE h.petition_id = $1 AND h.unit = $2 AND h.at >= b.since AND h.at < $4
                     GROUP BY h.at
                 )
                 -- One row with no point when nothing changed in the range.
                 SELECT before.people AS start_people,
                        before.organizations AS start_organizations,
                        p.at, p.people + p.organizations AS signed,
                        (before.people + sum(p.people) OVER running)::bigint AS people,
                        (before.organizations + sum(p.organizations) OVER running)::bigint
                            AS organizations
                 FROM before LEFT JOIN points p ON true
                 WINDOW running AS (ORDER BY p.at)
                 ORDER BY p.at",
            )
            .await?;
        let rows = client
            .query(&stmt, &[&petition_id, &interval.name(), &since, &until])
            .await?;
        let mut history = History {
            start: Tally::default(),
            points: Vec::with_capacity(rows.len()),
        };
        for row in &rows {
            history.start = Tally {
                people: row.try_get("start_people")?,
                organizations: row.try_get("start_organizations")?,
            };
            let Some(at) = row.try_get("at")? else {
                continue;
            };
            let people: i64 = row.try_get("people")?;
            let organizations: i64 = row.try_get("organizations")?;
            history.points.push(HistoryPoint {
                at,
                signed: row.try_get("signed")?,
                total: people + organizations,
                people,
                organizations,
            });
        }
        Ok(history)
    }
}
