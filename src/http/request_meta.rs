//! `RequestMeta`: what a change's transaction needs of its request besides
//! the user: the client's IP (as `client_ip` sees it) and the request id for
//! the audit trail, and the Idempotency-Key claim, if the request has one.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::client_ip::client_ip;
use crate::commit::{Commit, IdempotencyClaim, Reply};
use crate::domain::UserId;
use crate::domain::audit::AuditActor;
use crate::error::ApiError;
use crate::state::AppState;

/// The request id `observe` gave this request (in its extensions).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

#[derive(Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub idempotency: Option<IdempotencyClaim>,
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
            idempotency: req.extensions().get::<IdempotencyClaim>().cloned(),
        }
    }

    /// What this request's change writes besides itself: audit rows by
    /// `user`, and `render`'s answer under the request's Idempotency-Key.
    pub fn commit<T>(
        &self,
        user: Option<UserId>,
        render: impl Fn(&T) -> Result<Reply, ApiError> + Send + Sync + 'static,
    ) -> Commit<T> {
        Commit::new(self.actor(user), self.idempotency.clone(), render)
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
