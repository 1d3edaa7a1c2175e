//! The API surface. REST lives under `/api/v1`; operations endpoints at the
//! root; live calendars at `/ws` (websocket) and `/` (the page); the
//! payment gateway's webhooks at `/webhooks/payments/{gateway}`.

pub mod graphql;
pub mod rest;
pub mod webhooks;
pub mod ws;

use actix_web::web;

/// Every route Roost serves.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(ws::calendar_page))
        .route("/ws", web::get().to(ws::connect))
        .route(
            "/webhooks/payments/{gateway}",
            web::post().to(webhooks::receive_payment_webhook),
        )
        .configure(graphql::routes)
        .configure(rest::routes);
}
