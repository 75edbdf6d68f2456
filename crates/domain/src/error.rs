use serde::Serialize;

/// Why one field of a request was refused: the field's wire name and a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub code: &'static str,
}

impl FieldError {
    pub const fn new(field: &'static str, code: &'static str) -> Self {
        Self { field, code }
    }
}

/// Collects the errors of every field of one request, so all are reported at once.
#[derive(Debug, Default)]
pub(crate) struct FieldErrors(pub(crate) Vec<FieldError>);

impl FieldErrors {
    /// The value when the field parsed, `None` (and the error noted) when not.
    pub(crate) fn check<T>(
        &mut self,
        field: &'static str,
        result: Result<T, &'static str>,
    ) -> Option<T> {
        result
            .map_err(|code| self.0.push(FieldError::new(field, code)))
            .ok()
    }
}
