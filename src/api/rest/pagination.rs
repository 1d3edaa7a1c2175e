//! Keyset pagination: `limit` (1 to 100) and an opaque `cursor` that names
//! where the previous page ended. No OFFSET scans.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::domain::{FieldError, FieldErrors};
use crate::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Rows per page, 1 to 100 (20 by default).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A parsed page request: at most `limit` rows past the cursor's id.
pub struct PageRequest {
    cursor: Option<i64>,
    pub limit: i64,
}

impl PageRequest {
    /// For pages in ascending id order: rows with an id above this.
    pub fn after_id(&self) -> i64 {
        self.cursor.unwrap_or(0)
    }

    /// For pages in descending id order (newest first): rows with an id below this.
    pub fn before_id(&self) -> i64 {
        self.cursor.unwrap_or(i64::MAX)
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl PageQuery {
    pub fn parse(&self) -> Result<PageRequest, ApiError> {
        let mut errors = FieldErrors::new();
        let limit = match self.limit {
            None => Some(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Some(n),
            Some(_) => {
                errors.push(FieldError::new(
                    "limit",
                    "out_of_range",
                    "limit must be from 1 to 100",
                ));
                None
            }
        };
        let cursor = match &self.cursor {
            None => Some(None),
            Some(c) => errors.check("cursor", decode_cursor(c)).map(Some),
        };
        match (limit, cursor) {
            (Some(limit), Some(cursor)) if errors.is_empty() => Ok(PageRequest { cursor, limit }),
            _ => Err(ApiError::Validation(errors.into_vec())),
        }
    }
}

pub fn encode_cursor(last_id: i64) -> String {
    encode_opaque(&format!("id:{last_id}"))
}

fn decode_cursor(raw: &str) -> Result<i64, FieldError> {
    decode_opaque(raw)?
        .strip_prefix("id:")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(bad_cursor)
}

/// A cursor's text, hidden from clients (they must not build their own).
pub fn encode_opaque(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

pub fn decode_opaque(raw: &str) -> Result<String, FieldError> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad_cursor())?;
    String::from_utf8(bytes).map_err(|_| bad_cursor())
}

pub fn bad_cursor() -> FieldError {
    FieldError::new(
        "cursor",
        "invalid_cursor",
        "cursor is not one this server issued",
    )
}

/// Builds a page from up to `limit` rows, with a cursor when the page is full.
pub fn page<R, T>(rows: Vec<R>, limit: i64, id_of: fn(&R) -> i64, view: fn(R) -> T) -> Page<T> {
    let next_cursor = if rows.len() as i64 == limit {
        rows.last().map(|r| encode_cursor(id_of(r)))
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(view).collect(),
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_forgeries() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
        assert!(decode_cursor("not base64 !").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("id:-3")).is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("nope")).is_err());
    }
}
