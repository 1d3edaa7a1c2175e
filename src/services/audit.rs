//! The audit trail: refusals recorded on their own, and the trail read back
//! (admins only). Changes record themselves inside their own transactions.

use crate::auth::AuthUser;
use crate::db::audit::{self, AuditFilter, AuditRow};
use crate::db::{Db, now};
use crate::domain::audit::{AuditActor, AuditRecord, ObjectType};
use crate::error::ApiError;

/// Writes `records` in a transaction of their own (what changed nothing
/// else: a failed sign-in, a refusal).
pub async fn record_alone(
    db: &Db,
    actor: &AuditActor,
    records: Vec<AuditRecord>,
) -> Result<(), ApiError> {
    let actor = actor.clone();
    db.run(move |mut conn| async move {
        Ok(audit::record(&mut conn, &actor, &records, now().naive_utc()).await?)
    })
    .await
}

/// Records that `actor` was refused `attempted` on an object, and returns
/// `refusal` (or, if the row could not be written, why not).
pub async fn denied(
    db: &Db,
    actor: &AuditActor,
    object_type: ObjectType,
    object_id: Option<i64>,
    attempted: &str,
    refusal: ApiError,
) -> ApiError {
    let record = AuditRecord::denied(object_type, object_id, attempted);
    match record_alone(db, actor, vec![record]).await {
        Ok(()) => refusal,
        Err(e) => e,
    }
}

/// 403 (recorded) unless `auth` is an admin: for whole admin-only endpoints.
pub async fn require_admin(
    db: &Db,
    auth: &AuthUser,
    actor: &AuditActor,
    attempted: &str,
) -> Result<(), ApiError> {
    match auth.require_admin() {
        Ok(()) => Ok(()),
        Err(refusal) => {
            Err(denied(db, actor, ObjectType::Endpoint, None, attempted, refusal).await)
        }
    }
}

/// One page of the trail, newest first (admins only).
pub async fn list(
    db: &Db,
    auth: &AuthUser,
    actor: &AuditActor,
    filter: AuditFilter,
) -> Result<Vec<AuditRow>, ApiError> {
    require_admin(db, auth, actor, "audit.read").await?;
    read(db, filter).await
}

/// One page of the trail, for whoever may read it (the CLI, an admin).
pub async fn read(db: &Db, filter: AuditFilter) -> Result<Vec<AuditRow>, ApiError> {
    db.run(move |mut conn| async move { Ok(audit::list(&mut conn, &filter).await?) })
        .await
}
