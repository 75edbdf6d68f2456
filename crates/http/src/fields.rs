//! Fields of a JSON object or an HTML form, taken one by one so that a value of
//! the wrong type is reported against its field instead of failing the body.

use std::borrow::Cow;
use std::collections::HashMap;

use percent_encoding::percent_decode;
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
            Self::Json(map) => match map.get(name) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    errors.push(FieldError::new(name, "not_a_string"));
                    None
                }
            },
        }
    }

    /// As [`Fields::text`], taking the value out rather than copying it: for
    /// a field read once, on the signing path.
    pub fn take_text(
        &mut self,
        name: &'static str,
        errors: &mut Vec<FieldError>,
    ) -> Option<String> {
        match self {
            Self::Form(map) => map.remove(name),
            Self::Json(map) => match map.remove(name)? {
                Value::Null => None,
                Value::String(s) => Some(s),
                _ => {
                    errors.push(FieldError::new(name, "not_a_string"));
                    None
                }
            },
        }
    }

    /// A boolean, as JSON `true`/`false` or as the text a form sends. JSON
    /// `null` is no boolean (422 `not_a_boolean`): the contract says so, and
    /// a flag has nothing to clear.
    pub fn flag(&self, name: &'static str, errors: &mut Vec<FieldError>) -> Option<String> {
        match self {
            Self::Json(map) => match map.get(name) {
                Some(Value::Bool(b)) => Some(b.to_string()),
                Some(Value::Null) => {
                    errors.push(FieldError::new(name, "not_a_boolean"));
                    None
                }
                _ => self.text(name, errors),
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
