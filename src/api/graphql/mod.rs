//! GraphQL at `/graphql`, over the same services (and the same parsing) as
//! REST, so each rule lives in one place. Errors carry REST's stable code
//! in `extensions.code` (and its field errors in `extensions.details`).
//!
//! Limits, so that one query cannot take the server down: depth at most
//! [`MAX_DEPTH`], complexity at most [`MAX_COMPLEXITY`] (each field 1; a
//! list of `first` items costs `first` × its items' fields). A query over
//! either is refused before it runs (`query_too_deep`, `query_too_complex`).
//!
//! Subscriptions are served over a websocket at `GET /graphql/ws`
//! (`socket.rs`, `live.rs`), and a browser's `GET /graphql` gets the
//! explorer page. The schema's SDL is served at `GET /graphql/schema.graphql`;
//! the copy in `src/api/graphql/schema.graphql` is checked against it by a
//! test.

mod keyed;
mod live;
mod loaders;
mod pricing;
mod socket;
mod types;

use actix_web::{HttpRequest, HttpResponse, Responder, web};
use async_graphql::Schema;
use async_graphql_actix_web::{GraphQLRequest, GraphQLResponse};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::http::request_meta::RequestMeta;
use crate::state::AppState;

pub use live::SubscriptionRoot;
pub use types::{Mutation, Query};

pub type RoostSchema = Schema<Query, Mutation, SubscriptionRoot>;

/// The deepest a query may nest.
pub const MAX_DEPTH: usize = 10;
/// The most a query may cost.
pub const MAX_COMPLEXITY: usize = 2_000;

/// The schema, with no state: what `schema.graphql` describes.
pub fn schema() -> RoostSchema {
    Schema::build(Query, Mutation, SubscriptionRoot)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// The schema serving `state`.
pub fn serving(state: web::Data<AppState>) -> RoostSchema {
    Schema::build(Query, Mutation, SubscriptionRoot)
        .data(state)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// The signed-in user of this request, if any.
pub struct Viewer(pub Option<AuthUser>);

/// `POST /graphql`. A missing, expired or revoked token leaves the request
/// signed out: fields that need a user then fail with `unauthorized`. A
/// mutation may carry an `Idempotency-Key` (`keyed.rs`).
pub async fn execute(
    req: HttpRequest,
    schema: web::Data<RoostSchema>,
    state: web::Data<AppState>,
    mut meta: RequestMeta,
    auth: Result<AuthUser, ApiError>,
    request: GraphQLRequest,
) -> HttpResponse {
    let mut request = request.into_inner();
    let user = auth.ok();
    let claim = match keyed::over_http(&req, &state, user.as_ref(), &mut request).await {
        Ok(claim) => claim,
        Err(answer) => return answer,
    };
    meta.idempotency = claim.clone();
    let (users, listings) = loaders::for_request(&state);
    let request = request
        .data(Viewer(user))
        .data(meta)
        .data(users)
        .data(listings);
    let response = coded(schema.execute(request).await);
    match claim {
        Some(claim) => keyed::finish(&state, claim, &response).await,
        None => GraphQLResponse::from(response).respond_to(&req),
    }
}

/// Puts a stable code on the errors async-graphql raises itself (a query
/// that does not parse or validate, over a limit, with bad variables);
/// ours carry REST's already.
fn coded(mut response: async_graphql::Response) -> async_graphql::Response {
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        if !has_code {
            let code = if error.message.contains("nested too deep") {
                "query_too_deep"
            } else if error.message.contains("too complex") {
                "query_too_complex"
            } else {
                "invalid_query"
            };
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", code);
        }
    }
    response
}

/// The schema as the websocket runs it: every answer [`coded`], as over
/// HTTP, and a mutation under its `extensions.idempotencyKey` as over HTTP
/// under its header (`keyed.rs`).
#[derive(Clone)]
pub struct Coded {
    pub schema: RoostSchema,
    pub state: web::Data<AppState>,
}

impl async_graphql::Executor for Coded {
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        coded(self.schema.execute(request).await)
    }

    fn execute_stream(
        &self,
        mut request: async_graphql::Request,
        session_data: Option<std::sync::Arc<async_graphql::Data>>,
    ) -> futures_util::stream::BoxStream<'static, async_graphql::Response> {
        use futures_util::StreamExt;
        use futures_util::stream::{self, BoxStream};
        let data = session_data.unwrap_or_default();
        if !request.extensions.contains_key(keyed::EXTENSION) {
            return self
                .schema
                .execute_stream_with_session_data(request, data)
                .map(coded)
                .boxed();
        }
        let (schema, state) = (self.schema.clone(), self.state.clone());
        let keyed = async move {
            // What the connection's session knows: who, and from where.
            let user = session::<Viewer>(&data).and_then(|v| v.0.clone());
            let meta = session::<RequestMeta>(&data).cloned().unwrap_or_default();
            let claim =
                keyed::over_socket(&state, user.as_ref(), meta.ip.as_deref(), &mut request).await;
            let answers = |request| -> BoxStream<'static, async_graphql::Response> {
                schema
                    .execute_stream_with_session_data(request, data)
                    .map(coded)
                    .boxed()
            };
            match claim {
                Err(answer) => stream::once(async { answer }).boxed(),
                Ok(None) => answers(request),
                Ok(Some(claim)) => {
                    let meta = RequestMeta {
                        idempotency: Some(claim.clone()),
                        ..meta
                    };
                    // A mutation: one answer.
                    let answer = answers(request.data(meta)).next().await;
                    let answer = keyed::finish_on_socket(&state, claim, answer).await;
                    stream::once(async { answer }).boxed()
                }
            }
        };
        stream::once(keyed).flatten().boxed()
    }
}

/// A value the connection's session holds.
fn session<T: std::any::Any>(data: &async_graphql::Data) -> Option<&T> {
    data.get(&std::any::TypeId::of::<T>())
        .and_then(|v| v.downcast_ref())
}

/// `GET /graphql`: the explorer (query and variables editors, the schema
/// browsable from introspection), a page of our own in the binary. Its
/// Content-Security-Policy lets it load nothing from anywhere else.
pub async fn explorer() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; base-uri 'none'; form-action 'none'",
        ))
        .body(include_str!("explorer.html"))
}

/// `GET /graphql/schema.graphql`: the SDL.
pub async fn sdl(schema: web::Data<RoostSchema>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(schema.sdl())
}

pub fn routes(cfg: &mut web::ServiceConfig, cors: &crate::config::CorsOrigins) {
    cfg.service(
        web::scope("/graphql")
            .wrap(actix_web::middleware::from_fn(
                crate::http::rate_limit::api_limit,
            ))
            .wrap(crate::http::cors::cors(cors))
            .route("", web::post().to(execute))
            .route("", web::get().to(explorer))
            .route("/schema.graphql", web::get().to(sdl))
            .route("/ws", web::get().to(socket::connect)),
    );
}
