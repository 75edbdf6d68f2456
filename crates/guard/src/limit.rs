//! Rate limits written like `5/300s`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

/// At most `count` signatures per `period`, refilled evenly (GCRA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub count: u32,
    pub period: Duration,
}

#[derive(Debug, Error)]
#[error("a limit looks like 5/300s, 10/1m or 100/1h, or is off; got {0:?}")]
pub struct LimitParseError(String);

impl Limit {
    /// The time one unit of the limit takes to refill.
    pub fn interval(&self) -> Duration {
        self.period / self.count
    }

    /// `off` (or `none`) is `None`: no limit.
    pub fn parse_optional(s: &str) -> Result<Option<Self>, LimitParseError> {
        match s.trim() {
            "off" | "none" => Ok(None),
            other => other.parse().map(Some),
        }
    }

    /// Several limits that all apply, like `3/60s,20/1h` (a burst and a sustained
    /// rate); `off` is none.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, LimitParseError> {
        match s.trim() {
            "off" | "none" => Ok(Vec::new()),
            other => other.split(',').map(str::parse).collect(),
        }
    }
}

/// The written form `FromStr` reads back, in the largest whole unit
/// (`3/60s` is written `3/1m`).
impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.period.as_secs();
        match seconds {
            s if s % 3600 == 0 => write!(f, "{}/{}h", self.count, s / 3600),
            s if s % 60 == 0 => write!(f, "{}/{}m", self.count, s / 60),
            s => write!(f, "{}/{s}s", self.count),
        }
    }
}

impl FromStr for Limit {
    type Err = LimitParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || LimitParseError(s.to_owned());
        let (count, period) = s.trim().split_once('/').ok_or_else(err)?;
        let count: u32 = count.trim().parse().map_err(|_| err())?;
        let period = period.trim();
        let split = period
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(period.len());
        let (amount, unit) = period.split_at(split);
        let amount: u64 = if amount.is_empty() {
            1
        } else {
            amount.parse().map_err(|_| err())?
        };
        let seconds = match unit {
            "s" | "" => amount,
            "m" => amount * 60,
            "h" => amount * 3600,
            _ => return Err(err()),
        };
        if count == 0 || seconds == 0 {
            return Err(err());
        }
        Ok(Self {
            count,
            period: Duration::from_secs(seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_written_forms() {
        let l: Limit = "5/300s".parse().unwrap();
        assert_eq!((l.count, l.period.as_secs()), (5, 300));
        assert_eq!(l.interval(), Duration::from_secs(60));
        assert_eq!("10/1m".parse::<Limit>().unwrap().period.as_secs(), 60);
        assert_eq!("100/h".parse::<Limit>().unwrap().period.as_secs(), 3600);
        assert_eq!(Limit::parse_optional("off").unwrap(), None);
        let both = Limit::parse_list("1/60s, 5/5m").unwrap();
        assert_eq!(both.len(), 2);
        assert_eq!(both[1].interval(), Duration::from_secs(60));
        assert!(Limit::parse_list("off").unwrap().is_empty());
        assert!(Limit::parse_list("1/60s,").is_err());
        for written in ["5/300s", "10/1m", "100/h", "7/90s"] {
            let limit: Limit = written.parse().unwrap();
            assert_eq!(limit.to_string().parse::<Limit>().unwrap(), limit);
        }
        assert_eq!("3/60s".parse::<Limit>().unwrap().to_string(), "3/1m");
        for bad in ["5", "0/1s", "5/0s", "x/1s", "5/1d", ""] {
            assert!(bad.parse::<Limit>().is_err(), "{bad}");
        }
    }
}
