//! GraphQL at `/graphql`: the same services, rules and error codes as
//! REST; limits that refuse a query before it runs; an SDL that cannot
//! drift from its checked-in copy.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Api, Backend, TestApp, day};

both_backends!(
    register_sign_in_and_read_through_graphql,
    search_walks_the_same_pages_as_rest,
    errors_carry_the_same_codes_as_rest,
    too_deep_and_too_complex_queries_are_refused_before_they_run,
    the_booking_journey_through_mutations_refuses_the_wrong_user,
    a_search_page_with_hosts_costs_a_fixed_number_of_statements,
    host_mutations_and_listing_reads_match_rest_and_refuse_the_wrong_user,
);

const SDL_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/src/api/graphql/schema.graphql"
);

/// Runs a GraphQL request; answers its JSON (always HTTP 200).
pub async fn gql(api: &Api, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut req = api
        .post("/graphql")
        .json(&json!({"query": query, "variables": variables}));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

fn code(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code: {answer}"))
}

#[test]
fn the_checked_in_sdl_is_the_schemas() {
    let sdl = roost::api::graphql::schema().sdl();
    if std::env::var("ROOST_WRITE_SDL").is_ok() {
        std::fs::write(SDL_FILE, &sdl).unwrap();
    }
    let checked_in = std::fs::read_to_string(SDL_FILE).unwrap_or_default();
    assert!(
        checked_in == sdl,
        "the GraphQL schema changed: review the change, then run \
         `ROOST_WRITE_SDL=1 cargo test --test api the_checked_in_sdl` and commit \
         src/api/graphql/schema.graphql"
    );
}

async fn register_sign_in_and_read_through_graphql(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let registered = gql(
        &app,
        None,
        "mutation($e: String!) { register(email: $e, password: \"long enough pw\", name: \"Ada\", role: \"host\") { id email role } }",
        json!({"e": "Ada@Example.com"}),
    )
    .await;
    assert_eq!(
        registered["data"]["register"]["email"], "ada@example.com",
        "{registered}"
    );
    assert_eq!(registered["data"]["register"]["role"], "host");
    let session = gql(
        &app,
        None,
        "mutation { signIn(email: \"ada@example.com\", password: \"long enough pw\") { token user { id name } } }",
        json!({}),
    )
    .await;
    let token = session["data"]["signIn"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The token works for REST too: one account system.
    let me_rest = app.get_ok("/api/v1/users/me", &token).await;
    let me = gql(
        &app,
        Some(&token),
        "{ me { id name guestReviewCount guestRatingAvg } }",
        json!({}),
    )
    .await;
    assert_eq!(
        me["data"]["me"]["id"],
        me_rest["id"].as_i64().unwrap().to_string()
    );
    assert_eq!(me["data"]["me"]["guestRatingAvg"], Value::Null);

    let listing = app
        .create_listing(&token, json!({"title": "Harbour flat"}))
        .await;
    let read = gql(
        &app,
        None,
        "query($id: ID!) { listing(id: $id) { id title pricePerNight currency reviewCount ratingAvg host { id name } reviews(first: 5) { edges { node { id } } pageInfo { hasNextPage } } } }",
        json!({"id": listing.to_string()}),
    )
    .await;
    let l = &read["data"]["listing"];
    assert_eq!(l["title"], "Harbour flat", "{read}");
    assert_eq!(l["host"]["name"], "Ada");
    assert_eq!(
        (l["reviewCount"].clone(), l["ratingAvg"].clone()),
        (json!(0), Value::Null)
    );
    assert_eq!(l["reviews"]["edges"], json!([]));
    // The SDL served is the checked-in one.
    let served = app
        .get("/graphql/schema.graphql")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        served == std::fs::read_to_string(SDL_FILE).unwrap(),
        "the served SDL is not the checked-in one"
    );
    // Audited like REST's: the sign-up and the sign-in.
    assert_eq!(app.audit_rows("user.registered").await.len(), 1);
    assert_eq!(app.audit_rows("user.login_succeeded").await.len(), 1);
}

async fn search_walks_the_same_pages_as_rest(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    for price in [9_000, 12_000, 12_000, 15_000, 20_000, 7_500, 12_000] {
        app.create_listing(
            &host,
            json!({"price_per_night": price, "city": "Porto", "country": "PT"}),
        )
        .await;
    }
    app.create_listing(&host, json!({"city": "Lisbon", "country": "PT"}))
        .await;
    let mut rest = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = "/api/v1/properties?city=porto&sort=price_desc&limit=3".to_owned();
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = app.get(&url).send().await.unwrap().json().await.unwrap();
        rest.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_i64().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut graph = Vec::new();
    let mut after = Value::Null;
    loop {
        let answer = gql(
            &app,
            None,
            "query($after: String) { search(filter: {city: \"porto\"}, sort: PRICE_DESC, first: 3, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
            json!({"after": after}),
        )
        .await;
        let page = &answer["data"]["search"];
        graph.extend(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_owned()),
        );
        if page["pageInfo"]["hasNextPage"] == true {
            after = page["pageInfo"]["endCursor"].clone();
        } else {
            break;
        }
    }
    assert_eq!(rest.len(), 7);
    assert_eq!(graph, rest);
}

async fn errors_carry_the_same_codes_as_rest(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Signed out.
    let answer = gql(&app, None, "{ me { id } }", json!({})).await;
    assert_eq!(code(&answer), "unauthorized");
    let answer = gql(&app, Some("not-a-token"), "{ me { id } }", json!({})).await;
    assert_eq!(code(&answer), "unauthorized");
    // Bad fields: the same field errors as REST's 400.
    let answer = gql(
        &app,
        None,
        "mutation { register(email: \"nope\", password: \"short\", name: \"\") { id } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&answer), "validation_failed");
    let rest: Value = app
        .post("/api/v1/auth/register")
        .json(&json!({"email": "nope", "password": "short", "name": ""}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["errors"][0]["extensions"]["details"],
        rest["error"]["details"]
    );
    assert_eq!(answer["errors"][0]["extensions"]["status"], 400);
    assert_eq!(answer["data"], Value::Null);
    assert_eq!(app.count("users").await, 0, "nothing stored");
    // Wrong password; unknown listing; a bad id; bad search input.
    let answer = gql(
        &app,
        None,
        "mutation { signIn(email: \"a@b.co\", password: \"whatever-long\") { token } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&answer), "invalid_credentials");
    let answer = gql(&app, None, "{ listing(id: \"999999\") { id } }", json!({})).await;
    assert_eq!(code(&answer), "not_found");
    let answer = gql(&app, None, "{ listing(id: \"x\") { id } }", json!({})).await;
    assert_eq!(code(&answer), "validation_failed");
    let answer = gql(
        &app,
        None,
        "{ search(filter: {minRating: 4.567}) { edges { cursor } } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&answer), "validation_failed");
    assert_eq!(
        answer["errors"][0]["extensions"]["details"][0]["field"],
        "min_rating"
    );
    let answer = gql(
        &app,
        None,
        "{ search(first: 0) { edges { cursor } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        answer["errors"][0]["extensions"]["details"][0]["field"],
        "limit"
    );
    // Not GraphQL at all.
    let answer = gql(&app, None, "{ nosuchfield }", json!({})).await;
    assert_eq!(code(&answer), "invalid_query");
}

async fn too_deep_and_too_complex_queries_are_refused_before_they_run(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let listing = app.create_listing(&host, json!({})).await;
    // Within the limits: seven levels, twenty listings of twenty reviews.
    let fine = format!(
        "{{ listing(id: \"{listing}\") {{ host {{ id }} }} \
         search {{ edges {{ node {{ reviews {{ edges {{ node {{ id }} }} }} }} }} }} }}"
    );
    let answer = gql(&app, None, &fine, json!({})).await;
    assert!(answer["errors"].is_null(), "within the limits: {answer}");
    // Eleven levels (the limit is ten): refused, nothing run.
    let answer = gql(
        &app,
        None,
        "{ me { id } __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&answer), "query_too_deep", "{answer}");
    assert!(answer["data"].is_null(), "refused before it ran: {answer}");
    // Too complex: 100 listings × 100 reviews each.
    let answer = gql(
        &app,
        None,
        "{ search(first: 100) { edges { node { id title reviews(first: 100) { edges { node { id comment rating } } } } } } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&answer), "query_too_complex", "{answer}");
    assert!(answer["data"].is_null());
}

async fn the_booking_journey_through_mutations_refuses_the_wrong_user(backend: Backend) {
    let app = crate::payments::spawn(backend, |_| {}).await;
    let (_, host) = app.signed_in("host").await;
    let (guest_id, guest) = app.signed_in("guest").await;
    let (_, stranger) = app.signed_in("guest").await;
    let create = "mutation($input: ListingFields!) { createListing(input: $input) { id title pricePerNight } }";
    let mut fields = crate::helpers::listing(json!({}));
    // The same field errors as REST, by REST's names; a guest may not list.
    fields["price_per_night"] = json!(0);
    let input = |f: &Value| json!({"input": gql_input(f)});
    let answer = gql(&app, Some(&host), create, input(&fields)).await;
    assert_eq!(code(&answer), "validation_failed");
    assert_eq!(
        answer["errors"][0]["extensions"]["details"][0]["field"],
        "price_per_night"
    );
    fields["price_per_night"] = json!(10_000);
    let answer = gql(&app, Some(&guest), create, input(&fields)).await;
    assert_eq!(code(&answer), "forbidden", "{answer}");
    let answer = gql(&app, Some(&host), create, input(&fields)).await;
    let listing = answer["data"]["createListing"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The guest books through GraphQL; REST sees the same booking.
    let book = "mutation($p: ID!, $a: String!, $b: String!) { book(propertyId: $p, checkIn: $a, checkOut: $b, guests: 2) { id status total currency listing { id } } }";
    let vars = json!({"p": listing, "a": crate::helpers::day(20), "b": crate::helpers::day(23)});
    let answer = gql(&app, Some(&guest), book, vars.clone()).await;
    let booked = &answer["data"]["book"];
    assert_eq!(booked["status"], "pending", "{answer}");
    assert_eq!(booked["listing"]["id"], listing);
    let id = booked["id"].as_str().unwrap().to_owned();
    let rest = app.get_ok(&format!("/api/v1/bookings/{id}"), &guest).await;
    assert_eq!(
        (rest["total"].clone(), rest["guest_id"].clone()),
        (booked["total"].clone(), json!(guest_id))
    );
    // The same nights again: REST's conflict.
    let answer = gql(&app, Some(&stranger), book, vars).await;
    assert_eq!(code(&answer), "dates_unavailable");

    // The wrong user, for every object and change.
    let read = "query($id: ID!) { booking(id: $id) { id status payment { status } } }";
    let answer = gql(&app, Some(&stranger), read, json!({"id": id})).await;
    assert_eq!(code(&answer), "not_found");
    let answer = gql(&app, None, read, json!({"id": id})).await;
    assert_eq!(code(&answer), "unauthorized");
    let answer = gql(&app, Some(&host), read, json!({"id": id})).await;
    assert_eq!(answer["data"]["booking"]["status"], "pending");
    let pay = "mutation($id: ID!) { pay(bookingId: $id) { id status amount confirmUrl } }";
    let answer = gql(&app, Some(&host), pay, json!({"id": id})).await;
    assert_eq!(code(&answer), "forbidden");
    let cancel = "mutation($id: ID!) { cancelBooking(id: $id) { id status } }";
    let answer = gql(&app, Some(&stranger), cancel, json!({"id": id})).await;
    assert_eq!(code(&answer), "not_found");
    let review = "mutation($id: ID!) { writeReview(bookingId: $id, input: {rating: 5, comment: \"x\"}) { id } }";
    let answer = gql(&app, Some(&host), review, json!({"id": id})).await;
    assert_eq!(code(&answer), "stay_not_completed");

    // The guest pays at the processor; the booking is confirmed.
    let answer = gql(&app, Some(&guest), pay, json!({"id": id})).await;
    let payment = &answer["data"]["pay"];
    assert_eq!(payment["status"], "requires_payment_method", "{answer}");
    let started = json!({"next_action": {"confirm_url": payment["confirmUrl"]}});
    let (status, _) = crate::payments::post_card(&app, &started, "4242424242424242").await;
    assert!(status.is_success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let answer = gql(&app, Some(&guest), read, json!({"id": id})).await;
        let b = &answer["data"]["booking"];
        if b["status"] == "confirmed" {
            assert_eq!(b["payment"]["status"], "succeeded");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never confirmed: {answer}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mine = gql(
        &app,
        Some(&host),
        "{ myBookings(role: HOST) { edges { node { id status } } } }",
        json!({}),
    )
    .await;
    assert_eq!(mine["data"]["myBookings"]["edges"][0]["node"]["id"], id);
    let trips = gql(
        &app,
        Some(&stranger),
        "{ myBookings { edges { node { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(trips["data"]["myBookings"]["edges"], json!([]));
    let answer = gql(&app, Some(&guest), cancel, json!({"id": id})).await;
    assert_eq!(
        answer["data"]["cancelBooking"]["status"], "cancelled",
        "{answer}"
    );
}

/// The statements one GraphQL request costs (the fewest of five tries, so
/// a background job's statements in between do not count).
async fn statements_of(app: &TestApp, query: &str) -> f64 {
    let mut fewest = f64::MAX;
    for _ in 0..5 {
        let before = app.metric("roost_db_statements_total").await;
        let answer = gql(app, None, query, json!({})).await;
        assert!(answer.get("errors").is_none(), "{answer}");
        let after = app.metric("roost_db_statements_total").await;
        fewest = fewest.min(after - before);
    }
    fewest
}

async fn a_search_page_with_hosts_costs_a_fixed_number_of_statements(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut hosts = std::collections::HashMap::new();
    for _ in 0..10 {
        let (host_id, host) = app.signed_in("host").await;
        for _ in 0..2 {
            let id = app.create_listing(&host, json!({})).await;
            hosts.insert(id.to_string(), host_id.to_string());
        }
    }
    let page = |n: usize| {
        format!(
            "{{ search(first: {n}) {{ edges {{ node {{ id title ratingAvg reviewCount categoryRatings {{ average }} host {{ id name guestReviewCount }} }} }} }} }}"
        )
    };
    let answer = gql(&app, None, &page(20), json!({})).await;
    let edges = answer["data"]["search"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 20);
    for edge in edges {
        let node = &edge["node"];
        assert_eq!(node["host"]["id"], hosts[node["id"].as_str().unwrap()]);
    }
    let two = statements_of(&app, &page(2)).await;
    let twenty = statements_of(&app, &page(20)).await;
    // The search, then one batch of hosts: the same for 2 or 20 listings.
    assert_eq!(
        twenty, two,
        "a page of 20 cost {twenty} statements, of 2 {two}"
    );
    assert!(twenty <= 2.0, "{twenty} statements");
}

pub(crate) fn gql_input(fields: &Value) -> Value {
    let mut camel = serde_json::Map::new();
    for (k, v) in fields.as_object().unwrap() {
        let mut name = String::new();
        let mut upper = false;
        for c in k.chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                name.extend(c.to_uppercase());
                upper = false;
            } else {
                name.push(c);
            }
        }
        camel.insert(name, v.clone());
    }
    Value::Object(camel)
}

async fn host_mutations_and_listing_reads_match_rest_and_refuse_the_wrong_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, host) = app.signed_in("host").await;
    let (_, other_host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let listing = app
        .create_listing(&host, json!({"price_per_night": 10_000}))
        .await;
    let id = listing.to_string();

    // updateListing: the wrong host, bad input, then the change.
    let update = "mutation($id: ID!, $input: ListingFields!) { updateListing(id: $id, input: $input) { id title maxGuests } }";
    let vars = |fields: Value| json!({"id": id, "input": gql_input(&fields)});
    let answer = gql(
        &app,
        Some(&other_host),
        update,
        vars(json!({"title": "Mine now"})),
    )
    .await;
    assert_eq!(code(&answer), "forbidden", "{answer}");
    let answer = gql(&app, Some(&host), update, vars(json!({"max_guests": 0}))).await;
    assert_eq!(code(&answer), "validation_failed");
    assert_eq!(
        answer["errors"][0]["extensions"]["details"][0]["field"],
        "max_guests"
    );
    let answer = gql(
        &app,
        Some(&host),
        update,
        vars(json!({"title": "Sea view loft"})),
    )
    .await;
    assert_eq!(
        answer["data"]["updateListing"]["title"], "Sea view loft",
        "{answer}"
    );
    let rest = app.get_ok(&format!("/api/v1/properties/{id}"), &host).await;
    assert_eq!(rest["title"], "Sea view loft");

    // setPricing, and Listing.pricing as REST's pricing.
    let set = "mutation($id: ID!, $input: PricingFields!) { setPricing(propertyId: $id, input: $input) { pricing { weekendPrice weeklyDiscountPct taxRateBp serviceFeeBp } } }";
    let pricing = json!({"id": id, "input": {"weekendPrice": 14_000, "weeklyDiscountPct": 10}});
    let answer = gql(&app, Some(&other_host), set, pricing.clone()).await;
    assert_eq!(code(&answer), "forbidden");
    let bad = json!({"id": id, "input": {"extraGuestFee": 500}});
    let answer = gql(&app, Some(&host), set, bad).await;
    assert_eq!(
        answer["errors"][0]["extensions"]["details"][0]["field"],
        "extra_guest_after"
    );
    let answer = gql(&app, Some(&host), set, pricing).await;
    let got = &answer["data"]["setPricing"]["pricing"];
    let rest = app
        .get_ok(&format!("/api/v1/properties/{id}/pricing"), &host)
        .await;
    assert_eq!(got["weekendPrice"], rest["weekend_price"], "{answer}");
    assert_eq!(got["weeklyDiscountPct"], rest["weekly_discount_pct"]);
    assert_eq!(got["serviceFeeBp"], rest["service_fee_bp"]);

    // blockNights and removeBlock.
    let block = "mutation($id: ID!, $a: String!, $b: String!) { blockNights(propertyId: $id, start: $a, end: $b, reason: \"paint\") { id start end reason } }";
    let nights = json!({"id": id, "a": day(30), "b": day(32)});
    let answer = gql(&app, Some(&guest), block, nights.clone()).await;
    assert_eq!(code(&answer), "forbidden");
    let backwards = json!({"id": id, "a": day(32), "b": day(30)});
    let answer = gql(&app, Some(&host), block, backwards).await;
    assert_eq!(code(&answer), "validation_failed");
    let answer = gql(&app, Some(&host), block, nights).await;
    let blocked = &answer["data"]["blockNights"];
    assert_eq!(
        (blocked["start"].clone(), blocked["reason"].clone()),
        (json!(day(30)), json!("paint")),
        "{answer}"
    );
    let block_id = blocked["id"].as_str().unwrap().to_owned();

    // Availability and a quote, the same as REST's.
    let (from, to) = (day(28), day(35));
    let read = "query($id: ID!, $from: String!, $to: String!, $a: String!, $b: String!) { listing(id: $id) { availability(from: $from, to: $to) { from to currency unavailable { start end kind } prices { date amount rate } } quote(checkIn: $a, checkOut: $b, guests: 2) { bookable refusal total lines { kind amount } nights { date amount } } } }";
    let answer = gql(
        &app,
        None,
        read,
        json!({"id": id, "from": from, "to": to, "a": day(29), "b": day(31)}),
    )
    .await;
    let l = &answer["data"]["listing"];
    let availability = format!("/api/v1/properties/{id}/availability?from={from}&to={to}");
    let rest = app.get_ok(&availability, &guest).await;
    assert_eq!(
        l["availability"]["unavailable"],
        json!([{"start": day(30), "end": day(32), "kind": "BLOCKED"}]),
        "{answer}"
    );
    let prices: Vec<_> = rest["prices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["date"].clone(), p["amount"].clone()))
        .collect();
    let graph: Vec<_> = l["availability"]["prices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["date"].clone(), p["amount"].clone()))
        .collect();
    assert_eq!(graph, prices);
    let quote = format!(
        "/api/v1/properties/{id}/quote?check_in={}&check_out={}&guests=2",
        day(29),
        day(31)
    );
    let rest = app.get_ok(&quote, &guest).await;
    assert_eq!(l["quote"]["total"], rest["total"]);
    assert_eq!(l["quote"]["bookable"], false);
    assert_eq!(l["quote"]["refusal"], rest["refusal"]);
    assert_eq!(
        l["quote"]["lines"].as_array().unwrap().len(),
        rest["lines"].as_array().unwrap().len()
    );
    let answer = gql(
        &app,
        None,
        read,
        json!({"id": id, "from": to, "to": from, "a": day(29), "b": day(31)}),
    )
    .await;
    assert_eq!(code(&answer), "validation_failed");

    let unblock = "mutation($id: ID!, $b: ID!) { removeBlock(propertyId: $id, blockId: $b) }";
    let answer = gql(
        &app,
        Some(&other_host),
        unblock,
        json!({"id": id, "b": block_id}),
    )
    .await;
    assert_eq!(code(&answer), "forbidden");
    let answer = gql(&app, Some(&host), unblock, json!({"id": id, "b": block_id})).await;
    assert_eq!(answer["data"]["removeBlock"], true, "{answer}");
    assert!(app.live_claims(listing).await.is_empty());

    // changeBooking: the guest's alone.
    let booking = app.booked(&guest, listing, &day(40), &day(42)).await;
    let change = "mutation($id: ID!, $b: String) { changeBooking(id: $id, checkOut: $b) { id checkIn checkOut status total } }";
    let answer = gql(
        &app,
        Some(&other_host),
        change,
        json!({"id": booking.to_string(), "b": day(43)}),
    )
    .await;
    let rest = app
        .patch(&format!("/api/v1/bookings/{booking}"))
        .bearer_auth(&other_host)
        .json(&json!({"check_out": day(43)}))
        .send()
        .await
        .unwrap();
    let rest_code = rest.json::<Value>().await.unwrap()["error"]["code"].clone();
    assert_eq!(json!(code(&answer)), rest_code);
    let answer = gql(
        &app,
        Some(&guest),
        change,
        json!({"id": booking.to_string(), "b": "43"}),
    )
    .await;
    assert_eq!(code(&answer), "validation_failed");
    let answer = gql(
        &app,
        Some(&guest),
        change,
        json!({"id": booking.to_string(), "b": day(43)}),
    )
    .await;
    let changed = &answer["data"]["changeBooking"];
    assert_eq!(changed["checkOut"], day(43), "{answer}");
    let rest = app
        .get_ok(&format!("/api/v1/bookings/{booking}"), &guest)
        .await;
    assert_eq!(
        (rest["check_out"].clone(), rest["total"].clone()),
        (changed["checkOut"].clone(), changed["total"].clone())
    );

    // Reviews: not found for a review that is not there, signed out refused.
    let edit = "mutation($id: ID!) { editReview(id: $id, input: {rating: 4}) { id } }";
    let answer = gql(&app, Some(&guest), edit, json!({"id": "987654"})).await;
    assert_eq!(code(&answer), "not_found");
    let reply = "mutation($id: ID!) { replyToReview(id: $id, comment: \"thanks\") { id } }";
    let answer = gql(&app, None, reply, json!({"id": "987654"})).await;
    assert_eq!(code(&answer), "unauthorized");
}
