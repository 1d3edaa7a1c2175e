//! `Idempotency-Key` on GraphQL mutations: a retry gets the first answer
//! byte for byte and changes nothing again; a key is per user and bound to
//! its first request; refusals before running keep nothing; a change whose
//! answer was lost is never made again. Over `/graphql/ws` the key is
//! `extensions.idempotencyKey`, in the same key space as the header's.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, WsClient, day};

both_backends!(
    a_retried_mutation_is_replayed_byte_for_byte_and_books_once,
    refusals_before_running_give_the_key_back,
    a_change_whose_answer_was_lost_is_not_made_again,
    every_mutation_replays,
    a_mutation_over_the_socket_is_keyed_as_over_http,
    a_keyed_request_is_the_same_whatever_order_its_extensions_come_in,
);

const BOOK: &str = "mutation($p: ID!, $a: String!, $b: String!) { book(propertyId: $p, checkIn: $a, checkOut: $b, guests: 2) { id status total listing { id } } }";

/// A GraphQL request with `key`: its body bytes, and whether it was a replay.
async fn keyed(
    app: &TestApp,
    token: Option<&str>,
    key: &str,
    query: &str,
    variables: Value,
) -> (Vec<u8>, bool) {
    let body = json!({"query": query, "variables": variables});
    keyed_body(app, token, key, body.to_string()).await
}

/// [`keyed`], with the request's whole body as sent.
async fn keyed_body(
    app: &TestApp,
    token: Option<&str>,
    key: &str,
    body: String,
) -> (Vec<u8>, bool) {
    let mut req = app
        .post("/graphql")
        .header("Idempotency-Key", key)
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let replayed = res
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    (res.bytes().await.unwrap().to_vec(), replayed)
}

fn parsed(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

fn code(body: &[u8]) -> String {
    let answer = parsed(body);
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code: {answer}"))
        .to_owned()
}

fn nights(listing: i64, from: i64, to: i64) -> Value {
    json!({"p": listing.to_string(), "a": day(from), "b": day(to)})
}

async fn a_retried_mutation_is_replayed_byte_for_byte_and_books_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let (_, other) = app.signed_in("guest").await;
    let listing = app.create_listing(&host, json!({})).await;

    let first = keyed(&app, Some(&guest), "trip-1", BOOK, nights(listing, 10, 13)).await;
    let booked = parsed(&first.0);
    assert_eq!(booked["data"]["book"]["status"], "pending", "{booked}");
    assert!(!first.1);
    let again = keyed(&app, Some(&guest), "trip-1", BOOK, nights(listing, 10, 13)).await;
    assert_eq!(again, (first.0.clone(), true), "the same bytes, replayed");
    assert_eq!(app.live_claims(listing).await.len(), 1, "booked once");

    // The key is bound to its first request…
    let other_nights = keyed(&app, Some(&guest), "trip-1", BOOK, nights(listing, 20, 22)).await;
    assert_eq!(code(&other_nights.0), "idempotency_key_reused");
    assert_eq!(
        parsed(&other_nights.0)["errors"][0]["extensions"]["status"],
        422
    );
    // …and to its user: another guest's key of the same name is theirs,
    // and runs (refused: the nights are taken). That refusal ran, so it is
    // kept and replayed even once the nights free up.
    let theirs = keyed(&app, Some(&other), "trip-1", BOOK, nights(listing, 10, 13)).await;
    assert_eq!(
        (code(&theirs.0), theirs.1),
        ("dates_unavailable".into(), false)
    );
    let id = booked["data"]["book"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    app.cancel(&guest, id).await;
    let retried = keyed(&app, Some(&other), "trip-1", BOOK, nights(listing, 10, 13)).await;
    assert_eq!(retried, (theirs.0, true));
    assert_eq!(app.live_claims(listing).await.len(), 0);
    assert_eq!(app.count("idempotency_keys").await, 2);
}

async fn refusals_before_running_give_the_key_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let listing = app.create_listing(&host, json!({})).await;

    // Bad input (400) and no sign-in (401) ran nothing: nothing is kept,
    // and a retry runs afresh.
    for _ in 0..2 {
        let backwards = keyed(&app, Some(&guest), "k", BOOK, nights(listing, 13, 10)).await;
        assert_eq!(
            (code(&backwards.0), backwards.1),
            ("validation_failed".into(), false)
        );
        let signed_out = keyed(&app, None, "k", BOOK, nights(listing, 10, 13)).await;
        assert_eq!(
            (code(&signed_out.0), signed_out.1),
            ("unauthorized".into(), false)
        );
    }
    assert_eq!(app.count("idempotency_keys").await, 0);
    // Given back, the key serves the request it then makes.
    let booked = keyed(&app, Some(&guest), "k", BOOK, nights(listing, 10, 13)).await;
    assert_eq!(parsed(&booked.0)["data"]["book"]["status"], "pending");

    // One key, one change: two mutation fields (or a fragment that may
    // hold them) are refused, and neither runs.
    let two = "mutation { a: register(email: \"a@example.com\", password: \"long enough pw\", name: \"A\") { id } b: register(email: \"b@example.com\", password: \"long enough pw\", name: \"B\") { id } }";
    let fragment = "mutation { ...M } fragment M on Mutation { register(email: \"a@example.com\", password: \"long enough pw\", name: \"A\") { id } }";
    let users = app.count("users").await;
    for query in [two, fragment] {
        let refused = keyed(&app, None, "two", query, json!({})).await;
        assert_eq!(code(&refused.0), "idempotency_key_one_mutation");
    }
    assert_eq!(app.count("users").await, users);
    // A key that is no key.
    let long = "x".repeat(256);
    let refused = keyed(&app, Some(&guest), &long, BOOK, nights(listing, 20, 22)).await;
    assert_eq!(code(&refused.0), "invalid_idempotency_key");
    // A query with a key is served as usual and keeps nothing.
    let read = keyed(
        &app,
        None,
        "q",
        "{ search(first: 1) { edges { cursor } } }",
        json!({}),
    )
    .await;
    assert!(parsed(&read.0).get("errors").is_none());
    assert!(!read.1);
    assert_eq!(app.count("idempotency_keys").await, 1);
}

/// The request dies (here, the database refuses to store its answer)
/// after its change committed: a retry is told the key is in progress
/// while its lease runs, then that the change was made; it never runs
/// again.
async fn a_change_whose_answer_was_lost_is_not_made_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let listing = app.create_listing(&host, json!({})).await;

    // Ending a claim (storing the final answer) fails from now on.
    let lose_answers = match backend {
        Backend::Sqlite => vec![
            "CREATE TRIGGER lose_answers BEFORE UPDATE ON idempotency_keys \
             WHEN OLD.claim IS NOT NULL AND NEW.claim IS NULL \
             BEGIN SELECT RAISE(ABORT, 'the answer is lost'); END",
        ],
        Backend::Postgres => vec![
            "CREATE FUNCTION lose_answers() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF OLD.claim IS NOT NULL AND NEW.claim IS NULL THEN \
             RAISE EXCEPTION 'the answer is lost'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER lose_answers BEFORE UPDATE ON idempotency_keys \
             FOR EACH ROW EXECUTE FUNCTION lose_answers()",
        ],
    };
    for sql in lose_answers {
        app.execute(sql).await;
    }
    let first = keyed(&app, Some(&guest), "lost", BOOK, nights(listing, 10, 13)).await;
    assert_eq!(parsed(&first.0)["data"]["book"]["status"], "pending");
    assert_eq!(app.live_claims(listing).await.len(), 1);

    let retry = keyed(&app, Some(&guest), "lost", BOOK, nights(listing, 10, 13)).await;
    assert_eq!(code(&retry.0), "idempotency_in_progress");
    // The lease runs out, as when the node that held it died.
    app.execute("UPDATE idempotency_keys SET lease_until = '2000-01-01 00:00:00'")
        .await;
    let retry = keyed(&app, Some(&guest), "lost", BOOK, nights(listing, 10, 13)).await;
    assert_eq!(
        (code(&retry.0), retry.1),
        ("idempotency_answer_lost".into(), true)
    );
    assert_eq!(parsed(&retry.0)["errors"][0]["extensions"]["status"], 409);
    assert_eq!(app.live_claims(listing).await.len(), 1, "booked once");
}

/// Each mutation, sent twice with one key: the second answer is the
/// first's, and each change happened once.
async fn every_mutation_replays(backend: Backend) {
    let app = crate::payments::spawn(backend, |_| {}).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let listing = app.create_listing(&host, json!({})).await;
    let booking = app.booked(&guest, listing, &day(10), &day(13)).await;
    let block = app.block(&host, listing, &day(30), &day(31)).await;
    let fields = crate::graphql::gql_input(&crate::helpers::listing(json!({})));
    let p = listing.to_string();
    let calls: Vec<(Option<&str>, &str, Value)> = vec![
        (
            None,
            "mutation { register(email: \"new@example.com\", password: \"long enough pw\", name: \"N\") { id email } }",
            json!({}),
        ),
        (
            None,
            "mutation { signIn(email: \"new@example.com\", password: \"long enough pw\") { token } }",
            json!({}),
        ),
        (
            Some(&host),
            "mutation($input: ListingFields!) { createListing(input: $input) { id } }",
            json!({"input": fields}),
        ),
        (
            Some(&host),
            "mutation($id: ID!) { updateListing(id: $id, input: {title: \"Loft\"}) { id title } }",
            json!({"id": p}),
        ),
        (
            Some(&host),
            "mutation($p: ID!, $a: String!, $b: String!) { blockNights(propertyId: $p, start: $a, end: $b) { id } }",
            json!({"p": p, "a": day(40), "b": day(41)}),
        ),
        (
            Some(&host),
            "mutation($p: ID!, $b: ID!) { removeBlock(propertyId: $p, blockId: $b) }",
            json!({"p": p, "b": block.to_string()}),
        ),
        (Some(&guest), BOOK, nights(listing, 50, 52)),
        (
            Some(&guest),
            "mutation($id: ID!) { changeBooking(id: $id, guests: 1) { id guests } }",
            json!({"id": booking.to_string()}),
        ),
        (
            Some(&guest),
            "mutation($id: ID!) { pay(bookingId: $id) { id status } }",
            json!({"id": booking.to_string()}),
        ),
        (
            Some(&guest),
            "mutation($id: ID!) { cancelBooking(id: $id) { id status } }",
            json!({"id": booking.to_string()}),
        ),
    ];
    for (i, (token, query, variables)) in calls.iter().enumerate() {
        let key = format!("call-{i}");
        let first = keyed(&app, *token, &key, query, variables.clone()).await;
        let answer = parsed(&first.0);
        assert!(
            answer.get("errors").is_none() && !first.1,
            "{query}: {answer}"
        );
        let again = keyed(&app, *token, &key, query, variables.clone()).await;
        assert_eq!(again, (first.0, true), "{query}");
    }
    assert_eq!(app.count("idempotency_keys").await, calls.len() as i64);
    // Each change happened once.
    assert_eq!(app.audit_rows("property.created").await.len(), 2);
    assert_eq!(app.audit_rows("block.added").await.len(), 2);
    assert_eq!(app.audit_rows("block.removed").await.len(), 1);
    assert_eq!(app.audit_rows("booking.cancelled").await.len(), 1);
    assert_eq!(app.audit_rows("booking.held").await.len(), 2);
    assert_eq!(app.audit_rows("booking.changed").await.len(), 1);
    assert_eq!(app.audit_rows("payment.created").await.len(), 1);
}

/// Operation `id` over `/graphql/ws`, with `extensions`: its answer.
async fn over_socket(
    ws: &mut WsClient,
    id: &str,
    query: &str,
    variables: Value,
    extensions: Value,
) -> Value {
    let payload = json!({"query": query, "variables": variables, "extensions": extensions});
    ws.send(json!({"type": "subscribe", "id": id, "payload": payload}))
        .await;
    ws.next_of(id).await
}

/// The answer without the socket's replay mark, and whether it had one.
fn unmarked(mut answer: Value) -> (Value, bool) {
    let replayed = answer
        .get_mut("extensions")
        .and_then(Value::as_object_mut)
        .and_then(|e| e.remove("idempotentReplayed"));
    if answer["extensions"] == json!({}) {
        answer.as_object_mut().unwrap().remove("extensions");
    }
    (answer, replayed == Some(json!(true)))
}

async fn a_mutation_over_the_socket_is_keyed_as_over_http(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let (_, other) = app.signed_in("guest").await;
    let listing = app.create_listing(&host, json!({})).await;
    let mut ws = app.graphql_ws(Some(&guest)).await;

    // Sent twice over the socket: booked once, the second answer the first's.
    let first = over_socket(&mut ws, "1", BOOK, nights(listing, 10, 13), key("ws")).await;
    assert_eq!(first["data"]["book"]["status"], "pending", "{first}");
    assert_eq!(unmarked(first.clone()), (first.clone(), false));
    let again = over_socket(&mut ws, "2", BOOK, nights(listing, 10, 13), key("ws")).await;
    assert_eq!(unmarked(again), (first.clone(), true));
    assert_eq!(app.live_claims(listing).await.len(), 1, "booked once");
    // Retried over HTTP with the key in its header: the same answer.
    let http = keyed(&app, Some(&guest), "ws", BOOK, nights(listing, 10, 13)).await;
    assert_eq!((parsed(&http.0), http.1), (first.clone(), true));
    // And the other way round.
    let posted = keyed(&app, Some(&guest), "http", BOOK, nights(listing, 20, 22)).await;
    assert_eq!(parsed(&posted.0)["data"]["book"]["status"], "pending");
    let socket = over_socket(&mut ws, "3", BOOK, nights(listing, 20, 22), key("http")).await;
    assert_eq!(unmarked(socket), (parsed(&posted.0), true));
    assert_eq!(app.live_claims(listing).await.len(), 2);

    // The key is bound to its first request, and to its user.
    let reused = over_socket(&mut ws, "4", BOOK, nights(listing, 30, 32), key("ws")).await;
    assert_eq!(
        reused["errors"][0]["extensions"]["code"],
        "idempotency_key_reused"
    );
    let mut theirs = app.graphql_ws(Some(&other)).await;
    let taken = over_socket(&mut theirs, "1", BOOK, nights(listing, 10, 13), key("ws")).await;
    assert!(
        !unmarked(taken.clone()).1,
        "another user's key of the same name is theirs: {taken}"
    );
    assert_eq!(
        taken["errors"][0]["extensions"]["code"],
        "dates_unavailable"
    );
    let keys = app.count("idempotency_keys").await;
    assert_eq!(keys, 3);

    // Refused before running, nothing kept: a key that is no key, two
    // mutation fields, a signed-out connection.
    for bad in [json!(7), json!(""), json!("x".repeat(256))] {
        let refused = over_socket(
            &mut ws,
            &format!("bad-{bad}"),
            BOOK,
            nights(listing, 40, 42),
            key_of(bad),
        )
        .await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"],
            "invalid_idempotency_key"
        );
    }
    let two = "mutation { a: register(email: \"a@example.com\", password: \"long enough pw\", name: \"A\") { id } b: register(email: \"b@example.com\", password: \"long enough pw\", name: \"B\") { id } }";
    let refused = over_socket(&mut ws, "two", two, json!({}), key("two")).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        "idempotency_key_one_mutation"
    );
    let mut signed_out = app.graphql_ws(None).await;
    for id in ["1", "2"] {
        let refused = over_socket(
            &mut signed_out,
            id,
            BOOK,
            nights(listing, 40, 42),
            key("out"),
        )
        .await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "unauthorized");
    }
    // A query with a key is served as usual.
    let read = over_socket(
        &mut ws,
        "q",
        "{ search(first: 1) { edges { cursor } } }",
        json!({}),
        key("q"),
    )
    .await;
    assert!(read.get("errors").is_none(), "{read}");
    assert_eq!(app.count("idempotency_keys").await, keys);
    assert_eq!(app.live_claims(listing).await.len(), 2);
}

fn key_of(key: Value) -> Value {
    json!({"idempotencyKey": key})
}

fn key(key: &str) -> Value {
    key_of(json!(key))
}

/// A request's extensions come as a JSON object, in whatever order the
/// client wrote them: its retry is the same request (not one that reuses
/// the key), over HTTP and over the socket.
async fn a_keyed_request_is_the_same_whatever_order_its_extensions_come_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let listing = app.create_listing(&host, json!({})).await;
    // The request as text, its extensions written in `order` (a Value
    // would sort them).
    let request = |order: &[&str], key: Option<&str>| {
        let mut fields: Vec<String> = order.iter().map(|n| format!("\"{n}\": {n:?}")).collect();
        if let Some(key) = key {
            fields.push(format!("\"idempotencyKey\": {key:?}"));
        }
        format!(
            "{{\"query\": {}, \"variables\": {}, \"extensions\": {{{}}}}}",
            json!(BOOK),
            nights(listing, 10, 13),
            fields.join(", ")
        )
    };
    let names = ["a", "b", "c", "d", "e", "f"];
    let mut reversed = names;
    reversed.reverse();
    let first = keyed_body(&app, Some(&guest), "k", request(&names, None)).await;
    assert_eq!(parsed(&first.0)["data"]["book"]["status"], "pending");
    for order in [names, reversed, names] {
        let again = keyed_body(&app, Some(&guest), "k", request(&order, None)).await;
        assert_eq!(again, (first.0.clone(), true));
    }
    let mut ws = app.graphql_ws(Some(&guest)).await;
    let frame = format!(
        "{{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": {}}}",
        request(&reversed, Some("k"))
    );
    ws.send_raw(Message::text(frame)).await;
    let socket = ws.next_of("1").await;
    assert_eq!(unmarked(socket), (parsed(&first.0), true));
    assert_eq!(app.live_claims(listing).await.len(), 1, "booked once");
}
