//! `Idempotency-Key` on every state-changing request under `/api/v1`
//! (POST, PUT, PATCH, DELETE). The key is claimed in a write of its own,
//! committed before the handler runs, so every node sees at once that it is
//! taken: a second request with it gets 409 `idempotency_in_progress`
//! while the first runs, 422 `idempotency_key_reused` if its method, path
//! or body differ, and, once the first finished, the first's response,
//! byte for byte, with `Idempotent-Replayed: true`.
//!
//! Keys belong to the signed-in user, or to the client's address when
//! signed out. A change stores its response in its own transaction
//! (`Commit::seal`), so no crash leaves a committed change whose retry runs
//! again. An answer that executed without changing anything (403, 404, 409,
//! 422) is stored here after the handler; one refused before it ran (400,
//! 401, 413, 415, 429, a 5xx) gives the key back, and a retry runs afresh.

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::JSON_LIMIT;
use super::client_ip::client_ip;
use crate::auth::AuthUser;
use crate::auth::extractor::bearer;
use crate::commit::{IdempotencyClaim, Reply, in_progress};
use crate::db::idempotency::{self, Claim, Claiming};
use crate::domain::idempotency::IdempotencyKey;
use crate::error::ApiError;
use crate::state::AppState;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// How long a first request may run before another node may take its key
/// over (it is then taken to have died, its work rolled back).
const LEASE: Duration = Duration::from_secs(60);

pub fn changes_state(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Answers that executed: stored, and replayed to a retry.
pub fn executed(status: StatusCode) -> bool {
    status.is_success()
        || matches!(
            status,
            StatusCode::FORBIDDEN
                | StatusCode::NOT_FOUND
                | StatusCode::CONFLICT
                | StatusCode::UNPROCESSABLE_ENTITY
        )
}

/// For a route that needs a signed-in user: a request with no bearer token
/// is the handler's to refuse (401) before any key is read or claimed.
pub async fn idempotency_signed_in(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if bearer(req.request()).is_none() {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    idempotency(req, next).await
}

pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let raw = req.headers().get(&IDEMPOTENCY_KEY).cloned();
    let (Some(raw), true) = (raw, changes_state(req.method())) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let key = match parse_key(raw.as_bytes()) {
        Ok(key) => key,
        Err(refusal) => return Ok(req.error_response(refusal)),
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };

    // Whose key it is.
    let user = match bearer(req.request()) {
        Some(token) => match AuthUser::from_token(&state, &token).await {
            Ok(user) => {
                req.extensions_mut().insert(user.clone());
                Some(user)
            }
            // A bad token: the handler answers 401, which keeps nothing.
            Err(ApiError::Unauthorized) => return Ok(next.call(req).await?.map_into_boxed_body()),
            Err(e) => return Ok(req.error_response(e)),
        },
        None => None,
    };
    let scope = scope(&state, req.request(), user.as_ref());

    // What the request says: method, path and query, body.
    let body = match read_body(&mut req).await {
        Ok(body) => body,
        Err(refusal) => return Ok(req.error_response(refusal)),
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
    let request = (req.method().as_str(), path.as_str(), &body[..]);
    let presented = present(&state, &key, scope, request, false).await;
    req.set_payload(body.into());
    match presented {
        Err(e) => Ok(req.error_response(e)),
        Ok(Presented::Replay(reply)) => Ok(req.into_response(replayed(reply.into()))),
        Ok(Presented::Won(claim)) => {
            req.extensions_mut().insert(claim.clone());
            match next.call(req).await {
                Ok(res) => finish(&state, claim, res).await,
                Err(e) => {
                    release(&state, &claim).await;
                    Err(e)
                }
            }
        }
    }
}

/// A key as sent, or 400 `invalid_idempotency_key`.
pub fn parse_key(raw: &[u8]) -> Result<IdempotencyKey, ApiError> {
    IdempotencyKey::parse(raw).map_err(|e| ApiError::BadRequest {
        code: "invalid_idempotency_key",
        message: e.message,
        details: None,
    })
}

/// Whose a key is: the signed-in `user`'s, or else the client address's.
pub fn scope(state: &AppState, req: &HttpRequest, user: Option<&AuthUser>) -> String {
    let ip = match user {
        Some(_) => None,
        None => client_ip(req, &state.settings.trusted_proxies).map(|ip| ip.to_string()),
    };
    scope_of(user, ip.as_deref())
}

/// [`scope`] of a request by `user` from `ip` (as `client_ip` sees it).
pub fn scope_of(user: Option<&AuthUser>, ip: Option<&str>) -> String {
    match user {
        Some(user) => format!("user:{}", user.id.0),
        None => format!("ip:{}", ip.unwrap_or_default()),
    }
}

/// What presenting a key found, when it was not refused.
pub enum Presented {
    /// The key is this request's: it runs under this claim.
    Won(IdempotencyClaim),
    /// The first request with the key finished: its answer, to send again.
    Replay(Reply),
}

/// Claims `key` in `scope` for `(method, path, body)`, in a write of its
/// own committed before anything runs, so every node sees at once that it
/// is taken. Refused: 422 `idempotency_key_reused` (first used for another
/// request), 409 `idempotency_in_progress` (the first still runs).
/// `provisional`: see [`IdempotencyClaim::provisional`].
pub async fn present(
    state: &AppState,
    key: &IdempotencyKey,
    scope: String,
    (method, path, body): (&str, &str, &[u8]),
    provisional: bool,
) -> Result<Presented, ApiError> {
    let secrets = key.secrets(&scope);
    let fingerprint = secrets.fingerprint(method, path, body);
    let claim = uuid::Uuid::new_v4().to_string();
    let key_hash = key.hash();
    let ttl = chrono::Duration::from_std(state.settings.idempotency_ttl)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let lease = chrono::Duration::from_std(LEASE).map_err(|e| ApiError::Internal(e.into()))?;
    let now = crate::db::now().naive_utc();
    let claiming = Claiming {
        scope: scope.clone(),
        key_hash: key_hash.clone(),
        fingerprint,
        claim: claim.clone(),
        now,
        lease_until: now + lease,
        expires_at: now + ttl,
    };
    // A key never seen (the usual case): one statement, committed alone.
    let fresh = {
        let claiming = claiming.clone();
        state
            .db
            .write_alone(move |c| {
                Box::pin(
                    async move { Ok::<_, ApiError>(idempotency::claim_fresh(c, &claiming).await?) },
                )
            })
            .await?
    };
    let found = if fresh {
        Claim::Won(claim.clone())
    } else {
        state
            .db
            .write(move |tx| {
                Box::pin(async move { Ok::<_, ApiError>(idempotency::claim(tx, &claiming).await?) })
            })
            .await?
    };
    match found {
        Claim::Reused => Err(ApiError::Unprocessable {
            code: "idempotency_key_reused",
            message: "this Idempotency-Key was used with another method, path or body".into(),
        }),
        Claim::Running => Err(in_progress()),
        Claim::Done { status, sealed } => match secrets.open(status, &sealed) {
            Some(body) => Ok(Presented::Replay(Reply { status, body })),
            None => Err(ApiError::Internal(anyhow::anyhow!(
                "a stored response did not open under its key"
            ))),
        },
        Claim::Won(claim) => Ok(Presented::Won(IdempotencyClaim {
            scope,
            key_hash,
            claim,
            secrets,
            provisional,
            kept: Default::default(),
        })),
    }
}

/// `response`, marked as a replay.
pub fn replayed(mut response: HttpResponse) -> HttpResponse {
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// The body, whole (it is also what the handler reads, put back), or 413
/// past the largest body any endpoint takes.
async fn read_body(req: &mut ServiceRequest) -> Result<Bytes, ApiError> {
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest {
            code: "invalid_body",
            message: format!("the request body could not be read: {e}"),
            details: None,
        })?;
        if body.len() + chunk.len() > JSON_LIMIT {
            return Err(ApiError::PayloadTooLarge { limit: JSON_LIMIT });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// After the handler: an answer that executed is kept (if the change's own
/// transaction did not keep it already); any other gives the key back.
async fn finish(
    state: &AppState,
    claim: IdempotencyClaim,
    res: ServiceResponse<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !executed(res.status()) {
        release(state, &claim).await;
        return Ok(res.map_into_boxed_body());
    }
    let (req, response) = res.into_parts();
    let (head, body) = response.into_parts();
    let bytes = actix_web::body::to_bytes(body)
        .await
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("a response body could not be read")))?;
    let reply = Reply {
        status: head.status().as_u16(),
        body: bytes.to_vec(),
    };
    keep(state, claim, reply).await;
    let response = head.set_body(bytes).map_into_boxed_body();
    Ok(ServiceResponse::new(req, response))
}

/// Keeps `reply` as the answer of the request holding `claim`, unless the
/// change's own transaction kept its final answer already. (When the
/// change says so, with no statement; otherwise the store finds the claim
/// ended and changes nothing.)
pub async fn keep(state: &AppState, claim: IdempotencyClaim, reply: Reply) {
    if claim.is_kept() {
        return;
    }
    let stored = state
        .db
        .run(move |mut conn| async move { claim.store(&mut conn, &reply).await })
        .await;
    if let Err(e) = stored {
        // The key stays claimed until its lease ends; then a retry runs
        // again (or, if its change committed, gets the provisional answer
        // stored with it): nothing was kept of this answer.
        tracing::warn!(error = %e, "an idempotent response could not be stored");
    }
}

/// Gives the key back; false if it was not given back (a provisional
/// answer is stored under it: its change committed).
pub async fn release(state: &AppState, claim: &IdempotencyClaim) -> bool {
    let claim = claim.clone();
    let released = state
        .db
        .run(move |mut conn| async move {
            let (s, k, c) = (&claim.scope, &claim.key_hash, &claim.claim);
            Ok::<_, ApiError>(idempotency::release(&mut conn, s, k, c).await?)
        })
        .await;
    match released {
        Ok(released) => released,
        Err(e) => {
            tracing::warn!(error = %e, "an Idempotency-Key could not be given back; it frees when its lease ends");
            false
        }
    }
}
