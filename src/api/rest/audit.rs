//! `GET /api/v1/audit`: the audit trail, newest first, for admins.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::pagination::{PageQuery, page};
use crate::auth::AuthUser;
use crate::db::audit::{AuditFilter, AuditRow};
use crate::domain::audit::{Action, ObjectType, parse_since};
use crate::domain::{FieldError, FieldErrors};
use crate::error::ApiError;
use crate::http::request_meta::RequestMeta;
use crate::services::audit;
use crate::state::AppState;

/// One row of the trail as clients (and `roost audit`) see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditEntryResponse {
    pub id: i64,
    pub actor_id: Option<i64>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub object_type: String,
    pub object_id: Option<i64>,
    pub details: Value,
    pub created_at: DateTime<Utc>,
}

impl From<AuditRow> for AuditEntryResponse {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            actor_id: r.actor_id,
            ip: r.ip,
            request_id: r.request_id,
            action: r.action,
            object_type: r.object_type,
            object_id: r.object_id,
            // Written by Roost as JSON; shown as text if it ever is not.
            details: serde_json::from_str(&r.details).unwrap_or(Value::String(r.details)),
            created_at: r.created_at.and_utc(),
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    actor_id: Option<i64>,
    action: Option<String>,
    object_type: Option<String>,
    object_id: Option<i64>,
    since: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

impl AuditQuery {
    fn parse(&self) -> Result<AuditFilter, ApiError> {
        let mut errors = FieldErrors::new();
        let page = PageQuery {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
        .parse();
        let action = self.action.as_deref().and_then(|a| {
            let known = Action::parse(a).map(|a| a.as_str().to_owned());
            if known.is_none() {
                errors.push(FieldError::new(
                    "action",
                    "unknown_action",
                    format!("no action is named {a:?}"),
                ));
            }
            known
        });
        let object_type = self.object_type.as_deref().and_then(|t| {
            let known = ObjectType::parse(t).map(|t| t.as_str().to_owned());
            if known.is_none() {
                errors.push(FieldError::new(
                    "object_type",
                    "unknown_object_type",
                    format!("no object type is named {t:?}"),
                ));
            }
            known
        });
        let since = self
            .since
            .as_deref()
            .and_then(|s| errors.check("since", parse_since(s)));
        let page = match page {
            Ok(page) => Some(page),
            Err(ApiError::Validation(more)) => {
                more.into_iter().for_each(|e| errors.push(e));
                None
            }
            Err(e) => return Err(e),
        };
        match page {
            Some(page) if errors.is_empty() => Ok(AuditFilter {
                actor_id: self.actor_id,
                action,
                object_type,
                object_id: self.object_id,
                since,
                before_id: Some(page.before_id()),
                limit: page.limit,
            }),
            _ => Err(ApiError::Validation(errors.into_vec())),
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Audit rows, newest first", body = super::pagination::Page<AuditEntryResponse>),
        (status = 403, description = "Admins only", body = crate::error::Envelope),
    )
)]
pub async fn list_audit(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let actor = meta.actor(Some(auth.id));
    // Who may read it is settled before what the query says.
    audit::require_admin(&state.db, &auth, &actor, "audit.read").await?;
    let filter = query.parse()?;
    let limit = filter.limit;
    let rows = audit::read(&state.db, filter).await?;
    Ok(HttpResponse::Ok().json(page(rows, limit, |r| r.id, AuditEntryResponse::from)))
}
