//! REST, `/api/v1`: one file per resource; handlers are verb_noun.

pub mod audit;
pub mod auth;
pub mod bookings;
pub mod form;
pub mod openapi;
pub mod ops;
pub mod pagination;
pub mod pricing;
pub mod properties;
pub mod reviews;
pub mod users;

use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};

use crate::commit::Reply;

use crate::http::idempotency::idempotency;
use crate::http::rate_limit::{api_limit, auth_limit};

/// A change's answer, exactly the bytes stored under its Idempotency-Key.
impl From<Reply> for HttpResponse {
    fn from(reply: Reply) -> Self {
        let status =
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = HttpResponse::build(status);
        if reply.body.is_empty() {
            response.finish()
        } else {
            response.content_type("application/json").body(reply.body)
        }
    }
}

/// The REST API and the operations endpoints.
pub fn routes(cfg: &mut web::ServiceConfig, cors: &crate::config::CorsOrigins) {
    cfg.route("/healthz", web::get().to(ops::healthz))
        .route("/readyz", web::get().to(ops::readyz))
        .route("/metrics", web::get().to(ops::metrics))
        .service(
            web::scope("/api/v1")
                // The last wrapped runs first: CORS (a preflight is answered
                // before any limit), the rate limit, then the Idempotency-Key.
                .wrap(from_fn(idempotency))
                .wrap(from_fn(api_limit))
                .wrap(crate::http::cors::cors(cors))
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
                    "/users/{id}/reviews",
                    web::get().to(reviews::list_user_reviews),
                )
                .route(
                    "/users/{id}/deactivate",
                    web::post().to(users::deactivate_user),
                )
                .route("/users/{id}/activate", web::post().to(users::activate_user))
                .service(
                    web::resource("/properties")
                        .route(web::get().to(properties::search_properties))
                        .route(web::post().to(properties::create_property)),
                )
                .service(
                    web::resource("/properties/{id}")
                        .route(web::get().to(properties::get_property))
                        .route(web::patch().to(properties::update_property))
                        .route(web::delete().to(properties::delete_property)),
                )
                .route(
                    "/properties/{id}/availability",
                    web::get().to(properties::get_availability),
                )
                .service(
                    web::resource("/properties/{id}/pricing")
                        .route(web::get().to(pricing::get_pricing))
                        .route(web::put().to(pricing::put_pricing)),
                )
                .service(
                    web::resource("/properties/{id}/rates")
                        .route(web::get().to(pricing::list_rates))
                        .route(web::post().to(pricing::create_rate)),
                )
                .route(
                    "/properties/{id}/rates/{rate_id}",
                    web::delete().to(pricing::delete_rate),
                )
                .route("/properties/{id}/quote", web::get().to(pricing::get_quote))
                .route(
                    "/properties/{id}/reviews",
                    web::get().to(reviews::list_property_reviews),
                )
                .route(
                    "/properties/{id}/blocks",
                    web::post().to(properties::create_block),
                )
                .route(
                    "/properties/{id}/blocks/{block_id}",
                    web::delete().to(properties::delete_block),
                )
                .service(
                    web::resource("/bookings")
                        .route(web::get().to(bookings::list_bookings))
                        .route(web::post().to(bookings::create_booking)),
                )
                .service(
                    web::resource("/bookings/{id}")
                        .route(web::get().to(bookings::get_booking))
                        .route(web::patch().to(bookings::change_booking)),
                )
                .route(
                    "/bookings/{id}/cancel",
                    web::post().to(bookings::cancel_booking),
                )
                .route(
                    "/bookings/{id}/cancellation",
                    web::get().to(bookings::get_cancellation),
                )
                .route(
                    "/bookings/{id}/payments",
                    web::post().to(bookings::create_payment),
                )
                .service(
                    web::resource("/bookings/{id}/reviews")
                        .route(web::get().to(reviews::list_booking_reviews))
                        .route(web::post().to(reviews::create_review)),
                )
                .service(
                    web::resource("/reviews/{id}")
                        .route(web::get().to(reviews::get_review))
                        .route(web::patch().to(reviews::update_review))
                        .route(web::delete().to(reviews::delete_review)),
                )
                .route(
                    "/reviews/{id}/reply",
                    web::post().to(reviews::reply_to_review),
                )
                .route("/audit", web::get().to(audit::list_audit)),
        );
}
