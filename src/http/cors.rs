//! CORS: which other sites' pages may call the API from a browser
//! (`ROOST_CORS_ORIGINS`), with the methods and headers the API uses.
//!
//! A request from an origin not on the list is served as usual, with no
//! CORS headers: the browser then keeps the answer from the page. That is
//! also what the same-origin page Roost serves (`/`) gets. It wraps the
//! API's scopes only: the sandbox processor's card endpoint answers any
//! origin itself, as a real processor's does.
//! Credentials (cookies) are never allowed: Roost's tokens travel in
//! `Authorization`, which pages send explicitly.

use actix_cors::Cors;
use actix_web::http::header::{self, HeaderName};

use crate::config::CorsOrigins;

/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE_SECS: usize = 3600;

pub fn cors(origins: &CorsOrigins) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("idempotent-replayed"),
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
        ])
        .max_age(PREFLIGHT_MAX_AGE_SECS)
        .block_on_origin_mismatch(false);
    match origins {
        CorsOrigins::Any => cors = cors.allow_any_origin().send_wildcard(),
        CorsOrigins::List(list) => {
            for origin in list {
                cors = cors.allowed_origin(origin);
            }
        }
    }
    cors
}
