//! Per-client-IP rate limits (governor): a tight one on register and login,
//! a looser one on the whole API. Over the limit: 429 `rate_limited` with `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;
use crate::state::AppState;

/// One keyed limiter; `None` when its setting is 0 (off).
#[derive(Clone)]
pub struct Limiter(Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>);

impl Limiter {
    pub fn per_second(n: u32) -> Self {
        Self(NonZeroU32::new(n).map(|n| Arc::new(RateLimiter::keyed(Quota::per_second(n)))))
    }

    pub fn per_minute(n: u32) -> Self {
        Self(NonZeroU32::new(n).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n)))))
    }

    pub fn check(&self, ip: IpAddr) -> Result<(), ApiError> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        limiter
            .check_key(&ip)
            .map_err(|not_until| ApiError::RateLimited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            })
    }

    /// Forgets clients that are back to a full allowance, so memory stays bounded.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The two limits Roost applies.
#[derive(Clone)]
pub struct RateLimits {
    pub api: Limiter,
    pub auth: Limiter,
}

async fn limited<B: MessageBody + 'static>(
    pick: fn(&RateLimits) -> &Limiter,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<B>>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        let ip = super::client_ip::client_ip(req.request(), &state.settings.trusted_proxies);
        if let Some(ip) = ip
            && let Err(e) = pick(&state.rate_limits).check(ip)
        {
            return Ok(req.error_response(e).map_into_right_body());
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Middleware: the whole-API limit.
pub async fn api_limit<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<B>>, actix_web::Error> {
    limited(|l| &l.api, req, next).await
}

/// Middleware: the register/login limit.
pub async fn auth_limit<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<B>>, actix_web::Error> {
    limited(|l| &l.auth, req, next).await
}
