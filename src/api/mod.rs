//! The API surface. REST lives under `/api/v1`; operations endpoints at the
//! root; live calendars at `/ws` (websocket) and `/` (the page); the
//! payment gateway's webhooks at `/webhooks/payments/{gateway}`.

pub mod graphql;
pub mod rest;
pub mod webhooks;
pub mod ws;

use actix_web::web;

/// Every route Roost serves; the API's (REST and GraphQL) open to the
/// browser origins in `cors` (the sandbox processor keeps its own rules).
pub fn routes(cfg: &mut web::ServiceConfig, cors: &crate::config::CorsOrigins) {
    cfg.route("/", web::get().to(ws::calendar_page))
        .route("/ws", web::get().to(ws::connect))
        .route(
            "/webhooks/payments/{gateway}",
            web::post().to(webhooks::receive_payment_webhook),
        )
        .configure(|cfg| graphql::routes(cfg, cors))
        .configure(|cfg| rest::routes(cfg, cors));
}
