//! Live calendars over `/ws`: snapshots, events in seq order, resuming,
//! user channels, limits, and clients too slow or too silent.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, day};

both_backends!(
    every_change_reaches_a_subscriber_once_in_seq_order,
    resuming_gets_exactly_the_missed_events_or_a_fresh_snapshot,
    signed_in_sessions_hear_of_their_own_bookings_only,
    bad_frames_get_error_frames_and_the_connection_survives,
    subscriptions_per_connection_and_connections_per_ip_are_limited,
    a_silent_client_is_dropped_by_the_heartbeat,
    a_client_that_never_reads_is_disconnected,
    a_session_ends_when_its_token_is_revoked,
);

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

async fn every_change_reaches_a_subscriber_once_in_seq_order(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.hold_ttl = Duration::from_secs(3);
        s.hold_sweep_interval = Some(Duration::from_secs(1));
    })
    .await;
    let (_, host) = app.signed_in("host").await;
    let (guest_id, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;

    let mut ws = app.ws(None).await;
    let snapshot = ws.subscribe(id, None).await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    assert_eq!(
        (snapshot["property_id"].as_i64(), snapshot["seq"].as_i64()),
        (Some(id), Some(0))
    );
    assert_eq!(snapshot["unavailable"], json!([]));

    // A block and its removal.
    let block = app.block(&host, id, &day(30), &day(33)).await;
    let added = ws.events(1).await.remove(0);
    assert_eq!(
        (
            added["seq"].as_i64(),
            added["kind"].as_str(),
            added["busy"].as_str()
        ),
        (Some(1), Some("block_added"), Some("blocked"))
    );
    assert_eq!(
        (added["entry_id"].as_i64(), added["check_in"].as_str()),
        (Some(block), Some(day(30).as_str()))
    );
    // A refused write (the nights are blocked) commits nothing: no event.
    let refused = app.book(&guest, id, &day(31), &day(32)).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    app.unblock(&host, id, block).await;
    let removed = ws.events(1).await.remove(0);
    assert_eq!(
        (removed["kind"].as_str(), removed["busy"].clone()),
        (Some("block_removed"), Value::Null)
    );

    // A booking and its cancellation.
    let booking = app.booked(&guest, id, &day(10), &day(12)).await;
    let held = ws.events(1).await.remove(0);
    assert_eq!(
        (
            held["kind"].as_str(),
            held["status"].as_str(),
            held["busy"].as_str()
        ),
        (Some("booking_held"), Some("pending"), Some("held"))
    );
    assert_eq!(held["entry_id"].as_i64(), Some(booking));
    assert!(held["hold_expires_at"].is_string());
    // A listing's subscribers never learn who booked.
    let text = held.to_string();
    assert!(
        held.get("guest_id").is_none() && !text.contains("guest"),
        "{text}"
    );
    let _ = guest_id;
    app.cancel(&guest, booking).await;
    let cancelled = ws.events(1).await.remove(0);
    assert_eq!(
        (
            cancelled["kind"].as_str(),
            cancelled["status"].as_str(),
            cancelled["entry_id"].as_i64()
        ),
        (Some("booking_cancelled"), Some("cancelled"), Some(booking))
    );

    // A hold left to lapse: the sweeper's expiry is an event too.
    let lapsing = app.booked(&guest, id, &day(20), &day(22)).await;
    let held = ws.events(1).await.remove(0);
    assert_eq!(held["kind"], "booking_held");
    let expired = ws.events(1).await.remove(0);
    assert_eq!(
        (expired["kind"].as_str(), expired["entry_id"].as_i64()),
        (Some("booking_expired"), Some(lapsing))
    );
    ws.quiet(Duration::from_millis(300)).await;

    // Six changes, six events, numbered 1 to 6 with no gaps, as in the log.
    assert_eq!(expired["seq"].as_i64(), Some(6));
    assert_eq!(app.count("calendar_events").await, 6);
    let mut fresh = app.ws(None).await;
    let replay = fresh.subscribe(id, Some(0)).await;
    assert_eq!(replay["type"], "resumed", "{replay}");
    let logged = fresh.events(6).await;
    assert_eq!(seqs(&logged), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(logged[5], expired);
    // The listing's actor followed the sweeper's event: its snapshot is
    // current as of seq 6.
    let mut late = app.ws(None).await;
    let snapshot = late.subscribe(id, None).await;
    assert_eq!(
        (snapshot["seq"].as_i64(), snapshot["unavailable"].clone()),
        (Some(6), json!([])),
        "{snapshot}"
    );
}

async fn resuming_gets_exactly_the_missed_events_or_a_fresh_snapshot(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;

    let mut ws = app.ws(None).await;
    assert_eq!(ws.subscribe(id, None).await["type"], "snapshot");
    let first = app.booked(&guest, id, &day(5), &day(7)).await;
    let seen = ws.events(1).await.remove(0)["seq"].as_i64().unwrap();
    ws.close().await;

    // Three changes while away.
    let second = app.booked(&guest, id, &day(10), &day(12)).await;
    app.cancel(&guest, second).await;
    app.block(&host, id, &day(40), &day(41)).await;

    let mut ws = app.ws(None).await;
    let resumed = ws.subscribe(id, Some(seen)).await;
    assert_eq!(
        (
            resumed["type"].as_str(),
            resumed["since_seq"].as_i64(),
            resumed["seq"].as_i64()
        ),
        (Some("resumed"), Some(seen), Some(seen + 3)),
        "{resumed}"
    );
    let missed = ws.events(3).await;
    assert_eq!(seqs(&missed), vec![seen + 1, seen + 2, seen + 3]);
    let kinds: Vec<_> = missed.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["booking_held", "booking_cancelled", "block_added"]);
    ws.quiet(Duration::from_millis(300)).await;
    // …and then live again.
    app.cancel(&guest, first).await;
    assert_eq!(seqs(&ws.events(1).await), vec![seen + 4]);

    // Up to date already: resumed, nothing to send.
    let mut ws = app.ws(None).await;
    let resumed = ws.subscribe(id, Some(seen + 4)).await;
    assert_eq!(resumed["type"], "resumed");
    ws.quiet(Duration::from_millis(300)).await;

    // Older than the log (pruned) or from another world: a fresh snapshot.
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).naive_utc();
    assert_eq!(
        roost::services::housekeeping::prune_events(&app.db, future)
            .await
            .unwrap(),
        5
    );
    for since in [seen, 999] {
        let mut ws = app.ws(None).await;
        let snapshot = ws.subscribe(id, Some(since)).await;
        assert_eq!(snapshot["type"], "snapshot", "since {since}: {snapshot}");
        assert_eq!(snapshot["seq"].as_i64(), Some(seen + 4));
        let unavailable = snapshot["unavailable"].as_array().unwrap();
        assert_eq!(unavailable.len(), 1, "only the block is left: {snapshot}");
        assert_eq!(unavailable[0]["busy"], "blocked");
    }
}

async fn signed_in_sessions_hear_of_their_own_bookings_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (host_id, host) = app.signed_in("host").await;
    let (guest_id, guest) = app.signed_in("guest").await;
    let (_, stranger) = app.signed_in("guest").await;
    let id = app.create_listing(&host, json!({})).await;

    let mut host_ws = app.ws(Some(&host)).await;
    let mut guest_ws = app.ws(Some(&guest)).await;
    let mut stranger_ws = app.ws(Some(&stranger)).await;
    assert_eq!(host_ws.hello["user_id"].as_i64(), Some(host_id));
    assert_eq!(guest_ws.hello["user_id"].as_i64(), Some(guest_id));

    let booking = app.booked(&guest, id, &day(3), &day(6)).await;
    let mine = guest_ws.recv().await;
    assert_eq!(
        (
            mine["type"].as_str(),
            mine["kind"].as_str(),
            mine["role"].as_str()
        ),
        (Some("booking"), Some("booking_held"), Some("guest"))
    );
    assert_eq!(
        (mine["booking_id"].as_i64(), mine["status"].as_str()),
        (Some(booking), Some("pending"))
    );
    let hosts = host_ws.recv().await;
    assert_eq!(
        (hosts["role"].as_str(), hosts["booking_id"].as_i64()),
        (Some("host"), Some(booking))
    );

    app.cancel(&host, booking).await;
    assert_eq!(guest_ws.recv().await["status"], "cancelled");
    assert_eq!(host_ws.recv().await["status"], "cancelled");
    // Blocks are no one's booking; the stranger hears of none of it.
    app.block(&host, id, &day(50), &day(52)).await;
    stranger_ws.quiet(Duration::from_millis(500)).await;
    host_ws.quiet(Duration::from_millis(100)).await;

    // A bad token is refused before the upgrade, in the usual JSON shape.
    let res = app
        .get("/ws?access_token=not-a-token")
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "unauthorized"
    );
    // A plain GET is not a websocket.
    let res = app.get("/ws").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "not_a_websocket"
    );
}

async fn bad_frames_get_error_frames_and_the_connection_survives(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let id = app.create_listing(&host, json!({})).await;
    let mut ws = app.ws(None).await;

    let cases = [
        (Message::text("this is not json"), "bad_json"),
        (Message::text("[1, 2, 3]"), "bad_frame"),
        (Message::text(r#"{"type": "dance"}"#), "unknown_type"),
        (Message::text(r#"{"type": "subscribe"}"#), "bad_frame"),
        (
            Message::text(r#"{"type": "subscribe", "property_id": "one"}"#),
            "bad_frame",
        ),
        (
            Message::text(r#"{"type": "subscribe", "property_id": 1, "since_seq": -4}"#),
            "bad_frame",
        ),
        (
            Message::text(r#"{"type": "subscribe", "property_id": 999999}"#),
            "not_found",
        ),
        (
            Message::text(r#"{"type": "unsubscribe", "property_id": 5}"#),
            "not_subscribed",
        ),
        (Message::binary(vec![1, 2, 3]), "bad_frame"),
    ];
    for (frame, code) in cases {
        let sent = format!("{frame:?}");
        ws.send_raw(frame).await;
        let reply = ws.recv().await;
        assert_eq!(
            (reply["type"].as_str(), reply["code"].as_str()),
            (Some("error"), Some(code)),
            "{sent}: {reply}"
        );
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Still serving: subscribe, unsubscribe, ping.
    assert_eq!(ws.subscribe(id, None).await["type"], "snapshot");
    ws.send(json!({"type": "unsubscribe", "property_id": id}))
        .await;
    assert_eq!(ws.recv().await["type"], "unsubscribed");
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await["type"], "pong");

    // A frame over the limit: an error frame, then a 1009 close.
    let limit = ws.hello["max_frame_bytes"].as_u64().unwrap() as usize;
    ws.send_raw(Message::text("x".repeat(limit + 1))).await;
    let reply = ws
        .recv_within(Duration::from_secs(5))
        .await
        .expect("an error frame");
    assert_eq!(reply["code"], "frame_too_large");
    match ws.next_message(Duration::from_secs(5)).await {
        Some(Message::Close(Some(close))) => assert_eq!(u16::from(close.code), 1009),
        other => panic!("expected a 1009 close, got {other:?}"),
    }
    // The server is fine.
    let mut ws = app.ws(None).await;
    assert_eq!(ws.subscribe(id, None).await["type"], "snapshot");
}

async fn subscriptions_per_connection_and_connections_per_ip_are_limited(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.websocket.max_subscriptions = 3;
        s.websocket.max_connections_per_ip = 4;
    })
    .await;
    let (_, host) = app.signed_in("host").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.create_listing(&host, json!({})).await);
    }
    let mut ws = app.ws(None).await;
    for id in &ids {
        assert_eq!(ws.subscribe(*id, None).await["type"], "snapshot");
    }
    // 10,000 more subscriptions: each refused with an error frame.
    let (mut refused, mut sent) = (0, 0);
    while sent < 10_000 {
        for _ in 0..500 {
            sent += 1;
            ws.send(json!({"type": "subscribe", "property_id": 100_000 + sent}))
                .await;
        }
        while refused < sent {
            let reply = ws.recv().await;
            assert_eq!(reply["code"], "too_many_subscriptions", "{reply}");
            refused += 1;
        }
    }
    // Re-subscribing a followed listing is not a new subscription.
    assert_eq!(ws.subscribe(ids[0], None).await["type"], "snapshot");
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await["type"], "pong");

    // Four connections from this address, counting the one above; a fifth
    // is told why and closed.
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(app.ws(None).await);
    }
    let (mut fifth, _) = tokio_tungstenite::connect_async(app.ws_url(""))
        .await
        .unwrap();
    use futures_util::StreamExt;
    let mut got_error = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), fifth.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(frame["code"], "too_many_connections", "{frame}");
                got_error = true;
            }
            Ok(Some(Ok(Message::Close(Some(close))))) => {
                assert_eq!(u16::from(close.code), 1008);
                break;
            }
            other => panic!("expected an error frame then a close, got {other:?}"),
        }
    }
    assert!(got_error);
    // One leaves; there is room again.
    others.pop().unwrap().close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.metric("roost_ws_sessions").await > 3.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed session was not released"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.ws(None).await;
}

async fn a_silent_client_is_dropped_by_the_heartbeat(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.websocket.heartbeat = Duration::from_secs(1);
        s.websocket.client_timeout = Duration::from_secs(2);
    })
    .await;
    let silent = app.ws(None).await;
    let mut lively = app.ws(None).await;
    // The lively client keeps reading (answering pings) for four seconds;
    // the silent one reads nothing, so it never answers a ping.
    assert!(lively.recv_within(Duration::from_secs(4)).await.is_none());
    lively.send(json!({"type": "ping"})).await;
    assert_eq!(lively.recv().await["type"], "pong");

    // What the silent client was sent, read only now: pings, then a close
    // frame with code 4001 ("timeout"), then the end of the connection.
    let bytes = read_to_end(silent.into_raw()).await;
    let close = [0x88, 2 + 7, 0x0F, 0xA1];
    let at = bytes
        .windows(4)
        .position(|w| w == close)
        .expect("a 4001 close frame");
    assert_eq!(&bytes[at + 4..at + 11], b"timeout");
    assert!(
        app.metric("roost_ws_disconnects_total{reason=\"timeout\"}")
            .await
            >= 1.0
    );
}

/// A client that subscribes and then never reads: its output backs up, its
/// session's bounded mailbox fills, and it is cut off, not buffered.
async fn a_client_that_never_reads_is_disconnected(backend: Backend) {
    let app = TestApp::spawn_with(backend, slow_limits).await;
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
    let (mut ws, _) = tokio_tungstenite::client_async(app.ws_url(""), stream)
        .await
        .unwrap();
    use futures_util::SinkExt;
    // Ask for the snapshot over and over, reading none of it.
    let subscribe = json!({"type": "subscribe", "property_id": id}).to_string();
    for _ in 0..200 {
        let send = ws.send(Message::text(subscribe.clone()));
        if tokio::time::timeout(Duration::from_millis(200), send)
            .await
            .is_err()
        {
            break; // the server stopped reading us: its side is backed up
        }
    }
    cut_off_as_slow(&app, &host, id).await;
    read_to_end(ws.into_inner()).await;
    // Others are served as before.
    let mut ws = app.ws(None).await;
    assert_eq!(ws.subscribe(id, None).await["type"], "snapshot");
}

/// Small queues and buffers, so a client that does not read backs up soon;
/// a silence timeout long enough that only the slow-consumer rule ends it.
pub fn slow_limits(s: &mut roost::config::Settings) {
    s.websocket.queue_capacity = 8;
    s.websocket.send_buffer_bytes = 8192;
    s.websocket.heartbeat = Duration::from_secs(1);
    s.websocket.client_timeout = Duration::from_secs(600);
    s.websocket.max_frame_bytes = 1 << 16;
}

/// With one connection open that does not read, changes `id`'s calendar
/// until the server ends that connection as a slow consumer, then waits
/// for its session to be released.
pub async fn cut_off_as_slow(app: &TestApp, host: &str, id: i64) {
    assert_eq!(app.metric("roost_ws_sessions").await, 1.0);
    // Changes keep coming; its queues fill and it is ended.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while app
        .metric("roost_ws_disconnects_total{reason=\"slow_consumer\"}")
        .await
        < 1.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow client was never cut off"
        );
        let block = app.block(host, id, &day(330), &day(331)).await;
        app.unblock(host, id, block).await;
    }
    // Its session is gone (and with it whatever it held), and its socket is
    // shut: reading what is left ends in EOF or a reset, not a hang.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.metric("roost_ws_sessions").await > 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow session was not released"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Everything the server sends until it closes the connection (20 s at most).
pub async fn read_to_end(mut socket: tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout(Duration::from_secs(20), socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server never closed the connection"),
        }
    }
}

/// A session signed in with a token ends (close code 4401, `unauthorized`)
/// once that token is revoked: by signing out (that token's sessions
/// only) or by deactivation (all the user's). Anonymous sessions and other
/// tokens' sessions carry on.
async fn a_session_ends_when_its_token_is_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = app.signed_in_admin().await;
    let (_, host) = app.signed_in("host").await;
    let (guest_id, first) = app.signed_in("guest").await;
    let me: Value = app.get_me(&first).await.json().await.unwrap();
    let res = app
        .login(me["email"].as_str().unwrap(), "password123")
        .await;
    let second = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let listings = [
        app.create_listing(&host, json!({})).await,
        app.create_listing(&host, json!({})).await,
    ];
    let mut signed_out = app.ws(Some(&first)).await;
    let mut deactivated = app.ws(Some(&second)).await;
    let mut anonymous = app.ws(None).await;
    let mut hosting = app.ws(Some(&host)).await;

    let res = app.logout(&first).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(signed_out.close_code().await, 4401);
    for ws in [&mut deactivated, &mut anonymous, &mut hosting] {
        assert_eq!(ws.subscribe(listings[0], None).await["type"], "snapshot");
    }

    let res = app
        .post(&format!("/api/v1/users/{guest_id}/deactivate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(deactivated.close_code().await, 4401);
    for ws in [&mut anonymous, &mut hosting] {
        assert_eq!(ws.subscribe(listings[1], None).await["type"], "snapshot");
    }
    let ended = "roost_ws_disconnects_total{reason=\"unauthorized\"}";
    assert_eq!(app.metric(ended).await, 2.0);
}
