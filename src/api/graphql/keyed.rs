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
//!
//! Over `/graphql/ws`, which has no headers for each operation, the key is
//! the `subscribe` payload's `extensions.idempotencyKey`, and a replayed
//! answer carries `extensions.idempotentReplayed: true`. Both transports
//! share one key space: a request is bound to its query, operation name,
//! variables and extensions (the key itself left out), whichever way it
//! came, so a mutation sent over the socket and retried over HTTP, or the
//! other way round, is replayed.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use async_graphql::parser::types::{OperationType, Selection};
use serde::Serialize;

use super::types::fail;
use crate::auth::AuthUser;
use crate::commit::{IdempotencyClaim, Reply};
use crate::error::ApiError;
use crate::http::idempotency::{self, Presented};
use crate::state::AppState;

/// Where a request over `/graphql/ws` puts its key.
pub const EXTENSION: &str = "idempotencyKey";
/// How an answer over `/graphql/ws` says it is a replay.
const REPLAYED: &str = "idempotentReplayed";
/// The path a keyed request is bound to, whichever way it came.
const PATH: &str = "/graphql";

/// What the key of a request made of it.
enum Keyed {
    /// No key, or not a mutation: the request runs as it is.
    No,
    /// The request runs under this claim.
    Run(IdempotencyClaim),
    /// Refused before it ran.
    Refused(ApiError),
    /// The first request with the key finished: its answer, again.
    Replay(Reply),
}

/// A key as the request sent it (refused if it is no string).
type Raw = Result<Vec<u8>, ApiError>;

/// `POST /graphql`: presents the request's `Idempotency-Key`, if it has
/// one and runs a mutation. `Err` is the answer, without running it: a
/// refusal or a replay.
pub async fn over_http(
    req: &HttpRequest,
    state: &AppState,
    user: Option<&AuthUser>,
    request: &mut async_graphql::Request,
) -> Result<Option<IdempotencyClaim>, HttpResponse> {
    let raw = req
        .headers()
        .get(idempotency::IDEMPOTENCY_KEY)
        .map(|v| Ok(v.as_bytes().to_vec()));
    let scope = || idempotency::scope(state, req, user);
    match present(state, raw, scope, request).await {
        Keyed::No => Ok(None),
        Keyed::Run(claim) => Ok(Some(claim)),
        Keyed::Refused(refusal) => Err(match refusal_body(refusal) {
            Ok(body) => json(body),
            Err(e) => HttpResponse::from_error(e),
        }),
        Keyed::Replay(reply) => Err(idempotency::replayed(json(reply.body))),
    }
}

/// `/graphql/ws`: presents the operation's `extensions.idempotencyKey`, if
/// it has one and runs a mutation, for `user` connected from `ip`. `Err` is
/// the answer, without running it: a refusal or a replay.
pub async fn over_socket(
    state: &AppState,
    user: Option<&AuthUser>,
    ip: Option<&str>,
    request: &mut async_graphql::Request,
) -> Result<Option<IdempotencyClaim>, async_graphql::Response> {
    let raw = request.extensions.remove(EXTENSION).map(|key| match key {
        async_graphql::Value::String(key) => Ok(key.into_bytes()),
        _ => Err(ApiError::BadRequest {
            code: "invalid_idempotency_key",
            message: format!("extensions.{EXTENSION} is a string"),
            details: None,
        }),
    });
    let scope = || idempotency::scope_of(user, ip);
    match present(state, raw, scope, request).await {
        Keyed::No => Ok(None),
        Keyed::Run(claim) => Ok(Some(claim)),
        Keyed::Refused(refusal) => Err(refused(refusal)),
        Keyed::Replay(reply) => {
            let first = serde_json::from_slice::<async_graphql::Response>(&reply.body);
            Err(match first {
                Ok(mut answer) => {
                    answer.extensions.insert(REPLAYED.into(), true.into());
                    answer
                }
                Err(e) => refused(ApiError::Internal(e.into())),
            })
        }
    }
}

async fn present(
    state: &AppState,
    raw: Option<Raw>,
    scope: impl FnOnce() -> String,
    request: &mut async_graphql::Request,
) -> Keyed {
    let Some(raw) = raw else {
        return Keyed::No;
    };
    let fields = match mutation_fields(request) {
        None => return Keyed::No,
        Some(fields) => fields,
    };
    match claim(state, raw, scope(), request, fields).await {
        Ok(Presented::Won(claim)) => Keyed::Run(claim),
        Ok(Presented::Replay(reply)) => Keyed::Replay(reply),
        Err(refusal) => Keyed::Refused(refusal),
    }
}

async fn claim(
    state: &AppState,
    raw: Raw,
    scope: String,
    request: &async_graphql::Request,
    fields: usize,
) -> Result<Presented, ApiError> {
    let key = idempotency::parse_key(&raw?)?;
    if fields != 1 {
        return Err(ApiError::BadRequest {
            code: "idempotency_key_one_mutation",
            message: "a request with an Idempotency-Key runs exactly one mutation field".into(),
            details: None,
        });
    }
    let body = bound(request)?;
    idempotency::present(state, &key, scope, ("POST", PATH, &body), true).await
}

/// What a key is bound to: the request as `POST /graphql`'s body would
/// carry it (query, operation name, variables, extensions), its extensions
/// in the order of their names, so that one request is always the same
/// bytes.
fn bound(request: &async_graphql::Request) -> Result<Vec<u8>, ApiError> {
    #[derive(Serialize)]
    struct Bound<'a> {
        query: &'a str,
        #[serde(rename = "operationName")]
        operation_name: &'a Option<String>,
        variables: &'a async_graphql::Variables,
        extensions: BTreeMap<&'a String, &'a async_graphql::Value>,
    }
    let bound = Bound {
        query: &request.query,
        operation_name: &request.operation_name,
        variables: &request.variables,
        extensions: request
            .extensions
            .iter()
            .filter(|(name, _)| name.as_str() != EXTENSION)
            .collect(),
    };
    serde_json::to_vec(&bound).map_err(|e| ApiError::Internal(e.into()))
}

/// After the request ran under `claim`: its answer kept, or the key given
/// back (unless its change committed, when the answer is kept all the
/// same). The answer's bytes.
async fn settle(
    state: &AppState,
    claim: IdempotencyClaim,
    response: &async_graphql::Response,
) -> Result<Vec<u8>, ApiError> {
    let body = match serde_json::to_vec(response) {
        Ok(body) => body,
        Err(e) => {
            idempotency::release(state, &claim).await;
            return Err(ApiError::Internal(e.into()));
        }
    };
    let reply = Reply {
        status: 200,
        body: body.clone(),
    };
    if executed(response) || !idempotency::release(state, &claim).await {
        idempotency::keep(state, claim, reply).await;
    }
    Ok(body)
}

/// [`settle`] over HTTP: the answer.
pub async fn finish(
    state: &AppState,
    claim: IdempotencyClaim,
    response: &async_graphql::Response,
) -> HttpResponse {
    match settle(state, claim, response).await {
        Ok(body) => json(body),
        Err(e) => HttpResponse::from_error(e),
    }
}

/// [`settle`] over the socket: the answer (none came: a 500).
pub async fn finish_on_socket(
    state: &AppState,
    claim: IdempotencyClaim,
    response: Option<async_graphql::Response>,
) -> async_graphql::Response {
    let response = response.unwrap_or_else(|| {
        refused(ApiError::Internal(anyhow::anyhow!(
            "a mutation over the socket gave no answer"
        )))
    });
    match settle(state, claim, &response).await {
        Ok(_) => response,
        Err(e) => refused(e),
    }
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
fn refused(e: ApiError) -> async_graphql::Response {
    let error = fail(e).into_server_error(async_graphql::Pos::default());
    async_graphql::Response::from_errors(vec![error])
}

/// [`refused`]'s bytes.
fn refusal_body(e: ApiError) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(&refused(e)).map_err(|e| ApiError::Internal(e.into()))
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
