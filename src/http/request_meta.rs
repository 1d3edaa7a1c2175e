//! `RequestMeta`: what the audit trail records of a request besides the
//! user: the client's IP (as `client_ip` sees it) and the request id.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::client_ip::client_ip;
use crate::domain::UserId;
use crate::domain::audit::AuditActor;
use crate::error::ApiError;
use crate::state::AppState;

/// The request id `observe` gave this request (in its extensions).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

impl RequestMeta {
    pub fn of(req: &HttpRequest) -> Self {
        let trusted = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.settings.trusted_proxies.clone())
            .unwrap_or_default();
        Self {
            ip: client_ip(req, &trusted).map(|ip| ip.to_string()),
            request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
        }
    }

    /// The actor of this request: `user` (none when signed out).
    pub fn actor(&self, user: Option<UserId>) -> AuditActor {
        AuditActor {
            user,
            ip: self.ip.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

impl FromRequest for RequestMeta {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}
