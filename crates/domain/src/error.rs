use std::borrow::Cow;

use serde::Serialize;

/// Why one field of a request was refused: the field's wire name and a stable code.
/// A field inside another is named by its path: `translations.fr.title`,
/// `targets[1].name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: Cow<'static, str>,
    pub code: &'static str,
}

impl FieldError {
    pub fn new(field: impl Into<Cow<'static, str>>, code: &'static str) -> Self {
        Self {
            field: field.into(),
            code,
        }
    }

    /// The same error for the field as found inside `outer` (`outer.field`).
    pub fn within(self, outer: &str) -> Self {
        Self {
            field: format!("{outer}.{}", self.field).into(),
            code: self.code,
        }
    }
}

/// Collects the errors of every field of one request, so all are reported at once.
#[derive(Debug, Default)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// The value when the field parsed, `None` (and the error noted) when not.
    pub fn check<T>(&mut self, field: &'static str, result: Result<T, &'static str>) -> Option<T> {
        result
            .map_err(|code| self.0.push(FieldError::new(field, code)))
            .ok()
    }

    /// The value when it parsed; else its errors, each found inside `outer`.
    pub fn nested<T>(&mut self, outer: &str, result: Result<T, Vec<FieldError>>) -> Option<T> {
        result
            .map_err(|e| self.0.extend(e.into_iter().map(|e| e.within(outer))))
            .ok()
    }

    /// The value when it parsed; else its errors, as they are.
    pub fn nested_here<T>(&mut self, result: Result<T, Vec<FieldError>>) -> Option<T> {
        result.map_err(|e| self.0.extend(e)).ok()
    }

    /// A refusal of one more field.
    pub fn push(&mut self, field: &'static str, code: &'static str) {
        self.0.push(FieldError::new(field, code));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
