//! `GET /graphql/ws`: GraphQL over a websocket (`graphql-transport-ws`),
//! for subscriptions (and any query or mutation; a mutation's
//! `Idempotency-Key` rides in its `extensions`, see `keyed.rs`).
//!
//! async-graphql speaks the protocol (`connection_init`, `subscribe`,
//! `next`, `complete`, `ping`); this actor carries it the way `/ws`'s
//! session carries its frames, so the same limits hold: a bounded mailbox,
//! the per-address connection limit, heartbeats, a silent client ended by
//! the watchdog, and a client that cannot keep up ended with close 4000
//! (`slow_consumer`) and its socket shut if it does not read even that.
//! (async-graphql-actix-web's own actor has none of these, hence ours.)
//!
//! The token comes with the upgrade (`Authorization: Bearer …` or
//! `?access_token=…`, as `/ws`) or in `connection_init`'s payload
//! (`{"authorization": "Bearer …"}`); a bad one in the payload is refused
//! with close 4403.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use actix::prelude::*;
use actix_http::ws::{CloseCode, CloseReason, Codec};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;
use async_graphql::Data;
use async_graphql::http::{WebSocket, WebSocketProtocols, WsMessage};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::live::Feeds;
use super::{RoostSchema, Viewer, loaders};
use crate::actors::bus::{Deliver, EventBus, Membership};
use crate::actors::session::{Control, Ending, SessionStream};
use crate::api::ws::{ConnSocket, ConnectQuery};
use crate::auth::AuthUser;
use crate::auth::extractor::bearer;
use crate::error::ApiError;
use crate::http::client_ip::client_ip;
use crate::http::request_meta::RequestMeta;
use crate::state::AppState;

/// The subprotocol spoken.
pub const PROTOCOL: &str = "graphql-transport-ws";
/// Client messages waiting for the protocol to read them.
const INCOMING: usize = 64;
/// Why `connection_init` was refused, recognized on its way out.
const UNAUTHORIZED: &str = "unauthorized: the token is invalid, expired or revoked";

pub async fn connect(
    req: HttpRequest,
    payload: web::Payload,
    query: web::Query<ConnectQuery>,
    state: web::Data<AppState>,
    schema: web::Data<RoostSchema>,
) -> Result<HttpResponse, ApiError> {
    let offered = req
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim() == PROTOCOL));
    if !offered {
        return Err(ApiError::BadRequest {
            code: "unsupported_protocol",
            message: format!(
                "GET /graphql/ws speaks the {PROTOCOL} subprotocol: offer it in Sec-WebSocket-Protocol"
            ),
            details: None,
        });
    }
    let token = bearer(&req).or_else(|| query.into_inner().access_token);
    let viewer = match &token {
        Some(token) => Some(AuthUser::from_token(&state, token).await?),
        None => None,
    };
    let mut response =
        ws::handshake_with_protocols(&req, &[PROTOCOL]).map_err(|e| ApiError::BadRequest {
            code: "not_a_websocket",
            message: format!("GET /graphql/ws expects a websocket upgrade: {e}"),
            details: None,
        })?;
    let ip = client_ip(&req, &state.settings.trusted_proxies)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let socket = req.conn_data::<ConnSocket>().and_then(|s| s.duplicate());
    if let Some(socket) = &socket
        && let Err(e) = socket2::SockRef::from(socket)
            .set_send_buffer_size(state.settings.websocket.send_buffer_bytes)
    {
        tracing::debug!(error = %e, "cannot size the websocket's send buffer");
    }
    let control = Arc::new(Control::new(socket, state.metrics.clone()));
    if let Some(token) = &token {
        control.signed_in_with(token);
    }
    let codec = Codec::new().max_size(state.settings.websocket.max_frame_bytes);
    let actor = GraphqlSocket {
        state: state.clone(),
        schema: schema.get_ref().clone(),
        viewer,
        meta: RequestMeta::of(&req),
        ip,
        control: control.clone(),
        membership: None,
        feeds: None,
        incoming: None,
    };
    let frames = ws::WebsocketContext::with_codec(actor, payload, codec);
    Ok(response.streaming(SessionStream::new(frames, control)))
}

/// One `/graphql/ws` connection: its bus membership and its subscriptions'
/// feeds, and the protocol async-graphql runs over its frames.
struct GraphqlSocket {
    state: web::Data<AppState>,
    schema: RoostSchema,
    viewer: Option<AuthUser>,
    meta: RequestMeta,
    ip: IpAddr,
    control: Arc<Control>,
    membership: Option<Membership>,
    feeds: Option<Arc<Feeds>>,
    incoming: Option<mpsc::Sender<Bytes>>,
}

impl GraphqlSocket {
    fn refuse(ctx: &mut ws::WebsocketContext<Self>, code: u16, why: &str) {
        ctx.close(Some(CloseReason {
            code: CloseCode::Other(code),
            description: Some(why.to_owned()),
        }));
        ctx.stop();
    }

    /// Starts the protocol over this connection's frames.
    fn run_protocol(&mut self, membership: &Membership, ctx: &mut ws::WebsocketContext<Self>) {
        let limits = &self.state.settings.websocket;
        let feeds = Arc::new(Feeds::new(
            self.state.bus.clone(),
            membership.id,
            self.control.clone(),
            limits.max_subscriptions,
        ));
        self.feeds = Some(feeds.clone());
        let (tx, rx) = mpsc::channel(INCOMING);
        self.incoming = Some(tx);
        let (users, listings) = loaders::for_connection(&self.state);
        let mut data = Data::default();
        data.insert(Viewer(self.viewer.clone()));
        data.insert(self.meta.clone());
        data.insert(feeds);
        data.insert(users);
        data.insert(listings);
        let (state, bus, session) = (self.state.clone(), self.state.bus.clone(), membership.id);
        let control = self.control.clone();
        let messages = futures_util::stream::unfold(rx, |mut rx: mpsc::Receiver<Bytes>| async {
            rx.recv().await.map(|message| (message, rx))
        });
        WebSocket::new(
            super::Coded {
                schema: self.schema.clone(),
                state: self.state.clone(),
            },
            Box::pin(messages),
            WebSocketProtocols::GraphQLWS,
        )
        .connection_data(data)
        .on_connection_init(move |payload| sign_in(state, bus, session, control, payload))
        .into_actor(self)
        .map(|message, _, ctx| match message {
            WsMessage::Text(text) => ctx.text(text),
            WsMessage::Close(code, why) => {
                // The protocol's codes for a refused init and for an
                // operation before init (async-graphql says 1002 and 1011).
                let code = match (code, why.as_str()) {
                    (1002, UNAUTHORIZED) => 4403,
                    (1011, _) => 4401,
                    _ => code,
                };
                Self::refuse(ctx, code, &why)
            }
        })
        .finish()
        .spawn(ctx);
    }
}

/// `connection_init`: a token in the payload signs the connection in (and
/// onto its user's channel); none leaves it as it came.
async fn sign_in(
    state: web::Data<AppState>,
    bus: Arc<EventBus>,
    session: u64,
    control: Arc<Control>,
    payload: serde_json::Value,
) -> async_graphql::Result<Data> {
    let raw = ["authorization", "Authorization", "access_token"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(serde_json::Value::as_str));
    let mut data = Data::default();
    if let Some(raw) = raw {
        let token = raw.strip_prefix("Bearer ").unwrap_or(raw).trim();
        let auth = AuthUser::from_token(&state, token)
            .await
            .map_err(|_| async_graphql::Error::new(UNAUTHORIZED))?;
        bus.identify(session, auth.id);
        control.signed_in_with(token);
        data.insert(Viewer(Some(auth)));
    }
    Ok(data)
}

impl Actor for GraphqlSocket {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let limits = self.state.settings.websocket.clone();
        ctx.set_mailbox_capacity(limits.queue_capacity);
        self.control.heard();
        let user = self.viewer.as_ref().map(|v| v.id);
        let joined = self.state.bus.join(
            ctx.address().recipient(),
            self.control.clone(),
            user,
            self.ip,
        );
        let Ok(membership) = joined else {
            return Self::refuse(ctx, 1008, "too_many_connections");
        };
        self.run_protocol(&membership, ctx);
        self.membership = Some(membership);
        ctx.run_interval(limits.heartbeat, |_, ctx| ctx.ping(b"roost"));
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for GraphqlSocket {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.control.heard();
        let bytes = match msg {
            Ok(ws::Message::Text(text)) => text.into_bytes(),
            Ok(ws::Message::Binary(bytes)) => bytes,
            Ok(ws::Message::Ping(payload)) => return ctx.pong(&payload),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => return,
            Ok(ws::Message::Continuation(_)) => {
                return Self::refuse(ctx, 4400, "fragmented messages are not accepted");
            }
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                return ctx.stop();
            }
            Err(ws::ProtocolError::Overflow) => {
                return Self::refuse(ctx, 1009, "frame_too_large");
            }
            Err(e) => {
                tracing::debug!(error = %e, "graphql websocket protocol error");
                return Self::refuse(ctx, 1002, "protocol_error");
            }
        };
        let Some(incoming) = &self.incoming else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = incoming.try_send(bytes) {
            // Sending faster than its messages can be read: too fast to serve.
            self.control.end(Ending::SlowConsumer);
        }
    }
}

impl Handler<Deliver> for GraphqlSocket {
    type Result = ();

    fn handle(&mut self, msg: Deliver, _: &mut Self::Context) {
        if let Some(feeds) = &self.feeds {
            feeds.deliver(msg);
        }
    }
}
