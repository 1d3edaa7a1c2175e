//! A JSON object body read field by field, so that every bad field (a wrong
//! type included) is reported at once in the error's `details`.

use serde_json::{Map, Value};

use crate::domain::{FieldError, FieldErrors};
use crate::error::ApiError;

pub struct Form {
    fields: Map<String, Value>,
    errors: FieldErrors,
}

impl Form {
    /// Reads `fields`; any name not in `known` is an error.
    pub fn new(fields: Map<String, Value>, known: &[&str]) -> Self {
        let mut errors = FieldErrors::new();
        for name in fields.keys() {
            if !known.contains(&name.as_str()) {
                errors.push(FieldError::new(
                    name,
                    "unknown_field",
                    format!("unknown field; expected one of: {}", known.join(", ")),
                ));
            }
        }
        Self { fields, errors }
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.fields.remove(name).filter(|v| !v.is_null())
    }

    fn wrong_type(&mut self, name: &str, expected: &str) {
        self.errors.push(FieldError::new(
            name,
            "wrong_type",
            format!("{name} must be {expected}"),
        ));
    }

    pub fn string(&mut self, name: &str) -> Option<String> {
        match self.take(name)? {
            Value::String(s) => Some(s),
            _ => {
                self.wrong_type(name, "a string");
                None
            }
        }
    }

    pub fn int(&mut self, name: &str) -> Option<i64> {
        let value = self.take(name)?;
        match value.as_i64() {
            Some(n) => Some(n),
            None => {
                self.wrong_type(name, "a whole number");
                None
            }
        }
    }

    pub fn float(&mut self, name: &str) -> Option<f64> {
        let value = self.take(name)?;
        match value.as_f64() {
            Some(n) => Some(n),
            None => {
                self.wrong_type(name, "a number");
                None
            }
        }
    }

    pub fn strings(&mut self, name: &str) -> Option<Vec<String>> {
        let value = self.take(name)?;
        let list = value.as_array().and_then(|items| {
            items
                .iter()
                .map(|v| v.as_str().map(String::from))
                .collect::<Option<Vec<_>>>()
        });
        if list.is_none() {
            self.wrong_type(name, "a list of strings");
        }
        list
    }

    /// A required `YYYY-MM-DD` date.
    pub fn date(&mut self, name: &str) -> Option<chrono::NaiveDate> {
        match self.string(name) {
            None => {
                self.missing(name);
                None
            }
            Some(raw) => self.check(name, crate::domain::stay::parse_date(&raw)),
        }
    }

    /// A required field that is missing.
    pub fn missing(&mut self, name: &str) {
        self.errors.push(FieldError::new(
            name,
            "required",
            format!("{name} is required"),
        ));
    }

    /// Records the error of a value parsed from field `name`.
    pub fn check<T>(&mut self, name: &str, result: Result<T, FieldError>) -> Option<T> {
        self.errors.check(name, result)
    }

    pub fn errors(&mut self) -> &mut FieldErrors {
        &mut self.errors
    }

    /// The fields' errors, if any, as the one validation error.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors.into_vec()))
        }
    }
}

/// A required `YYYY-MM-DD` query parameter, its error (missing, malformed)
/// added to `errors`.
pub fn query_date(
    errors: &mut FieldErrors,
    name: &str,
    raw: &Option<String>,
) -> Option<chrono::NaiveDate> {
    match raw {
        None => {
            errors.push(FieldError::new(
                name,
                "required",
                format!("{name} is required"),
            ));
            None
        }
        Some(raw) => errors.check(name, crate::domain::stay::parse_date(raw)),
    }
}

/// Declares a request body as its handler reads it and as OpenAPI
/// describes it, from one definition: each field holds the raw JSON value
/// (so a [`Form`] can report every bad field at once, a wrong type
/// included) and is documented as the type it should have; names not
/// declared are kept, to be refused as `unknown_field`.
///
/// ```ignore
/// raw_body! {
///     /// A host's block of nights.
///     BlockBody {
///         /// The first blocked night.
///         #[schema(required = true, format = Date)] start: String,
///         reason: Option<String>,
///     }
/// }
/// ```
#[macro_export]
macro_rules! raw_body {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        #[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(default)]
                #[schema(value_type = $ty)]
                pub $field: Option<serde_json::Value>,
            )*
            /// Names not declared: each is refused as `unknown_field`.
            #[serde(flatten)]
            #[schema(ignore)]
            pub unknown: serde_json::Map<String, serde_json::Value>,
        }

        impl $name {
            /// The names this body may have.
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// The body as the JSON object it came as (nulls as absent).
            pub fn into_map(self) -> serde_json::Map<String, serde_json::Value> {
                let mut map = self.unknown;
                $(
                    if let Some(value) = self.$field {
                        map.insert(stringify!($field).to_owned(), value);
                    }
                )*
                map
            }
        }
    };
}
