//! `/api/v1/users`: my profile, and account administration.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::pagination::{PageQuery, page};
use crate::auth::AuthUser;
use crate::commit::Reply;
use crate::db::users::User;
use crate::domain::audit::ObjectType;
use crate::domain::{Role, UserId};
use crate::error::ApiError;
use crate::http::request_meta::RequestMeta;
use crate::services::{accounts, audit};
use crate::state::AppState;

/// A user as clients see it: never the password hash.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserResponse {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: String,
    pub active: bool,
    /// Hosts' published reviews of them as a guest: how many, and the
    /// average rating (two decimals; `null` with none).
    pub guest_review_count: i64,
    pub guest_rating_avg: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<User> for UserResponse {
    fn from(u: User) -> Self {
        let totals = u.guest_totals();
        Self {
            guest_review_count: totals.count,
            guest_rating_avg: totals.rating_avg(),
            id: u.id,
            email: u.email,
            name: u.name,
            role: u.role,
            active: u.active,
            created_at: u.created_at.and_utc(),
            updated_at: u.updated_at.and_utc(),
        }
    }
}

/// A changed user, answered 200.
fn user_reply(user: &User) -> Result<Reply, ApiError> {
    Reply::json(200, &UserResponse::from(user.clone()))
}

#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "My account", body = UserResponse),
    )
)]
pub async fn get_me(
    state: web::Data<AppState>,
    auth: AuthUser,
) -> Result<web::Json<UserResponse>, ApiError> {
    Ok(web::Json(accounts::get(&state.db, auth.id).await?.into()))
}

/// Any of my name, my password (with the current one) and my role
/// (`guest` or `host`).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "Ada Lovelace"}))]
pub struct UpdateMeBody {
    #[schema(value_type = String, required = false)]
    name: Option<String>,
    #[schema(value_type = String, format = Password, required = false)]
    password: Option<String>,
    /// Required with `password`.
    #[schema(value_type = String, format = Password, required = false)]
    current_password: Option<String>,
    #[schema(value_type = String, required = false)]
    role: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/users/me",
    tag = "accounts",
    request_body = UpdateMeBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "My changed account", body = UserResponse),
    )
)]
pub async fn update_me(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    body: web::Json<UpdateMeBody>,
) -> Result<HttpResponse, ApiError> {
    let update = accounts::parse_profile_update(
        body.name.as_deref(),
        body.password.as_deref(),
        body.current_password.as_deref(),
        body.role.as_deref(),
    )?;
    let commit = meta.commit(Some(auth.id), user_reply);
    // A new password signs out the user's other tokens; a new role changes
    // what every token of theirs may do.
    let signs_in_anew = update.password.is_some() || update.role.is_some();
    let user = accounts::update_profile(&state.db, &commit, &auth, update).await?;
    if signs_in_anew {
        state.user_changed(auth.id);
    }
    Ok(commit.reply(&user)?.into())
}

#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "accounts",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Accounts by id", body = super::pagination::Page<UserResponse>),
        (status = 403, description = "Admins only: `forbidden`", body = crate::error::Envelope),
    )
)]
pub async fn list_users(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let actor = meta.actor(Some(auth.id));
    audit::require_admin(&state.db, &auth, &actor, "user.list").await?;
    let request = query.parse()?;
    let rows = accounts::list(&state.db, request.after_id(), request.limit).await?;
    Ok(HttpResponse::Ok().json(page(rows, request.limit, |u| u.id, UserResponse::from)))
}

#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "accounts",
    params(("id" = i64, Path, description = "The user's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = UserResponse),
        (status = 403, description = "Not yours, and you are not an admin", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
    )
)]
pub async fn get_user(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
) -> Result<web::Json<UserResponse>, ApiError> {
    let id = UserId(path.into_inner());
    if id != auth.id && auth.role != Role::Admin {
        let refusal = ApiError::Forbidden("you may only read your own account");
        let actor = meta.actor(Some(auth.id));
        let user = ObjectType::User;
        return Err(audit::denied(&state.db, &actor, user, Some(id.0), "user.read", refusal).await);
    }
    Ok(web::Json(accounts::get(&state.db, id).await?.into()))
}

#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/deactivate",
    tag = "accounts",
    params(("id" = i64, Path, description = "The user's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account, inactive: its tokens revoked", body = UserResponse),
        (status = 403, description = "Admins only", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
        (status = 409, description = "`cannot_deactivate_self`", body = crate::error::Envelope),
    )
)]
pub async fn deactivate_user(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (commit, target) = (
        meta.commit(Some(auth.id), user_reply),
        UserId(path.into_inner()),
    );
    let user = accounts::set_active(&state.db, &commit, &auth, target, false).await?;
    state.user_changed(target);
    Ok(commit.reply(&user)?.into())
}

#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/activate",
    tag = "accounts",
    params(("id" = i64, Path, description = "The user's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account, active", body = UserResponse),
        (status = 403, description = "Admins only", body = crate::error::Envelope),
        (status = 404, description = "`not_found`", body = crate::error::Envelope),
    )
)]
pub async fn activate_user(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (commit, target) = (
        meta.commit(Some(auth.id), user_reply),
        UserId(path.into_inner()),
    );
    let user = accounts::set_active(&state.db, &commit, &auth, target, true).await?;
    Ok(commit.reply(&user)?.into())
}
