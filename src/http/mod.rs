//! Cross-cutting HTTP concerns: who the client is, how fast they may go,
//! and what every request leaves behind (a span, a request id, metrics).

/// The largest JSON body any endpoint takes.
pub const JSON_LIMIT: usize = 64 * 1024;

pub mod client_ip;
pub mod cors;
pub mod idempotency;
pub mod metrics;
pub mod observe;
pub mod rate_limit;
pub mod request_meta;
