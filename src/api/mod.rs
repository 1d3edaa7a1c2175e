//! The API surface. REST lives under `/api/v1`, described by OpenAPI at
//! `/api/openapi.json` with its docs page at `/api/docs/`; operations
//! endpoints at the root; live calendars at `/ws` (websocket) and `/` (the
//! page); the payment gateway's webhooks at `/webhooks/payments/{gateway}`;
//! GraphQL at `/graphql`.

pub mod graphql;
pub mod rest;
pub mod webhooks;
pub mod ws;

use actix_web::web;

/// The routes OpenAPI does not describe, as `(method, path)`: pages, the
/// description itself, websockets and GraphQL (described by its own SDL).
/// Every other route is registered from the spec (`rest::routes`).
pub const UNDOCUMENTED: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/ws"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/docs"),
    ("GET", "/api/docs/{file}"),
    ("GET", "/graphql"),
    ("POST", "/graphql"),
    ("GET", "/graphql/schema.graphql"),
    ("GET", "/graphql/ws"),
];

/// Every route Roost serves; the API's (REST and GraphQL) open to the
/// browser origins in `cors` (the sandbox processor keeps its own rules).
pub fn routes(cfg: &mut web::ServiceConfig, cors: &crate::config::CorsOrigins) {
    cfg.route("/", web::get().to(ws::calendar_page))
        .route("/ws", web::get().to(ws::connect))
        .route("/api/docs", web::get().to(docs_redirect))
        .service(docs())
        .configure(|cfg| graphql::routes(cfg, cors))
        .configure(|cfg| rest::routes(cfg, cors));
}

/// Swagger UI, compiled into the binary (nothing from a CDN; no validator
/// badge fetched from swagger.io), over `/api/openapi.json`.
fn docs() -> utoipa_swagger_ui::SwaggerUi {
    let config = utoipa_swagger_ui::Config::default()
        .validator_url("none")
        .try_it_out_enabled(true)
        .persist_authorization(true)
        .display_request_duration(true);
    utoipa_swagger_ui::SwaggerUi::new("/api/docs/{_:.*}")
        .url("/api/openapi.json", rest::openapi::spec())
        .config(config)
}

async fn docs_redirect() -> actix_web::HttpResponse {
    actix_web::HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, "/api/docs/"))
        .finish()
}
