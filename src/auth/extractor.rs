//! `AuthUser`: the signed-in user, from `Authorization: Bearer <token>`.
//! Missing, malformed, expired or revoked tokens, and tokens of deactivated
//! users, all get 401 `unauthorized`.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::db::tokens;
use crate::domain::{Role, UserId};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Clone, Debug)]
pub struct AuthUser {
    pub id: UserId,
    pub role: Role,
    /// The token this request came with (so logout can revoke just it).
    pub token_id: i64,
}

impl AuthUser {
    /// 403 unless the user is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("only an admin may do this"))
        }
    }
}

pub fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        // Already signed in by the idempotency middleware (it needs the user
        // before the handler runs): no second lookup.
        if let Some(user) = req.extensions().get::<AuthUser>().cloned() {
            return Box::pin(async move { Ok(user) });
        }
        let token = bearer(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let state = state.ok_or_else(|| anyhow::anyhow!("AppState missing"))?;
            AuthUser::from_token(&state, token.as_deref().unwrap_or_default()).await
        })
    }
}

impl AuthUser {
    /// The user a bearer token signs in, if it is live: from memory when
    /// it may answer (`crate::auth::cache`), else from the database.
    pub async fn from_token(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
        if !crate::auth::token::is_well_formed(token) {
            return Err(ApiError::Unauthorized);
        }
        let hash = crate::auth::token::hash(token);
        let now = crate::db::now();
        let key = hash.clone();
        let read = || async move {
            let found = state
                .db
                .run(move |mut conn| async move {
                    Ok::<_, ApiError>(tokens::find_live(&mut conn, &key, now.naive_utc()).await?)
                })
                .await?;
            let Some((token_id, expires_at, user)) = found else {
                return Ok(None);
            };
            let role = user
                .role
                .parse()
                .map_err(|_| anyhow::anyhow!("user {} has unknown role {}", user.id, user.role))?;
            let signed_in = AuthUser {
                id: UserId(user.id),
                role,
                token_id,
            };
            Ok(Some((signed_in, expires_at.and_utc())))
        };
        state
            .sign_ins
            .check(hash, now, read)
            .await?
            .ok_or(ApiError::Unauthorized)
    }
}
