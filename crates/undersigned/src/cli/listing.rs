//! Lists as people and scripts read them: aligned columns under a header
//! line, or with `--json` one JSON object per line (for `jq`, and because a
//! cell of a column cannot say whether `-` is nothing or a value).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

/// A time as lists show it: RFC 3339, UTC, to the second.
pub fn time(t: DateTime<Utc>) -> Value {
    t.to_rfc3339_opts(SecondsFormat::Secs, true).into()
}

/// As [`time`], `null` for none.
pub fn maybe_time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, time)
}

/// Prints `rows` (objects) with these columns, under a header line naming
/// them, or as JSON lines.
pub fn print(columns: &[&str], rows: &[Value], json: bool) {
    if json {
        for row in rows {
            println!("{row}");
        }
        return;
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|c| cell(&row[*c])).collect())
        .collect();
    let header: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
    print_aligned(std::iter::once(&header).chain(&cells));
}

/// Prints the named values one a line, names aligned; as one JSON object
/// with `json`.
pub fn print_fields(fields: &[(&str, Value)], json: bool) {
    if json {
        let object: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        println!("{}", Value::Object(object));
        return;
    }
    let lines: Vec<Vec<String>> = fields
        .iter()
        .map(|(name, value)| vec![(*name).to_owned(), cell(value)])
        .collect();
    print_aligned(&lines);
}

/// A value in a column: a list joined with commas, nothing as `-`.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn print_aligned<'a>(lines: impl IntoIterator<Item = &'a Vec<String>> + Clone) {
    let mut widths: Vec<usize> = Vec::new();
    for line in lines.clone() {
        for (i, cell) in line.iter().enumerate() {
            let width = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(width),
                None => widths.push(width),
            }
        }
    }
    for line in lines {
        let padded: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::cell;

    #[test]
    fn nothing_is_a_dash_and_lists_are_joined_with_commas() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!([])), "-");
        assert_eq!(cell(&json!(["NL", "BE"])), "NL,BE");
        assert_eq!(cell(&json!(1000000)), "1000000");
        assert_eq!(cell(&json!("open")), "open");
    }
}
