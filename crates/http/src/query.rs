//! Query strings of the paginated listings: parameters, page size, next page.

use std::fmt::Display;

use http::Uri;
use undersigned_domain::FieldError;

pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn of(uri: &Uri) -> Self {
        Self(
            form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `limit`, between 1 and `max`; `default` when absent.
    pub fn limit(&self, default: i64, max: i64, errors: &mut Vec<FieldError>) -> i64 {
        match self.get("limit").map(str::parse::<i64>) {
            None => default,
            Some(Ok(n)) if (1..=max).contains(&n) => n,
            Some(_) => {
                errors.push(FieldError::new("limit", "out_of_range"));
                default
            }
        }
    }

    /// The next page's address: this query with `cursor_name` set to `cursor`,
    /// when the page was full (`returned == limit`).
    pub fn next_page(
        &self,
        path: &str,
        returned: usize,
        limit: i64,
        cursor_name: &str,
        cursor: Option<impl Display>,
    ) -> Option<String> {
        let cursor = cursor.filter(|_| i64::try_from(returned).is_ok_and(|n| n == limit))?;
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.0.iter().filter(|(k, _)| k != cursor_name) {
            q.append_pair(k, v);
        }
        q.append_pair(cursor_name, &cursor.to_string());
        Some(format!("{path}?{}", q.finish()))
    }
}
