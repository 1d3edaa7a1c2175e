//! REST, `/api/v1`: one file per resource; handlers are verb_noun.

pub mod auth;
pub mod ops;
pub mod pagination;
pub mod users;

use actix_web::middleware::from_fn;
use actix_web::web;

use crate::http::rate_limit::{api_limit, auth_limit};

/// Every route Roost serves.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(ops::healthz))
        .route("/readyz", web::get().to(ops::readyz))
        .route("/metrics", web::get().to(ops::metrics))
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(api_limit))
                .service(
                    web::resource("/auth/register")
                        .wrap(from_fn(auth_limit))
                        .route(web::post().to(auth::register)),
                )
                .service(
                    web::resource("/auth/login")
                        .wrap(from_fn(auth_limit))
                        .route(web::post().to(auth::login)),
                )
                .route("/auth/logout", web::post().to(auth::logout))
                .service(
                    web::resource("/users/me")
                        .route(web::get().to(users::get_me))
                        .route(web::patch().to(users::update_me)),
                )
                .route("/users", web::get().to(users::list_users))
                .route("/users/{id}", web::get().to(users::get_user))
                .route(
                    "/users/{id}/deactivate",
                    web::post().to(users::deactivate_user),
                )
                .route("/users/{id}/activate", web::post().to(users::activate_user)),
        );
}
