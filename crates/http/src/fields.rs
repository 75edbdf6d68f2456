//! Fields of a JSON object or an HTML form, taken one by one so that a value of
//! the wrong type is reported against its field instead of failing the body.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use percent_encoding::percent_decode;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use undersigned_domain::FieldError;

use crate::problem::ApiError;
use std::time::Duration;

use http::HeaderMap;
use hyper::body::Incoming;

use crate::request::{BodyKind, body_kind, read_body_up_to};

pub enum Fields {
    Json(Map<String, Value>),
    Form(HashMap<String, String>),
}

impl Fields {
    /// An administrative request's JSON body, at most `max` bytes.
    pub async fn read_json(
        headers: &HeaderMap,
        body: Incoming,
        timeout: Duration,
        max: usize,
    ) -> Result<Self, ApiError> {
        if body_kind(headers, false)? != BodyKind::Json {
            return Err(ApiError::UnsupportedMediaType);
        }
        Self::parse(
            BodyKind::Json,
            &read_body_up_to(headers, body, timeout, max).await?,
        )
    }

    pub fn parse(kind: BodyKind, body: &[u8]) -> Result<Self, ApiError> {
        match kind {
            BodyKind::Json => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => Ok(Self::Json(map)),
                Ok(_) => Err(ApiError::Malformed(
                    "The body must be a JSON object.".into(),
                )),
                Err(e) => Err(ApiError::Malformed(format!(
                    "The body is not valid JSON: {e}."
                ))),
            },
            BodyKind::Form => parse_form(body).map(Self::Form),
        }
    }

    /// A text field; numbers and booleans are refused in JSON, `null` is absent.
    /// The one field `email`, parsed: its absence or its fault is the
    /// whole answer (422).
    pub fn email(&self) -> Result<undersigned_domain::Email, ApiError> {
        let mut errors = Vec::new();
        let code = match self
            .text("email", &mut errors)
            .as_deref()
            .map(undersigned_domain::Email::parse)
        {
            Some(Ok(email)) => return Ok(email),
            Some(Err(code)) => code,
            None if errors.is_empty() => "required",
            None => return Err(ApiError::Invalid(errors)),
        };
        Err(ApiError::Invalid(vec![FieldError::new("email", code)]))
    }

    pub fn text(&self, name: &'static str, errors: &mut Vec<FieldError>) -> Option<String> {
        match self {
            Self::Form(map) => map.get(name).cloned(),
            Self::Json(map) => match map.get(name)? {
                Value::String(s) => Some(s.clone()),
                other => no_text(name, other, errors),
            },
        }
    }

    /// A boolean, as JSON `true`/`false` or as the text a form sends. JSON
    /// `null` is no boolean (422 `not_a_boolean`): the contract says so, and
    /// a flag has nothing to clear.
    pub fn flag(&self, name: &'static str, errors: &mut Vec<FieldError>) -> Option<String> {
        match self {
            Self::Json(map) => match map.get(name)? {
                Value::String(s) => Some(s.clone()),
                other => flag_of(name, other, errors),
            },
            Self::Form(_) => self.text(name, errors),
        }
    }

    /// For changes: `None` when absent (leave as is), `Some(None)` for JSON
    /// `null` (clear it), `Some(Some(text))` to set it.
    pub fn nullable_text(
        &self,
        name: &'static str,
        errors: &mut Vec<FieldError>,
    ) -> Option<Option<String>> {
        match self {
            Self::Json(map) if matches!(map.get(name), Some(Value::Null)) => Some(None),
            _ => self.text(name, errors).map(Some),
        }
    }

    /// A list of texts: a JSON array of strings, or in a form, values separated
    /// by commas or white space.
    pub fn list(&self, name: &'static str, errors: &mut Vec<FieldError>) -> Option<Vec<String>> {
        match self {
            Self::Form(map) => map.get(name).map(|v| {
                v.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
            Self::Json(map) => match map.get(name) {
                None | Some(Value::Null) => None,
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .or_else(|| {
                        errors.push(FieldError::new(name, "not_a_list_of_strings"));
                        None
                    }),
                Some(_) => {
                    errors.push(FieldError::new(name, "not_a_list_of_strings"));
                    None
                }
            },
        }
    }

    /// `true` or `false` (JSON booleans, or `true`/`false`/`on`/`off` in forms).
    pub fn boolean(&self, name: &'static str, errors: &mut Vec<FieldError>) -> Option<bool> {
        let text = self.flag(name, errors)?;
        match text.trim() {
            "true" | "on" | "1" => Some(true),
            "false" | "off" | "0" => Some(false),
            _ => {
                errors.push(FieldError::new(name, "not_a_boolean"));
                None
            }
        }
    }

    /// Refuses a field that is not in `known` (for changes, where a misspelt
    /// name would otherwise change nothing without a word).
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        let mut names: Box<dyn Iterator<Item = &String>> = match self {
            Self::Json(map) => Box::new(map.keys()),
            Self::Form(map) => Box::new(map.keys()),
        };
        match names.find(|n| !known.contains(&n.as_str())) {
            Some(name) => Err(ApiError::Malformed(format!(
                "Unknown field {name:?}; the fields are {}.",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    /// A JSON value as sent, for a field holding objects; `None` when absent
    /// or `null`, and always in a form (which cannot nest).
    pub fn value(&self, name: &str) -> Option<&Value> {
        match self {
            Self::Json(map) => map.get(name).filter(|v| !v.is_null()),
            Self::Form(_) => None,
        }
    }

    /// Whether the request carries this field at all (even as `null`).
    pub fn has(&self, name: &str) -> bool {
        match self {
            Self::Json(map) => map.contains_key(name),
            Self::Form(map) => map.contains_key(name),
        }
    }

    /// A whole number.
    pub fn integer(&self, name: &'static str, errors: &mut Vec<FieldError>) -> Option<i64> {
        let invalid = |errors: &mut Vec<FieldError>| {
            errors.push(FieldError::new(name, "not_an_integer"));
            None
        };
        match self {
            Self::Json(map) => match map.get(name) {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => n.as_i64().or_else(|| invalid(errors)),
                Some(_) => invalid(errors),
            },
            Self::Form(map) => map
                .get(name)
                .and_then(|v| v.trim().parse().ok().or_else(|| invalid(errors))),
        }
    }
}

/// A JSON value read as text: a string is one, `null` is absent, any other
/// value is refused as `not_a_string`.
fn json_text(name: &'static str, value: Value, errors: &mut Vec<FieldError>) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        other => no_text(name, &other, errors),
    }
}

/// [`json_text`] of a value that is no string (read where it lies: a large
/// one refused is not copied first).
fn no_text(name: &'static str, value: &Value, errors: &mut Vec<FieldError>) -> Option<String> {
    if !value.is_null() {
        errors.push(FieldError::new(name, "not_a_string"));
    }
    None
}

/// A JSON value read as a flag: a boolean as its text, `null` refused as
/// `not_a_boolean`, anything else read as text.
fn json_flag(name: &'static str, value: Value, errors: &mut Vec<FieldError>) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        other => flag_of(name, &other, errors),
    }
}

/// [`json_flag`] of a value that is no string.
fn flag_of(name: &'static str, value: &Value, errors: &mut Vec<FieldError>) -> Option<String> {
    match value {
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => {
            errors.push(FieldError::new(name, "not_a_boolean"));
            None
        }
        other => no_text(name, other, errors),
    }
}

/// Fields taken out by name, each once: what reading a signature needs of a
/// body, whether all of it was parsed ([`Fields`]) or only the fields it
/// reads were picked out ([`Picked`]).
pub(crate) trait TakeFields {
    /// As [`Fields::text`], taking the value out rather than copying it: a
    /// signature's fields are each read once.
    fn take_text(&mut self, name: &'static str, errors: &mut Vec<FieldError>) -> Option<String>;
    /// As [`Fields::flag`].
    fn take_flag(&mut self, name: &'static str, errors: &mut Vec<FieldError>) -> Option<String>;
}

impl TakeFields for Fields {
    fn take_text(&mut self, name: &'static str, errors: &mut Vec<FieldError>) -> Option<String> {
        match self {
            Self::Form(map) => map.remove(name),
            Self::Json(map) => json_text(name, map.remove(name)?, errors),
        }
    }

    fn take_flag(&mut self, name: &'static str, errors: &mut Vec<FieldError>) -> Option<String> {
        self.flag(name, errors)
    }
}

/// The fields of a JSON object body named in `names`, picked out in one pass
/// over it. The others are read as JSON, as [`Fields::parse`] reads them (a
/// body it refuses is refused too, in the same words unless the body is no
/// object), and kept nowhere; no map is built and no name copied. The
/// signing path reads its JSON bodies so: the map of a whole body, its names
/// copied and then searched for each field, cost about 3,000 instructions a
/// signature (benches/BENCHMARKS.md, "Requests cost less").
pub(crate) struct Picked<const N: usize> {
    names: &'static [&'static str; N],
    values: [Option<Value>; N],
}

impl<const N: usize> Picked<N> {
    pub fn parse(names: &'static [&'static str; N], body: &[u8]) -> Result<Self, ApiError> {
        let mut json = serde_json::Deserializer::from_slice(body);
        let values = json
            .deserialize_map(PickFields(names))
            .and_then(|values| json.end().map(|()| values));
        match values {
            Ok(values) => Ok(Self { names, values }),
            // Only the body's own type can be wrong: any value is taken inside.
            Err(e) if e.classify() == serde_json::error::Category::Data => Err(
                ApiError::Malformed("The body must be a JSON object.".into()),
            ),
            Err(e) => Err(ApiError::Malformed(format!(
                "The body is not valid JSON: {e}."
            ))),
        }
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        let at = self.names.iter().position(|n| *n == name);
        debug_assert!(at.is_some(), "{name} is not among the fields picked");
        self.values.get_mut(at?)?.take()
    }
}

impl<const N: usize> TakeFields for Picked<N> {
    fn take_text(&mut self, name: &'static str, errors: &mut Vec<FieldError>) -> Option<String> {
        json_text(name, self.take(name)?, errors)
    }

    fn take_flag(&mut self, name: &'static str, errors: &mut Vec<FieldError>) -> Option<String> {
        json_flag(name, self.take(name)?, errors)
    }
}

/// Reads a JSON object, keeping the values of the fields named (the last,
/// when a name comes twice, as a map keeps it).
struct PickFields<const N: usize>(&'static [&'static str; N]);

impl<'de, const N: usize> Visitor<'de> for PickFields<N> {
    type Value = [Option<Value>; N];

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = std::array::from_fn(|_| None);
        while let Some(at) = map.next_key_seed(FieldIndex(self.0))? {
            match at {
                Some(i) => values[i] = Some(map.next_value()?),
                None => {
                    map.next_value::<Skipped>()?;
                }
            }
        }
        Ok(values)
    }
}

/// A field's name, read as where it is among the names picked (`None`: not
/// among them), without copying it.
struct FieldIndex<const N: usize>(&'static [&'static str; N]);

impl<'de, const N: usize> DeserializeSeed<'de> for FieldIndex<N> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, names: D) -> Result<Self::Value, D::Error> {
        names.deserialize_str(self)
    }
}

impl<const N: usize> Visitor<'_> for FieldIndex<N> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|n| *n == name))
    }
}

/// Any JSON value, read as a [`Value`] is (strings checked as UTF-8, numbers
/// parsed, nesting bounded) and kept nowhere. serde's `IgnoredAny` would skip
/// a string without checking it.
struct Skipped;

impl<'de> Deserialize<'de> for Skipped {
    fn deserialize<D: Deserializer<'de>>(value: D) -> Result<Self, D::Error> {
        value.deserialize_any(Skipped)
    }
}

impl<'de> Visitor<'de> for Skipped {
    type Value = Skipped;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self, A::Error> {
        while items.next_element::<Skipped>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Self, A::Error> {
        while entries.next_entry::<Skipped, Skipped>()?.is_some() {}
        Ok(self)
    }
}

/// An HTML form's fields, the last of a repeated name winning. Bytes that are
/// not UTF-8 are refused, naming the field, as JSON refuses them: decoded
/// leniently (as `form_urlencoded` does) they would be stored as U+FFFD.
fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, ApiError> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            let name = form_decode(name)
                .ok_or_else(|| ApiError::Malformed("A field name is not valid UTF-8.".into()))?;
            let value = form_decode(value).ok_or_else(|| {
                ApiError::Malformed(format!("The field {name:?} is not valid UTF-8."))
            })?;
            Ok((name, value))
        })
        .collect()
}

/// One name or value of a form: `+` is a space, `%XX` a byte; `None` when
/// the bytes are not UTF-8.
fn form_decode(encoded: &[u8]) -> Option<String> {
    let spaced: Cow<[u8]> = if encoded.contains(&b'+') {
        Cow::Owned(
            encoded
                .iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(encoded)
    };
    percent_decode(&spaced)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

/// The value when `result` is one; else its code is noted against `field`.
pub fn check<T>(
    errors: &mut Vec<FieldError>,
    field: &'static str,
    result: Result<T, &'static str>,
) -> Option<T> {
    result
        .map_err(|code| errors.push(FieldError::new(field, code)))
        .ok()
}

/// Joins the type errors met while reading fields with the domain's verdict;
/// a field wrongly typed is reported once, as such, and nothing inside it is.
pub fn validated<T>(
    type_errors: Vec<FieldError>,
    parsed: Result<T, Vec<FieldError>>,
) -> Result<T, ApiError> {
    merged(type_errors, parsed).map_err(ApiError::Invalid)
}

/// As [`validated`], the errors as a list.
pub fn merged<T>(
    type_errors: Vec<FieldError>,
    parsed: Result<T, Vec<FieldError>>,
) -> Result<T, Vec<FieldError>> {
    match parsed {
        Ok(value) if type_errors.is_empty() => Ok(value),
        Ok(_) => Err(type_errors),
        Err(errors) => {
            let mistyped = |e: &FieldError| {
                type_errors.iter().any(|t| {
                    e.field == t.field
                        || e.field
                            .strip_prefix(t.field.as_ref())
                            .is_some_and(|rest| rest.starts_with('.'))
                })
            };
            let checked: Vec<FieldError> = errors.into_iter().filter(|e| !mistyped(e)).collect();
            Err(type_errors.into_iter().chain(checked).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_null_is_no_boolean_and_an_absent_one_is_absent() {
        let fields =
            Fields::parse(BodyKind::Json, br#"{"a": true, "b": null, "c": "off"}"#).unwrap();
        let mut errors = Vec::new();
        assert_eq!(fields.boolean("a", &mut errors), Some(true));
        assert_eq!(fields.boolean("c", &mut errors), Some(false));
        assert_eq!(fields.boolean("d", &mut errors), None);
        assert!(errors.is_empty());
        assert_eq!(fields.boolean("b", &mut errors), None);
        assert_eq!(errors, vec![FieldError::new("b", "not_a_boolean")]);
    }

    /// What a JSON body that [`Fields::parse`] refuses is refused with.
    fn refusal<T>(result: Result<T, ApiError>) -> String {
        match result {
            Err(ApiError::Malformed(detail)) => detail,
            Err(other) => panic!("{other:?}"),
            Ok(_) => "accepted".into(),
        }
    }

    /// A body picked in one pass is refused where the whole body parsed is,
    /// with the same words: its unknown fields are read as JSON too.
    #[test]
    fn a_body_picked_is_refused_as_the_whole_body_parsed() {
        let deep = format!("{{\"x\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        let bodies: [&[u8]; 13] = [
            b"",
            b"{",
            br#"{"a":"#,
            br#"{"a" 1}"#,
            br#"{"a":1}x"#,
            b"[1]",
            br#""text""#,
            b"null",
            b"nul",
            b"{\"x\":\"\xFF\"}",
            b"{\"x\":[{\"y\":\"\xFE\"}]}",
            br#"{"x":1e999}"#,
            deep.as_bytes(),
        ];
        for body in bodies {
            let whole = refusal(Fields::parse(BodyKind::Json, body));
            let picked = refusal(Picked::parse(&["a", "b"], body));
            assert_eq!(picked, whole, "{}", String::from_utf8_lossy(body));
        }
        // The one difference: a body that is no object, followed by
        // anything or cut short, is told it is no object, where the whole
        // parse first finds the characters after it or the cut.
        for body in [
            &b"123abc"[..],
            b"[1]x",
            br#""a"x"#,
            b"truex",
            b"[",
            b"[1,",
            b"[\xFF",
        ] {
            assert_eq!(
                refusal(Picked::parse(&["a"], body)),
                "The body must be a JSON object.",
                "{}",
                String::from_utf8_lossy(body)
            );
            assert!(
                refusal(Fields::parse(BodyKind::Json, body))
                    .starts_with("The body is not valid JSON"),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// Each field picked is as the map holds it; the last of a name sent
    /// twice wins, as in a map.
    #[test]
    fn fields_picked_are_the_values_sent() {
        let body = br#"{"b":"one","z":{"k":[1,"v"]},"a":true,"b":"two","c":null}"#;
        let mut picked = Picked::parse(&["a", "b", "c", "d"], body).unwrap();
        let mut errors = Vec::new();
        assert_eq!(picked.take_flag("a", &mut errors).as_deref(), Some("true"));
        assert_eq!(picked.take_text("b", &mut errors).as_deref(), Some("two"));
        assert_eq!(picked.take_text("c", &mut errors), None);
        assert_eq!(picked.take_text("d", &mut errors), None);
        assert!(errors.is_empty());
        // Taken once: a second take finds nothing.
        assert_eq!(picked.take_text("b", &mut errors), None);
    }

    fn form(body: &[u8]) -> Result<HashMap<String, String>, String> {
        match Fields::parse(BodyKind::Form, body) {
            Ok(Fields::Form(map)) => Ok(map),
            Ok(Fields::Json(_)) => unreachable!("a form parses as a form"),
            Err(ApiError::Malformed(detail)) => Err(detail),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn forms_decode_as_browsers_encode() {
        let body = b"full_name=Jos%C3%A9+Mar%C3%ADa&email=a%2Bx%40example.org&&consent_updates&city=&city=Bak%C4%B1";
        let map = form(body).unwrap();
        assert_eq!(map, form_urlencoded::parse(body).into_owned().collect());
        assert_eq!(map["full_name"], "José María");
        assert_eq!(map["email"], "a+x@example.org");
        assert_eq!(map["consent_updates"], "");
        assert_eq!(map["city"], "Bakı");
    }

    #[test]
    fn form_bytes_that_are_not_utf8_are_refused_naming_the_field() {
        assert_eq!(
            form(b"country=NL&full_name=%FF%FE").unwrap_err(),
            r#"The field "full_name" is not valid UTF-8."#
        );
        assert_eq!(
            form(b"city=Bak\xC4").unwrap_err(),
            r#"The field "city" is not valid UTF-8."#
        );
        assert_eq!(
            form(b"%C3=x").unwrap_err(),
            "A field name is not valid UTF-8."
        );
        // A replacement character sent as such is text like any other.
        assert_eq!(form(b"city=%EF%BF%BD").unwrap()["city"], "\u{FFFD}");
    }
}
