//! `/api/v1/auth`: register, login, logout.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::users::UserResponse;
use crate::auth::AuthUser;
use crate::commit::Reply;
use crate::db::users::User;
use crate::domain::{Email, FieldError, FieldErrors, Password, PersonName, Role};
use crate::error::ApiError;
use crate::http::request_meta::RequestMeta;
use crate::services::accounts::{self, NewAccount, Session};
use crate::state::AppState;

/// A sign-up, as REST's body and GraphQL's `register` arguments both give it.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "email": "ada@example.com", "password": "correct horse battery", "name": "Ada", "role": "guest"
}))]
pub struct RegisterBody {
    #[schema(required = true, value_type = String, format = Email)]
    pub email: Option<String>,
    /// At least 8 characters.
    #[schema(required = true, value_type = String, format = Password, min_length = 8, max_length = 128)]
    pub password: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// `guest` (the default) or `host`.
    #[schema(value_type = String, pattern = "^(guest|host)$", required = false)]
    pub role: Option<String>,
}

fn required(field: &str) -> FieldError {
    FieldError::new(field, "required", format!("{field} is required"))
}

impl RegisterBody {
    pub fn parse(&self) -> Result<NewAccount, ApiError> {
        let mut errors = FieldErrors::new();
        let mut field = |name: &str, value: &Option<String>| {
            if value.is_none() {
                errors.push(required(name));
            }
            value.clone()
        };
        let (email, password, name) = (
            field("email", &self.email),
            field("password", &self.password),
            field("name", &self.name),
        );
        let email = email.and_then(|e| errors.check("email", Email::parse(&e)));
        let password = password.and_then(|p| errors.check("password", Password::parse(&p)));
        let name = name.and_then(|n| errors.check("name", PersonName::parse(&n)));
        let role = match &self.role {
            None => Some(Role::Guest),
            Some(r) => errors.check("role", Role::parse_self_chosen(r)),
        };
        match (email, password, name, role) {
            (Some(email), Some(password), Some(name), Some(role)) if errors.is_empty() => {
                Ok(NewAccount {
                    email,
                    name,
                    password,
                    role,
                })
            }
            _ => Err(ApiError::Validation(errors.into_vec())),
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "accounts",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "The new account", body = UserResponse),
        (status = 409, description = "`email_taken`", body = crate::error::Envelope),
    )
)]
pub async fn register(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let account = body.parse()?;
    let commit = meta.commit(None, |u: &User| {
        Reply::json(201, &UserResponse::from(u.clone()))
    });
    let user = accounts::create(&state.db, &commit, account).await?;
    Ok(commit.reply(&user)?.into())
}

/// A sign-in, as REST's body and GraphQL's `signIn` arguments both give it.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery"}))]
pub struct LoginBody {
    #[schema(required = true, value_type = String, format = Email)]
    pub email: Option<String>,
    #[schema(required = true, value_type = String, format = Password)]
    pub password: Option<String>,
}

impl LoginBody {
    /// The email, parsed, and the password as given.
    pub fn parse(&self) -> Result<(Email, String), ApiError> {
        let mut errors = FieldErrors::new();
        let email = match &self.email {
            None => {
                errors.push(required("email"));
                None
            }
            Some(e) => errors.check("email", Email::parse(e)),
        };
        let password = match &self.password {
            None => {
                errors.push(required("password"));
                None
            }
            // Longer than any password we accept: wrong, and not worth hashing.
            Some(p) if p.chars().count() > Password::MAX_LEN => {
                return Err(ApiError::InvalidCredentials);
            }
            Some(p) => Some(p.clone()),
        };
        match (email, password) {
            (Some(email), Some(password)) => Ok((email, password)),
            _ => Err(ApiError::Validation(errors.into_vec())),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    token: String,
    token_type: &'static str,
    expires_at: DateTime<Utc>,
    user: UserResponse,
}

impl From<&Session> for LoginResponse {
    fn from(s: &Session) -> Self {
        Self {
            token: s.token.clone(),
            token_type: "Bearer",
            expires_at: s.expires_at,
            user: s.user.clone().into(),
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "accounts",
    request_body = LoginBody,
    responses(
        (status = 200, description = "A bearer token", body = LoginResponse),
        (status = 401, description = "`invalid_credentials`", body = crate::error::Envelope),
    )
)]
pub async fn login(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let (email, password) = body.parse()?;
    let commit = meta.commit(None, |s: &Session| {
        Reply::json(200, &LoginResponse::from(s))
    });
    let session = accounts::login(
        &state.db,
        &commit,
        &state.decoy_hash,
        state.token_ttl(),
        email,
        password,
    )
    .await?;
    Ok(commit.reply(&session)?.into())
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The token is revoked on every node"),
    )
)]
pub async fn logout(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let commit = meta.commit(Some(auth.id), |_: &()| Ok(Reply::empty(204)));
    accounts::logout(&state.db, &commit, &auth).await?;
    state.user_changed(auth.id);
    Ok(commit.reply(&())?.into())
}
