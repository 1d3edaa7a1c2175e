//! `Idempotency-Key` on a GraphQL mutation, as on REST's changes (see
//! `http::idempotency`): a retry gets the first answer byte for byte, with
//! `Idempotent-Replayed: true`, and changes nothing again.
//!
//! A keyed request runs one mutation field, so that its one change and its
//! one answer go together. The key is claimed before the mutation runs.
//! The change's transaction stores a provisional answer under it, and the
//! request's GraphQL response replaces that answer once it is rendered
//! (GraphQL resolves the answer's fields after the change has committed).
//! A retry meanwhile is told the key is in progress. If the first request
//! died between its commit and its answer, a retry gets the provisional
//! answer, `idempotency_answer_lost`: the change was made, and it is not
//! made again.
//!
//! What is kept matches REST: a change made, or a refusal that ran (a 403,
//! 404, 409 or 422 in `extensions.status`). Anything refused before it ran
//! (bad input, no sign-in, an invalid query) gives the key back.

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse};
use async_graphql::parser::types::{OperationType, Selection};

use super::types::fail;
use crate::auth::AuthUser;
use crate::commit::{IdempotencyClaim, Reply};
use crate::error::ApiError;
use crate::http::idempotency::{self, Presented};
use crate::state::AppState;

/// What the key of a request made of it.
pub enum Keyed {
    /// No key, or not a mutation: the request runs as it is.
    No,
    /// The request runs under this claim.
    Run(IdempotencyClaim),
    /// The request's answer, without running it: a refusal or a replay.
    Answered(HttpResponse),
}

/// Presents the request's key, if it has one and runs a mutation.
pub async fn present(
    req: &HttpRequest,
    state: &AppState,
    user: Option<&AuthUser>,
    request: &mut async_graphql::Request,
) -> Keyed {
    let Some(raw) = req.headers().get(idempotency::IDEMPOTENCY_KEY) else {
        return Keyed::No;
    };
    let fields = match mutation_fields(request) {
        None => return Keyed::No,
        Some(fields) => fields,
    };
    match claim(req, state, user, request, raw, fields).await {
        Ok(Presented::Won(claim)) => Keyed::Run(claim),
        Ok(Presented::Replay(reply)) => Keyed::Answered(idempotency::replayed(json(reply.body))),
        Err(refusal) => Keyed::Answered(match refusal_body(refusal) {
            Ok(body) => json(body),
            Err(e) => HttpResponse::from_error(e),
        }),
    }
}

async fn claim(
    req: &HttpRequest,
    state: &AppState,
    user: Option<&AuthUser>,
    request: &async_graphql::Request,
    raw: &HeaderValue,
    fields: usize,
) -> Result<Presented, ApiError> {
    let key = idempotency::parse_key(raw)?;
    if fields != 1 {
        return Err(ApiError::BadRequest {
            code: "idempotency_key_one_mutation",
            message: "a request with an Idempotency-Key runs exactly one mutation field".into(),
            details: None,
        });
    }
    // The request as the client sent it: its query, operation name,
    // variables and extensions.
    let body = serde_json::to_vec(request).map_err(|e| ApiError::Internal(e.into()))?;
    let scope = idempotency::scope(state, req, user);
    let path = req.path().to_owned();
    idempotency::present(state, &key, scope, ("POST", &path, &body), true).await
}

/// After the request ran under `claim`: its answer kept, or the key given
/// back (unless its change committed, when the answer is kept all the same).
pub async fn finish(
    state: &AppState,
    claim: IdempotencyClaim,
    response: &async_graphql::Response,
) -> HttpResponse {
    let body = match serde_json::to_vec(response) {
        Ok(body) => body,
        Err(e) => {
            idempotency::release(state, &claim).await;
            return HttpResponse::from_error(ApiError::Internal(e.into()));
        }
    };
    let reply = Reply {
        status: 200,
        body: body.clone(),
    };
    if executed(response) || !idempotency::release(state, &claim).await {
        idempotency::keep(state, claim, reply).await;
    }
    json(body)
}

/// The provisional answer a change's transaction stores under its key: what
/// a retry gets if the request died before it could store its own.
pub fn lost_answer() -> Result<Reply, ApiError> {
    refusal_body(ApiError::Conflict {
        code: "idempotency_answer_lost",
        message: "the change this Idempotency-Key made was committed, but its answer was \
                  lost; read the object to see it, and do not retry it with a new key",
    })
    .map(|body| Reply { status: 200, body })
}

/// A GraphQL answer with `e` as its one error.
fn refusal_body(e: ApiError) -> Result<Vec<u8>, ApiError> {
    let error = fail(e).into_server_error(async_graphql::Pos::default());
    serde_json::to_vec(&async_graphql::Response::from_errors(vec![error]))
        .map_err(|e| ApiError::Internal(e.into()))
}

/// A GraphQL answer's bytes, as async-graphql's own responder sends them.
fn json(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/graphql-response+json")
        .body(body)
}

/// Did the mutation run: did it answer with data, or with a refusal REST
/// keeps (403, 404, 409, 422)?
fn executed(response: &async_graphql::Response) -> bool {
    let Some(error) = response.errors.first() else {
        return true;
    };
    if let async_graphql::Value::Object(fields) = &response.data
        && fields.values().any(|v| *v != async_graphql::Value::Null)
    {
        return true;
    }
    let status = error
        .extensions
        .as_ref()
        .and_then(|e| e.get("status"))
        .and_then(|s| match s {
            async_graphql::Value::Number(n) => n.as_u64(),
            _ => None,
        })
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok());
    status.is_some_and(idempotency::executed)
}

/// How many fields the request's mutation selects at its top, or None if
/// it runs no mutation. (A request that does not parse is left to the
/// schema to refuse.) A fragment at the top counts as more than one.
fn mutation_fields(request: &mut async_graphql::Request) -> Option<usize> {
    let operation = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    let mut chosen = document
        .operations
        .iter()
        .filter(|(name, _)| match (&operation, name) {
            (Some(wanted), Some(name)) => wanted == name.as_str(),
            _ => true,
        });
    let (_, op) = chosen.find(|(_, op)| op.node.ty == OperationType::Mutation)?;
    let items = &op.node.selection_set.node.items;
    let fragments = items
        .iter()
        .any(|item| !matches!(item.node, Selection::Field(_)));
    Some(if fragments { usize::MAX } else { items.len() })
}
