//! `POST /webhooks/payments/{gateway}`: what the payment gateway says
//! happened. Verified (signature, timestamp) before anything is read; a
//! refused one is 400 and an audit row `webhook.rejected`, nothing else.
//! Each event is processed once: a redelivery is answered 200 and changes
//! nothing.

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde_json::json;

use crate::domain::audit::{Action, AuditRecord, ObjectType};
use crate::error::ApiError;
use crate::http::request_meta::RequestMeta;
use crate::services::audit as trail;
use crate::state::AppState;

pub async fn receive_payment_webhook(
    state: web::Data<AppState>,
    meta: RequestMeta,
    req: HttpRequest,
    path: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let gateway = state.payments.as_ref();
    if path.into_inner() != gateway.kind().as_str() {
        return Err(ApiError::NotFound("payment gateway"));
    }
    let actor = meta.actor(None);
    let signature = req
        .headers()
        .get(gateway.signature_header())
        .and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    let event = match gateway.parse_webhook(signature, &body, now) {
        Ok(event) => event,
        Err(refused) => {
            let record = AuditRecord::new(Action::WebhookRejected, ObjectType::Webhook, None)
                .with(json!({"gateway": gateway.kind().as_str(), "reason": refused.code()}));
            trail::record_alone(&state.db, &actor, vec![record]).await?;
            return Err(ApiError::BadRequest {
                code: refused.code(),
                message: format!("webhook refused: {refused}"),
                details: None,
            });
        }
    };
    // A verified event Roost does not act on is acknowledged, so the
    // gateway stops sending it.
    if let Some(event) = event {
        state.settlement().settle(&actor, event).await?;
    }
    Ok(HttpResponse::Ok().json(json!({"received": true})))
}
