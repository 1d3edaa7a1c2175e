//! Contention measured by a client that keeps up: `RACERS` guests (default
//! 500) ask for the same listing's week at the same instant, `ROUNDS` times
//! (default 5, a listing each), as `contention.js` does. k6 runs 500 VUs'
//! JavaScript on the same two cores as the server and the database, so its
//! tail is partly its own; here each racer is a task on a multi-threaded
//! runtime with its own connection, opened and used once before the race,
//! released by one barrier, and it only notes the time its answer was read.
//!
//! Reported, as one JSON line on stdout (or to `OUT`): per round the
//! winners (exactly one is right), the wrong answers (anything but 201
//! or 409) and the slowest answer, and over every request p50, p95, p99 and max, from just before
//! the request is sent to its whole answer read.
//!
//!   BASE_URL=http://127.0.0.1:18080 cargo run --release --example race-client
//!
//! Needs listings (`roost seed`) and the rate limits off. `GUESTS` (default
//! 50) guests sign in (the seeded ones, or new ones) and share the racers; the
//! listings are those after the first `SKIP_LISTINGS` (default 10,030) in
//! `newest` order, clear of booking.js's, contention.js's and live-client's.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tokio::sync::Barrier;

#[path = "client_common.rs"]
mod common;
use common::{Error, NIGHTS, env_or, guest_token, open_listings, percentile};

/// One racer's answer: its status and how long it took.
struct Answer {
    status: u16,
    ms: f64,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let base = env_or("BASE_URL", "http://127.0.0.1:8080".to_owned())?;
    let api = format!("{}/api/v1", base.trim_end_matches('/'));
    let racers: usize = env_or("RACERS", 500)?;
    let rounds: usize = env_or("ROUNDS", 5)?;
    let guests: usize = env_or("GUESTS", 50)?;
    let skip: usize = env_or("SKIP_LISTINGS", 10_030)?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos() as i64;
    let start_day: i64 = env_or("START_DAY", 400 + (seed % 100) * 200)?;

    let http = reqwest::Client::new();
    let mut tokens = Vec::with_capacity(guests);
    for i in 0..guests {
        tokens.push(guest_token(&http, &api, i).await?);
    }
    let listings = open_listings(&http, &api, skip + rounds).await?;
    let listings = listings
        .get(skip..)
        .filter(|l| l.len() >= rounds)
        .ok_or("not enough listings open to a week's stay")?
        .to_vec();

    // Each racer's own client and connection, opened before the race.
    let mut clients = Vec::with_capacity(racers);
    for _ in 0..racers {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        client
            .get(format!("{base}/healthz"))
            .send()
            .await?
            .error_for_status()?;
        clients.push(client);
    }

    let today = chrono::Utc::now().date_naive();
    let day = |d: i64| (today + chrono::Duration::days(d)).to_string();
    let mut answers: Vec<Answer> = Vec::with_capacity(racers * rounds);
    let mut rounds_report = Vec::with_capacity(rounds);
    for &listing in listings.iter().take(rounds) {
        let body = Arc::new(json!({
            "property_id": listing,
            "check_in": day(start_day),
            "check_out": day(start_day + NIGHTS),
            "guests": 1,
        }));
        let barrier = Arc::new(Barrier::new(racers + 1));
        let mut tasks = Vec::with_capacity(racers);
        for (i, client) in clients.iter().enumerate() {
            let (client, body, barrier) = (client.clone(), body.clone(), barrier.clone());
            let (url, token) = (format!("{api}/bookings"), tokens[i % tokens.len()].clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let sent = Instant::now();
                let res = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&*body)
                    .send()
                    .await?;
                let status = res.status().as_u16();
                res.bytes().await?;
                let ms = sent.elapsed().as_secs_f64() * 1000.0;
                Ok::<_, Error>(Answer { status, ms })
            }));
        }
        barrier.wait().await;
        let (mut wins, mut losses, mut wrong, mut slowest) = (0, 0, 0, 0.0f64);
        for task in tasks {
            let answer = task.await??;
            match answer.status {
                201 => wins += 1,
                409 => losses += 1,
                _ => wrong += 1,
            }
            slowest = slowest.max(answer.ms);
            answers.push(answer);
        }
        rounds_report.push(
            json!({"listing": listing, "wins": wins, "losses": losses, "wrong": wrong,
                "max_ms": (slowest * 100.0).round() / 100.0}),
        );
    }

    let mut ms: Vec<f64> = answers.iter().map(|a| a.ms).collect();
    ms.sort_by(f64::total_cmp);
    let round2 = |v: f64| (v * 100.0).round() / 100.0;
    let report = json!({
        "racers": racers,
        "rounds": rounds_report,
        "requests": ms.len(),
        "p50_ms": round2(percentile(&ms, 50.0)),
        "p95_ms": round2(percentile(&ms, 95.0)),
        "p99_ms": round2(percentile(&ms, 99.0)),
        "max_ms": round2(ms.last().copied().unwrap_or(0.0)),
        "one_winner_each_round": rounds_report.iter().all(|r| r["wins"] == 1 && r["wrong"] == 0),
    });
    match std::env::var("OUT") {
        Ok(path) => std::fs::write(path, format!("{report}\n"))?,
        Err(_) => println!("{report}"),
    }
    Ok(())
}
