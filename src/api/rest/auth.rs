//! `/api/v1/auth`: register, login, logout.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::users::UserResponse;
use crate::auth::AuthUser;
use crate::domain::{Email, FieldError, FieldErrors, Password, PersonName, Role};
use crate::error::ApiError;
use crate::http::request_meta::RequestMeta;
use crate::services::accounts::{self, NewAccount};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct RegisterBody {
    email: Option<String>,
    password: Option<String>,
    name: Option<String>,
    role: Option<String>,
}

fn required(field: &str) -> FieldError {
    FieldError::new(field, "required", format!("{field} is required"))
}

impl RegisterBody {
    fn parse(&self) -> Result<NewAccount, ApiError> {
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

pub async fn register(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let account = body.parse()?;
    let user = accounts::create(&state.db, &meta.actor(None), account).await?;
    Ok(HttpResponse::Created().json(UserResponse::from(user)))
}

#[derive(Deserialize)]
pub struct LoginBody {
    email: Option<String>,
    password: Option<String>,
}

#[derive(Serialize)]
pub struct LoginResponse {
    token: String,
    token_type: &'static str,
    expires_at: DateTime<Utc>,
    user: UserResponse,
}

pub async fn login(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Json<LoginBody>,
) -> Result<web::Json<LoginResponse>, ApiError> {
    let mut errors = FieldErrors::new();
    let email = match &body.email {
        None => {
            errors.push(required("email"));
            None
        }
        Some(e) => errors.check("email", Email::parse(e)),
    };
    let password = match &body.password {
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
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::Validation(errors.into_vec()));
    };
    let session = accounts::login(
        &state.db,
        &meta.actor(None),
        &state.decoy_hash,
        state.token_ttl(),
        email,
        password,
    )
    .await?;
    Ok(web::Json(LoginResponse {
        token: session.token,
        token_type: "Bearer",
        expires_at: session.expires_at,
        user: session.user.into(),
    }))
}

pub async fn logout(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
) -> Result<HttpResponse, ApiError> {
    accounts::logout(&state.db, &meta.actor(Some(auth.id)), &auth).await?;
    Ok(HttpResponse::NoContent().finish())
}
