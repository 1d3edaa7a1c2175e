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

#[utoipa::path(
    post,
    path = "/webhooks/payments/{gateway}",
    tag = "payments",
    params(("gateway" = String, Path, description = "The gateway in use (`sandbox` or `stripe`)")),
    request_body(content = Object, description = "The gateway's event, signed in its signature header (`Roost-Signature` for the sandbox, `Stripe-Signature` for Stripe)", content_type = "application/json"),
    responses(
        (status = 200, description = "Verified, and processed once (a redelivery changes nothing)", body = Received),
        (status = 400, description = "Refused: a bad signature or a stale timestamp (`signature_missing`, `signature_malformed`, `signature_stale`, `signature_mismatch`, `webhook_unparsable`); audited", body = crate::error::Envelope),
        (status = 404, description = "Not the gateway in use", body = crate::error::Envelope),
    )
)]
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
    Ok(HttpResponse::Ok().json(Received { received: true }))
}

/// A webhook's acknowledgement: the gateway stops sending it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Received {
    received: bool,
}
