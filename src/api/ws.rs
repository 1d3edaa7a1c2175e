//! `GET /ws`: upgrades to a websocket served by a [`Session`] actor. A token
//! (`Authorization: Bearer …`, or `?access_token=…` for browsers, which
//! cannot set headers on a websocket) signs the session in to its user
//! channel; without one it may follow calendars only.

use std::any::Any;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;

use actix_http::ws::Codec;
use actix_web::dev::Extensions;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;
use serde::Deserialize;

use crate::actors::session::{Control, Session, SessionStream};
use crate::auth::AuthUser;
use crate::auth::extractor::bearer;
use crate::error::ApiError;
use crate::http::client_ip::client_ip;
use crate::state::AppState;

/// The connection's socket, remembered when it is accepted, so a session
/// whose client will not read can be cut off (see `Control::force_close`).
#[derive(Clone, Copy)]
pub struct ConnSocket(RawFd);

/// `HttpServer::on_connect`: remembers each plain TCP connection's socket.
pub fn remember_socket(conn: &dyn Any, ext: &mut Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        ext.insert(ConnSocket(tcp.as_raw_fd()));
    }
}

impl ConnSocket {
    /// A handle of our own on the socket.
    pub fn duplicate(self) -> Option<std::net::TcpStream> {
        // SAFETY: the descriptor is this request's connection, which stays
        // open at least while its handler runs; it is duplicated at once.
        let fd = unsafe { BorrowedFd::borrow_raw(self.0) };
        fd.try_clone_to_owned().ok().map(std::net::TcpStream::from)
    }
}

#[derive(Deserialize)]
pub struct ConnectQuery {
    pub access_token: Option<String>,
}

pub async fn connect(
    req: HttpRequest,
    payload: web::Payload,
    query: web::Query<ConnectQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = bearer(&req).or_else(|| query.into_inner().access_token);
    let user = match &token {
        Some(token) => Some(AuthUser::from_token(&state, token).await?.id),
        None => None,
    };
    let mut response = ws::handshake(&req).map_err(|e| ApiError::BadRequest {
        code: "not_a_websocket",
        message: format!("GET /ws expects a websocket upgrade: {e}"),
        details: None,
    })?;
    let ip = client_ip(&req, &state.settings.trusted_proxies)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let socket = req.conn_data::<ConnSocket>().and_then(|s| s.duplicate());
    if let Some(socket) = &socket {
        let size = state.settings.websocket.send_buffer_bytes;
        if let Err(e) = socket2::SockRef::from(socket).set_send_buffer_size(size) {
            tracing::debug!(error = %e, "cannot size the websocket's send buffer");
        }
    }
    let control = Arc::new(Control::new(socket, state.metrics.clone()));
    if let Some(token) = &token {
        control.signed_in_with(token);
    }
    let codec = Codec::new().max_size(state.settings.websocket.max_frame_bytes);
    let session = Session::new(state.clone(), user, ip, control.clone());
    let frames = ws::WebsocketContext::with_codec(session, payload, codec);
    Ok(response.streaming(SessionStream::new(frames, control)))
}

/// `GET /`: the live calendar page (plain HTML and JavaScript, in the binary).
pub async fn calendar_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        .body(include_str!("live/calendar.html"))
}
