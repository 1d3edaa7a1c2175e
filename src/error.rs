//! `ApiError`: every failure a client can see, and the one JSON shape it takes:
//! `{"error": {"code": "...", "message": "...", "details": ...}}`.
//!
//! A 500 shows the client nothing internal; its full cause chain is logged
//! once, here, at the boundary.

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, ResponseError, error as actix_error};
use serde::Serialize;
use serde_json::Value;

use crate::db::Unavailable;
use crate::domain::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// One or more fields are invalid; each is listed in `details`.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// The request as a whole is malformed (bad JSON, bad query string…).
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        details: Option<Value>,
    },
    #[error("authentication required")]
    Unauthorized,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("this account has been deactivated")]
    AccountDeactivated,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: &'static str,
    },
    /// The stay's price is no longer the one the client expected: 409
    /// `price_changed`, with the new quote in `details`.
    #[error("the price has changed since your quote; the new quote is in details")]
    PriceChanged(Box<Value>),
    /// Well-formed, but against a business rule (too many guests, too few nights…).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("request body is too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests")]
    RateLimited { retry_after: Duration },
    #[error("service unavailable")]
    Unavailable(#[from] Unavailable),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        // SQLite's busy timeout ran out behind other writers: overloaded, not broken.
        if let diesel::result::Error::DatabaseError(_, info) = &e
            && info.message().contains("database is locked")
        {
            return ApiError::Unavailable(Unavailable::new(info.message()));
        }
        ApiError::Internal(e.into())
    }
}

/// Every error's body, whatever its status.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorBody)]
pub struct Body<'a> {
    /// Stable and machine-readable: switch on this (`validation_failed`,
    /// `not_found`, `dates_unavailable`, …).
    code: &'a str,
    /// For people; may change.
    message: &'a str,
    /// `validation_failed`: one `{field, code, message}` per bad field;
    /// `price_changed`: the new quote.
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Value>,
}

/// The one error body, for any status.
pub fn error_body(
    status: StatusCode,
    code: &str,
    message: &str,
    details: Option<Value>,
) -> HttpResponse {
    HttpResponse::build(status).json(Envelope {
        error: Body {
            code,
            message,
            details,
        },
    })
}

impl ApiError {
    /// The stable, machine-readable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation_failed",
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::AccountDeactivated => "account_deactivated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { code, .. } => code,
            ApiError::PriceChanged(_) => "price_changed",
            ApiError::Unprocessable { code, .. } => code,
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    pub fn validation(error: FieldError) -> Self {
        ApiError::Validation(vec![error])
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::AccountDeactivated => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } | ApiError::PriceChanged(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let details = match self {
            ApiError::Validation(fields) => serde_json::to_value(fields).ok(),
            ApiError::BadRequest { details, .. } => details.clone(),
            ApiError::PriceChanged(quote) => Some((**quote).clone()),
            _ => None,
        };
        let message = match self {
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed");
                "something went wrong on our side".to_owned()
            }
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                "the service is temporarily unavailable, try again shortly".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = error_body(self.status_code(), self.code(), &message, details);
        match self {
            ApiError::RateLimited { retry_after } => {
                let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
            }
            ApiError::Unauthorized | ApiError::InvalidCredentials => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            ApiError::Unavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(1u64));
            }
            _ => {}
        }
        response
    }
}

/// Malformed, mistyped or oversized JSON bodies.
pub fn json_error(err: actix_error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    use actix_error::JsonPayloadError as E;
    let api = match &err {
        E::OverflowKnownLength { limit, .. } | E::Overflow { limit } => {
            ApiError::PayloadTooLarge { limit: *limit }
        }
        E::ContentType => ApiError::UnsupportedMediaType(
            "request body must be JSON (Content-Type: application/json)".into(),
        ),
        E::Deserialize(e) if e.is_data() => ApiError::BadRequest {
            code: "invalid_body",
            message: format!("request body has the wrong shape: {e}"),
            details: None,
        },
        E::Deserialize(e) => ApiError::BadRequest {
            code: "invalid_json",
            message: format!("request body is not valid JSON: {e}"),
            details: None,
        },
        _ => ApiError::BadRequest {
            code: "invalid_body",
            message: "request body could not be read".into(),
            details: None,
        },
    };
    api.into()
}

/// Bad path segments (e.g. a non-numeric id).
pub fn path_error(err: actix_error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest {
        code: "invalid_path",
        message: format!("bad path parameter: {err}"),
        details: None,
    }
    .into()
}

/// Bad query strings.
pub fn query_error(err: actix_error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest {
        code: "invalid_query",
        message: format!("bad query string: {err}"),
        details: None,
    }
    .into()
}

/// Gives any error response that is not already our JSON (a 404 for an
/// unknown route, a 405, an error from inside actix) the one error shape.
pub fn envelope_bare_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed here"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "unsupported content type")
        }
        StatusCode::URI_TOO_LONG => ("uri_too_long", "request URI is too long"),
        s if s.is_server_error() => ("internal_error", "something went wrong on our side"),
        _ => ("bad_request", "the request could not be understood"),
    };
    let (req, old) = res.into_parts();
    let mut new = error_body(status, code, message, None);
    // Keep headers such as Allow on a 405.
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body(),
    ))
}
