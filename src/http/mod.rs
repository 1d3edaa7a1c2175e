//! Cross-cutting HTTP concerns: who the client is, how fast they may go,
//! and what every request leaves behind (a span, a request id, metrics).

pub mod client_ip;
pub mod metrics;
pub mod observe;
pub mod rate_limit;
pub mod request_meta;
