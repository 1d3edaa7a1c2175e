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

use crate::http::idempotency::{idempotency, idempotency_signed_in};
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

/// Declares the documented routes once: each handler's `#[utoipa::path]`
/// gives its method and path, both to OpenAPI ([`Paths`]) and to the router
/// ([`endpoints`]), so the spec and the app cannot disagree. A handler may
/// name middleware of its own after `=>`.
macro_rules! documented_routes {
    ($($module:ident :: $handler:ident $(=> $wrap:expr)?),* $(,)?) => {
        /// Every documented operation, from its handler's annotation.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($module::$handler),*))]
        pub struct Paths;

        /// Each handler by its operation id, in the order declared.
        fn handlers() -> Vec<(&'static str, actix_web::Route)> {
            vec![$(
                (stringify!($handler), {
                    let route = web::route().to($module::$handler);
                    $(let route = route.wrap($wrap);)?
                    route
                }),
            )*]
        }
    };
}

use crate::api::webhooks;

// Order matters where patterns overlap: `/users/me` before `/users/{id}`.
documented_routes! {
    ops::healthz,
    ops::readyz,
    ops::metrics,
    webhooks::receive_payment_webhook,
    auth::register => from_fn(auth_limit),
    auth::login => from_fn(auth_limit),
    auth::logout,
    users::get_me,
    users::update_me,
    users::list_users,
    users::get_user,
    reviews::list_user_reviews,
    users::deactivate_user,
    users::activate_user,
    properties::search_properties,
    properties::create_property,
    properties::get_property,
    properties::update_property,
    properties::delete_property,
    properties::get_availability,
    pricing::get_pricing,
    pricing::put_pricing,
    pricing::list_rates,
    pricing::create_rate,
    pricing::delete_rate,
    pricing::get_quote,
    reviews::list_property_reviews,
    properties::create_block,
    properties::delete_block,
    bookings::list_bookings,
    bookings::create_booking,
    bookings::get_booking,
    bookings::change_booking,
    bookings::cancel_booking,
    bookings::get_cancellation,
    bookings::create_payment,
    reviews::list_booking_reviews,
    reviews::create_review,
    reviews::get_review,
    reviews::update_review,
    reviews::delete_review,
    reviews::reply_to_review,
    audit::list_audit,
}

/// Where the versioned API lives; the operations endpoints and webhooks
/// are at the root.
pub const API_PREFIX: &str = "/api/v1";

/// A documented route as registered: its method and full path (as in the
/// spec) and its handler.
pub struct Endpoint {
    pub method: actix_web::http::Method,
    pub path: String,
    /// It needs a bearer token (the spec's `security`).
    pub secured: bool,
    route: actix_web::Route,
}

/// Every documented route, its method and path read from the spec.
///
/// # Panics
/// At startup, if a handler's operation is missing from the spec or two
/// share an operation id: the build is wrong, not the request.
pub fn endpoints() -> Vec<Endpoint> {
    use utoipa::OpenApi;
    let mut located = std::collections::HashMap::new();
    for (path, item) in Paths::openapi().paths.paths {
        for (method, operation) in openapi::operations(&item) {
            let id = operation.operation_id.clone().unwrap_or_default();
            let secured = operation.security.is_some();
            let earlier = located.insert(id.clone(), (method, path.clone(), secured));
            assert!(earlier.is_none(), "two operations are named {id}");
        }
    }
    handlers()
        .into_iter()
        .map(|(id, route)| {
            let (method, path, secured) = located
                .remove(id)
                .unwrap_or_else(|| panic!("{id} has no #[utoipa::path]"));
            Endpoint {
                route: route.method(method.clone()),
                method,
                path,
                secured,
            }
        })
        .collect()
}

/// One resource per path, its routes in declared order (a wrong method on
/// a known path is 405 with `Allow`).
fn resources(endpoints: Vec<Endpoint>, prefix: &str) -> Vec<actix_web::Resource> {
    let mut grouped: Vec<(String, Vec<actix_web::Route>)> = Vec::new();
    for e in endpoints {
        let path = e.path[prefix.len()..].to_owned();
        match grouped.iter_mut().find(|(p, _)| *p == path) {
            Some((_, routes)) => routes.push(e.route),
            None => grouped.push((path, vec![e.route])),
        }
    }
    grouped
        .into_iter()
        .map(|(path, routes)| {
            routes
                .into_iter()
                .fold(web::resource(path), |resource, route| resource.route(route))
        })
        .collect()
}

/// The REST API, the operations endpoints and the payment webhooks: every
/// documented route, and nothing else.
pub fn routes(cfg: &mut web::ServiceConfig, cors: &crate::config::CorsOrigins) {
    let (mut api, root): (Vec<_>, Vec<_>) = endpoints()
        .into_iter()
        .partition(|e| e.path.starts_with(API_PREFIX));
    for resource in resources(root, "") {
        cfg.service(resource);
    }
    // A change's Idempotency-Key is read once its route is known: a wrong
    // method is 405, a wrong path 404, and a missing token on a route that
    // needs one 401, without touching the key's store.
    for e in &mut api {
        if crate::http::idempotency::changes_state(&e.method) {
            let route = std::mem::replace(&mut e.route, web::route());
            e.route = if e.secured {
                route.wrap(from_fn(idempotency_signed_in))
            } else {
                route.wrap(from_fn(idempotency))
            };
        }
    }
    // The last wrapped runs first: CORS (a preflight is answered before any
    // limit), then the rate limit; then routing.
    let scope = web::scope(API_PREFIX)
        .wrap(from_fn(api_limit))
        .wrap(crate::http::cors::cors(cors));
    cfg.service(
        resources(api, API_PREFIX)
            .into_iter()
            .fold(scope, |scope, resource| scope.service(resource)),
    );
}
