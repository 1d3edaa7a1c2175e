//! Operations: `/healthz` (the process is up), `/readyz` (it can serve:
//! the database answers), `/metrics` (Prometheus text).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::actors::bus::RedisLink;
use crate::error::ApiError;
use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "The process is up", body = Health),
    )
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`: an answer at all is the news.
    status: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    status: &'static str,
    database: &'static str,
    /// `disabled` without REDIS_URL; `degraded` when set but the event
    /// relay cannot reach it: the node still books and serves its own
    /// sessions (other nodes' events come from the log), so that alone does
    /// not make it unready.
    redis: &'static str,
    /// The payment gateway in use (`sandbox`: no real money moves).
    payments: &'static str,
    /// What answers availability searches: `memory` (the index),
    /// `loading` (the index is being read; the SQL answers meanwhile) or
    /// `database` (`ROOST_SEARCH_FROM=database`). Never makes a node unready.
    search: &'static str,
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: the database answers", body = Readiness),
        (status = 503, description = "Not ready", body = Readiness),
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = match tokio::time::timeout(CHECK_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            "unavailable"
        }
        Err(_) => "unavailable",
    };
    let redis = match state.bus.redis_link() {
        RedisLink::Disabled => "disabled",
        RedisLink::Up => "ok",
        RedisLink::Down => "degraded",
    };
    let ready = database == "ok";
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        database,
        redis,
        payments: state.payments.kind().as_str(),
        search: state.search.mode().as_str(),
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
    )
)]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let actors = i64::try_from(state.properties.running()).unwrap_or(i64::MAX);
    state.metrics.property_actors.set(actors);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render()?))
}
