//! GraphQL over `/graphql/ws` (graphql-transport-ws): a listing's calendar
//! and my user channel, by `/ws`'s rules (seq order, resume from a seq);
//! and the connection's refusals.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, day};

both_backends!(
    subscriptions_follow_rest_bookings_in_seq_order_and_resume,
    the_graphql_socket_refuses_what_it_must,
    a_graphql_client_that_never_reads_is_disconnected,
    a_graphql_session_ends_when_its_token_is_revoked,
);

const CALENDAR: &str = "subscription($p: ID!, $since: Int) { calendar(propertyId: $p, sinceSeq: $since) { __typename \
    ... on CalendarSnapshot { propertyId seq unavailable { entryId checkIn checkOut busy } } \
    ... on CalendarResumed { sinceSeq seq } \
    ... on CalendarChange { propertyId seq kind entryId checkIn checkOut status busy } } }";

const MINE: &str = "subscription { myEvents { __typename \
    ... on BookingUpdate { kind bookingId propertyId status role } \
    ... on AccountNotice { type } } }";

/// The next calendar update of operation `id`.
async fn update(ws: &mut crate::helpers::WsClient, id: &str) -> Value {
    let payload = ws.next_of(id).await;
    assert!(payload.get("errors").is_none(), "{payload}");
    payload["data"]["calendar"].clone()
}

async fn subscriptions_follow_rest_bookings_in_seq_order_and_resume(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (host_id, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let listing = app.create_listing(&host, json!({})).await;
    let block = app.block(&host, listing, &day(40), &day(42)).await;

    // The guest follows the calendar and their own channel; the host signs
    // in with the upgrade's token instead of connection_init's.
    let mut ws = app.graphql_ws(Some(&guest)).await;
    ws.start("cal", CALENDAR, json!({"p": listing.to_string()}))
        .await;
    let snapshot = update(&mut ws, "cal").await;
    assert_eq!(snapshot["__typename"], "CalendarSnapshot", "{snapshot}");
    assert_eq!(snapshot["seq"], 1);
    assert_eq!(
        snapshot["unavailable"],
        json!([{"entryId": block.to_string(), "checkIn": day(40), "checkOut": day(42), "busy": "BLOCKED"}])
    );
    ws.start("me", MINE, json!({})).await;
    let mut hosting = app
        .graphql_ws_raw(&format!("?access_token={host}"))
        .await
        .unwrap();
    hosting.send(json!({"type": "connection_init"})).await;
    assert_eq!(hosting.recv().await["type"], "connection_ack");
    hosting.start("me", MINE, json!({})).await;
    // A query over the socket works too, as the signed-in host.
    hosting.start("who", "{ me { id } }", json!({})).await;
    let me = hosting.next_of("who").await;
    assert_eq!(me["data"]["me"]["id"], host_id.to_string(), "{me}");

    // Bookings made through REST arrive in seq order.
    let first = app.booked(&guest, listing, &day(10), &day(12)).await;
    let second = app.booked(&guest, listing, &day(20), &day(22)).await;
    app.cancel(&guest, first).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let change = update(&mut ws, "cal").await;
        assert_eq!(change["__typename"], "CalendarChange", "{change}");
        assert!(change.get("guestId").is_none());
        seen.push((
            change["seq"].as_i64().unwrap(),
            change["kind"].as_str().unwrap().to_owned(),
            change["entryId"].as_str().unwrap().parse::<i64>().unwrap(),
        ));
    }
    assert_eq!(
        seen,
        vec![
            (2, "booking_held".into(), first),
            (3, "booking_held".into(), second),
            (4, "booking_cancelled".into(), first),
        ]
    );
    for (ws, role) in [(&mut ws, "guest"), (&mut hosting, "host")] {
        let mut mine = Vec::new();
        for _ in 0..3 {
            let payload = ws.next_of("me").await;
            let event = &payload["data"]["myEvents"];
            assert_eq!(event["__typename"], "BookingUpdate", "{payload}");
            assert_eq!(event["role"], role);
            mine.push((event["kind"].clone(), event["bookingId"].clone()));
        }
        assert_eq!(
            mine,
            vec![
                (json!("booking_held"), json!(first.to_string())),
                (json!("booking_held"), json!(second.to_string())),
                (json!("booking_cancelled"), json!(first.to_string())),
            ]
        );
    }

    // Resuming from seq 2 (signed out): exactly the events after it, then
    // live ones, on both connections.
    let mut late = app.graphql_ws(None).await;
    late.start(
        "cal",
        CALENDAR,
        json!({"p": listing.to_string(), "since": 2}),
    )
    .await;
    let resumed = update(&mut late, "cal").await;
    assert_eq!(
        resumed,
        json!({"__typename": "CalendarResumed", "sinceSeq": 2, "seq": 4})
    );
    let replayed: Vec<_> = [
        update(&mut late, "cal").await,
        update(&mut late, "cal").await,
    ]
    .iter()
    .map(|c| c["seq"].as_i64().unwrap())
    .collect();
    assert_eq!(replayed, vec![3, 4]);
    let third = app.booked(&guest, listing, &day(30), &day(31)).await;
    for ws in [&mut ws, &mut late] {
        let change = update(ws, "cal").await;
        assert_eq!(
            (change["seq"].clone(), change["entryId"].clone()),
            (json!(5), json!(third.to_string()))
        );
    }
    // Signed out, my channel is refused, as REST would.
    late.start("me", MINE, json!({})).await;
    let refused = late.next_of("me").await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "unauthorized",
        "{refused}"
    );

    let payload = ws.next_of("me").await;
    assert_eq!(payload["data"]["myEvents"]["kind"], "booking_held");

    // Completing a subscription stops its updates; the other goes on.
    ws.send(json!({"type": "complete", "id": "cal"})).await;
    app.cancel(&guest, third).await;
    let payload = ws.next_of("me").await;
    assert_eq!(payload["data"]["myEvents"]["kind"], "booking_cancelled");
    let change = update(&mut late, "cal").await;
    assert_eq!(change["seq"], 6);
    ws.quiet(std::time::Duration::from_millis(300)).await;
    // (async-graphql acknowledges a client's complete with its own.)
    assert_eq!(ws.pending, vec![json!({"type": "complete", "id": "cal"})]);
}

async fn the_graphql_socket_refuses_what_it_must(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.websocket.max_subscriptions = 2).await;
    let (_, host) = app.signed_in("host").await;
    let listing = app.create_listing(&host, json!({})).await;

    // A websocket that does not offer the protocol, and a plain GET.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let request = app.graphql_ws_url("").into_client_request().unwrap();
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "unsupported_protocol");
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    // A bad token with the upgrade: 401, as /ws.
    match app.graphql_ws_raw("?access_token=nope").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    // A bad token in connection_init: closed with 4403.
    let mut ws = app.graphql_ws_raw("").await.unwrap();
    ws.send(json!({"type": "connection_init", "payload": {"authorization": "Bearer nope"}}))
        .await;
    assert_eq!(ws.close_code().await, 4403);
    // An operation before connection_init: closed with 4401.
    let mut ws = app.graphql_ws_raw("").await.unwrap();
    ws.start("cal", CALENDAR, json!({"p": listing.to_string()}))
        .await;
    assert_eq!(ws.close_code().await, 4401);

    // A listing that does not exist, and a bad id: REST's codes.
    let mut ws = app.graphql_ws(None).await;
    ws.start("a", CALENDAR, json!({"p": "999999"})).await;
    let payload = ws.next_of("a").await;
    assert_eq!(
        payload["errors"][0]["extensions"]["code"], "not_found",
        "{payload}"
    );
    ws.start("b", CALENDAR, json!({"p": "x"})).await;
    let payload = ws.next_of("b").await;
    assert_eq!(
        payload["errors"][0]["extensions"]["code"], "validation_failed",
        "{payload}"
    );
    ws.start(
        "c",
        CALENDAR,
        json!({"p": listing.to_string(), "since": -1}),
    )
    .await;
    let payload = ws.next_of("c").await;
    assert_eq!(
        payload["errors"][0]["extensions"]["code"],
        "validation_failed"
    );

    // The limits and the codes hold over the socket too.
    let deep = "{ me { id } __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }";
    ws.start("d", deep, json!({})).await;
    let payload = ws.next_of("d").await;
    assert_eq!(
        payload["errors"][0]["extensions"]["code"], "query_too_deep",
        "{payload}"
    );
    ws.start("e", "subscription { nope }", json!({})).await;
    let payload = ws.next_of("e").await;
    assert_eq!(
        payload["errors"][0]["extensions"]["code"], "invalid_query",
        "{payload}"
    );

    // A subscription over HTTP is pointed at the socket.
    let answer = crate::graphql::gql(
        &app,
        None,
        "subscription($p: ID!) { calendar(propertyId: $p) { __typename } }",
        json!({"p": listing.to_string()}),
    )
    .await;
    assert!(answer["errors"].is_array(), "{answer}");

    // At most ROOST_WS_MAX_SUBSCRIPTIONS subscriptions of either kind run
    // on one connection; completing one makes room.
    let mut ws = app.graphql_ws(Some(&host)).await;
    let follow = json!({"p": listing.to_string()});
    ws.start("1", CALENDAR, follow.clone()).await;
    assert_eq!(update(&mut ws, "1").await["__typename"], "CalendarSnapshot");
    ws.start("2", MINE, json!({})).await;
    ws.start("3", CALENDAR, follow.clone()).await;
    let payload = ws.next_of("3").await;
    assert_eq!(
        payload["errors"][0]["extensions"]["code"], "too_many_subscriptions",
        "{payload}"
    );
    ws.send(json!({"type": "complete", "id": "1"})).await;
    ws.start("4", CALENDAR, follow).await;
    assert_eq!(update(&mut ws, "4").await["__typename"], "CalendarSnapshot");
}

/// As on `/ws`: a client that subscribes and never reads backs up, its
/// connection's bounded mailbox fills, and it is cut off, not buffered.
async fn a_graphql_client_that_never_reads_is_disconnected(backend: Backend) {
    use futures_util::SinkExt;
    use std::time::Duration;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = TestApp::spawn_with(backend, |s| {
        crate::live::slow_limits(s);
        s.websocket.max_subscriptions = 1000;
    })
    .await;
    let (_, host) = app.signed_in("host").await;
    let id = app.create_listing(&host, json!({})).await;
    // A calendar with a large snapshot: 150 blocks.
    for i in 0..150 {
        app.block(&host, id, &day(1 + 2 * i), &day(2 + 2 * i)).await;
    }
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let mut request = app.graphql_ws_url("").into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    let init = json!({"type": "connection_init"}).to_string();
    ws.send(Message::text(init)).await.unwrap();
    // Ask for the snapshot over and over, reading none of it.
    for n in 0..500 {
        let payload = json!({"query": CALENDAR, "variables": {"p": id.to_string()}});
        let subscribe = json!({"type": "subscribe", "id": n.to_string(), "payload": payload});
        let send = ws.send(Message::text(subscribe.to_string()));
        if tokio::time::timeout(Duration::from_millis(200), send)
            .await
            .is_err()
        {
            break; // the server stopped reading us: its side is backed up
        }
    }
    crate::live::cut_off_as_slow(&app, &host, id).await;
    crate::live::read_to_end(ws.into_inner()).await;
    // Others are served as before.
    let mut ws = app.graphql_ws(None).await;
    ws.start("cal", CALENDAR, json!({"p": id.to_string()}))
        .await;
    assert_eq!(
        update(&mut ws, "cal").await["__typename"],
        "CalendarSnapshot"
    );
}

/// As on `/ws`: signing out ends (4401) the connections signed in with that
/// token, whether it came with the upgrade or in `connection_init`; another
/// user's connection carries on.
async fn a_graphql_session_ends_when_its_token_is_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let listing = app.create_listing(&host, json!({})).await;
    let mut by_init = app.graphql_ws(Some(&guest)).await;
    let mut by_upgrade = app
        .graphql_ws_raw(&format!("?access_token={guest}"))
        .await
        .unwrap();
    by_upgrade
        .send(json!({"type": "connection_init", "payload": {}}))
        .await;
    assert_eq!(by_upgrade.recv().await["type"], "connection_ack");
    let mut other = app.graphql_ws(Some(&host)).await;

    let res = app.logout(&guest).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(by_init.close_code().await, 4401);
    assert_eq!(by_upgrade.close_code().await, 4401);
    other
        .start("cal", CALENDAR, json!({"p": listing.to_string()}))
        .await;
    assert_eq!(
        update(&mut other, "cal").await["__typename"],
        "CalendarSnapshot"
    );
}
