//! The API surface. REST lives under `/api/v1`; operations endpoints at the
//! root; live calendars at `/ws` (websocket) and `/` (the page).

pub mod rest;
pub mod ws;

use actix_web::web;

/// Every route Roost serves.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(ws::calendar_page))
        .route("/ws", web::get().to(ws::connect))
        .configure(rest::routes);
}
