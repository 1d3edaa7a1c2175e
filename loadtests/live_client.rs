//! Live delivery measured by a client that keeps up: `SOCKETS` websockets
//! (default 1,000) each follow `LISTINGS` listings (default 20), and while
//! bookings are made on them every `BOOK_EVERY_MS` for `BOOK_FOR_MS`, every
//! socket stamps each event the moment its frame is read. k6 runs a VU's
//! JavaScript one callback at a time, so its tail is partly its own; here
//! each socket is a task of its own on a multi-threaded runtime, does
//! nothing with a frame but parse it and note the time, and no figure is
//! computed until the run is over.
//!
//! Reported: for each booking, the time from its 201 being read to its
//! event on each socket (an event read before the 201 counts 0 ms), and
//! from the request being sent; events lost (a socket that never saw a
//! booking's event), seq gaps, and sockets not at the seq a fresh snapshot
//! gives at the end. One JSON line goes to stdout (or to `OUT`).
//!
//!   cargo run --release --example live-client                # against :8080
//!   BASE_URL=http://127.0.0.1:18080 SOCKETS=1000 cargo run --release --example live-client
//!
//! The server needs `ROOST_WS_MAX_CONNECTIONS_PER_IP` above `SOCKETS`, the
//! rate limits off, and listings (`roost seed`).
//!
//! `ECHO=1` measures the ceiling instead: the same client against a bare
//! websocket server started in this process, which answers each subscribe
//! with an empty snapshot and, for each "booking" (no HTTP, no database: a
//! frame shaped like Roost's `booking_held` event, made on the same
//! schedule), sends that frame to every socket. What it reports is what
//! this machine, this client and websockets alone allow.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

#[path = "client_common.rs"]
mod common;
use common::{Error, NIGHTS, env_or, guest_token, open_listings, percentile};

/// How long after the last booking every event should have arrived.
const GRACE: Duration = Duration::from_secs(3);

struct Config {
    base: String,
    sockets: usize,
    listings: usize,
    skip: usize,
    book_every: Duration,
    book_for: Duration,
    start_day: i64,
    out: Option<String>,
    echo: bool,
}

impl Config {
    fn from_env() -> Result<Self, Error> {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos() as i64;
        Ok(Self {
            base: env_or("BASE_URL", "http://127.0.0.1:8080".to_owned())?
                .trim_end_matches('/')
                .to_owned(),
            sockets: env_or("SOCKETS", 1000)?,
            listings: env_or("LISTINGS", 20)?,
            // The listings booking.js and contention.js use come first in
            // `newest` order: live bookings go on the ones after them.
            skip: env_or("SKIP_LISTINGS", 10_005)?,
            book_every: Duration::from_millis(env_or("BOOK_EVERY_MS", 50)?),
            book_for: Duration::from_millis(env_or("BOOK_FOR_MS", 30_000)?),
            // Far beyond the seeded bookings, and most likely not a date an
            // earlier run against the same database held (as lib.js).
            start_day: env_or("START_DAY", 400 + (seed % 100) * 200)?,
            out: std::env::var("OUT").ok(),
            echo: env_or("ECHO", 0_u8)? == 1,
        })
    }
}

/// What one socket saw.
#[derive(Default)]
struct Seen {
    /// (booking id, when its `booking_held` frame was read)
    arrivals: Vec<(i64, Instant)>,
    events: u64,
    gaps: u64,
    errors: u64,
    seqs: HashMap<i64, i64>,
}

/// A booking the driver made.
struct Booked {
    id: i64,
    sent: Instant,
    answered: Instant,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut config = Config::from_env()?;
    let echo = if config.echo {
        let (base, frames) = echo_server().await?;
        config.base = base;
        Some(frames)
    } else {
        None
    };
    let http = reqwest::Client::new();
    let api = format!("{}/api/v1", config.base);
    let ws_url = format!("{}/ws", config.base.replacen("http", "ws", 1));
    let (token, listings) = match &echo {
        Some(_) => (String::new(), (1..=config.listings as i64).collect()),
        None => {
            let token = guest_token(&http, &api, 0).await?;
            let listings = open_listings(&http, &api, config.skip + config.listings).await?;
            let listings: Vec<i64> = listings
                .iter()
                .rev()
                .take(config.listings)
                .copied()
                .collect();
            (token, listings)
        }
    };
    if listings.is_empty() {
        return Err("no listings that take any week's stay: seed the server first".into());
    }

    // Every socket open and holding its snapshots before the clock starts.
    eprintln!(
        "opening {} sockets on {} listings",
        config.sockets,
        listings.len()
    );
    let (stop, stopped) = watch::channel(false);
    let (ready, mut readies) = mpsc::channel::<()>(config.sockets);
    let mut sockets = Vec::with_capacity(config.sockets);
    for _ in 0..config.sockets {
        let (url, listings) = (ws_url.clone(), listings.clone());
        let (ready, stopped) = (ready.clone(), stopped.clone());
        sockets.push(tokio::spawn(follow(url, listings, ready, stopped)));
    }
    drop(ready);
    let opened = Instant::now();
    for n in 0..config.sockets {
        if tokio::time::timeout(Duration::from_secs(60), readies.recv())
            .await
            .ok()
            .flatten()
            .is_none()
        {
            return Err(
                format!("only {n} of {} sockets got their snapshots", config.sockets).into(),
            );
        }
    }
    eprintln!(
        "{} sockets ready in {:?}; booking",
        config.sockets,
        opened.elapsed()
    );

    // Bookings on a schedule, each its own task so a slow answer does not
    // hold back the next.
    let mut ticker = tokio::time::interval(config.book_every);
    let mut requests = tokio::task::JoinSet::new();
    let until = Instant::now() + config.book_for;
    let mut n: i64 = 0;
    let mut echo_seqs = HashMap::new();
    while Instant::now() < until {
        ticker.tick().await;
        let listing = listings[(n as usize) % listings.len()];
        let round = n / listings.len() as i64;
        let start = config.start_day + round * NIGHTS;
        n += 1;
        if let Some(frames) = &echo {
            // The frame a booking's event would be, with no booking behind it.
            let sent = Instant::now();
            echo_seqs.insert(listing, round + 1);
            let _ = frames.send(echo_frame(listing, round + 1, n, start).into());
            requests.spawn(async move {
                Ok(Booked {
                    id: n,
                    sent,
                    answered: sent,
                })
            });
            continue;
        }
        let (http, api, token) = (http.clone(), api.clone(), token.clone());
        requests.spawn(async move { book(&http, &api, &token, listing, start).await });
    }
    let mut booked = Vec::new();
    let mut failed = 0_u64;
    while let Some(result) = requests.join_next().await {
        match result? {
            Ok(b) => booked.push(b),
            Err(e) => {
                failed += 1;
                eprintln!("booking: {e}");
            }
        }
    }
    tokio::time::sleep(GRACE).await;

    // The truth at the end: a fresh socket's snapshots (against the echo,
    // the seqs it sent).
    let truth = if echo.is_some() {
        stop.send(true)?;
        Seen {
            seqs: echo_seqs,
            ..Seen::default()
        }
    } else {
        let (truth_ready, mut truth_readies) = mpsc::channel(1);
        let (truth_stop, truth_stopped) = watch::channel(false);
        let truth = tokio::spawn(follow(
            ws_url.clone(),
            listings.clone(),
            truth_ready,
            truth_stopped,
        ));
        truth_readies.recv().await;
        stop.send(true)?;
        truth_stop.send(true)?;
        truth.await??
    };
    let mut seen = Vec::with_capacity(sockets.len());
    for socket in sockets {
        seen.push(socket.await??);
    }
    let report = report(&config, &booked, failed, &seen, &truth);
    println!("{report}");
    if let Some(path) = &config.out {
        std::fs::write(path, format!("{report}\n"))?;
    }
    Ok(())
}

/// Follows `listings` on one socket until told to stop: every frame read
/// is timed at once, and the rest of the work waits for the end.
async fn follow(
    url: String,
    listings: Vec<i64>,
    ready: mpsc::Sender<()>,
    mut stopped: watch::Receiver<bool>,
) -> Result<Seen, Error> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    for id in &listings {
        let frame = json!({"type": "subscribe", "property_id": id}).to_string();
        ws.send(Message::text(frame)).await?;
    }
    let mut seen = Seen::default();
    let mut ready = Some(ready);
    loop {
        let message = tokio::select! {
            message = ws.next() => message,
            _ = stopped.changed() => break,
        };
        let at = Instant::now();
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue, // pings are answered by the library
            Some(Err(e)) => return Err(e.into()),
            None => return Err("the server closed the socket".into()),
        };
        let frame: Value = serde_json::from_str(&text)?;
        let listing = frame["property_id"].as_i64().unwrap_or_default();
        let seq = frame["seq"].as_i64().unwrap_or_default();
        match frame["type"].as_str() {
            Some("snapshot") => {
                seen.seqs.insert(listing, seq);
                if seen.seqs.len() == listings.len()
                    && let Some(ready) = ready.take()
                {
                    let _ = ready.send(()).await;
                }
            }
            Some("event") => {
                seen.events += 1;
                if seen.seqs.get(&listing).is_some_and(|&last| seq != last + 1) {
                    seen.gaps += 1;
                }
                seen.seqs.insert(listing, seq);
                if frame["kind"] == "booking_held"
                    && let Some(id) = frame["entry_id"].as_i64()
                {
                    seen.arrivals.push((id, at));
                }
            }
            Some("error") => seen.errors += 1,
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    Ok(seen)
}

/// A frame the size and shape of Roost's `booking_held` event.
fn echo_frame(listing: i64, seq: i64, id: i64, start: i64) -> String {
    let today = chrono::Utc::now().date_naive();
    let day = |d: i64| (today + chrono::Duration::days(d)).to_string();
    let now = chrono::Utc::now();
    json!({
        "type": "event", "property_id": listing, "seq": seq, "kind": "booking_held",
        "entry_id": id, "check_in": day(start), "check_out": day(start + NIGHTS),
        "status": "pending", "busy": "held",
        "hold_expires_at": now + chrono::Duration::minutes(15), "at": now,
    })
    .to_string()
}

/// The bare server `ECHO=1` measures against: its address, and the
/// sender whose frames go to every socket.
async fn echo_server() -> Result<(String, broadcast::Sender<Arc<str>>), Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (frames, _) = broadcast::channel::<Arc<str>>(4096);
    let every = frames.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let frames = every.subscribe();
            tokio::spawn(async move {
                if let Err(e) = echo_socket(stream, frames).await {
                    eprintln!("echo socket: {e}");
                }
            });
        }
    });
    Ok((base, frames))
}

async fn echo_socket(
    stream: tokio::net::TcpStream,
    mut frames: broadcast::Receiver<Arc<str>>,
) -> Result<(), Error> {
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    loop {
        tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let asked: Value = serde_json::from_str(&text)?;
                    if asked["type"] == "subscribe" {
                        let snapshot = json!({"type": "snapshot",
                            "property_id": asked["property_id"], "seq": 0, "unavailable": []});
                        ws.send(Message::text(snapshot.to_string())).await?;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Ok(()),
            },
            frame = frames.recv() => match frame {
                Ok(frame) => ws.send(Message::text(frame.to_string())).await?,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    return Err(format!("lagged {n} frames").into());
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
        }
    }
}

async fn book(
    http: &reqwest::Client,
    api: &str,
    token: &str,
    listing: i64,
    start: i64,
) -> Result<Booked, Error> {
    let today = chrono::Utc::now().date_naive();
    let day = |d: i64| (today + chrono::Duration::days(d)).to_string();
    let sent = Instant::now();
    let res = http
        .post(format!("{api}/bookings"))
        .bearer_auth(token)
        .json(&json!({
            "property_id": listing,
            "check_in": day(start),
            "check_out": day(start + NIGHTS),
            "guests": 1,
        }))
        .send()
        .await?;
    let status = res.status();
    let body: Value = res.json().await?;
    let answered = Instant::now();
    match body["id"].as_i64() {
        Some(id) if status == reqwest::StatusCode::CREATED => Ok(Booked { id, sent, answered }),
        _ => Err(format!("{status}: {body}").into()),
    }
}

fn report(config: &Config, booked: &[Booked], failed: u64, seen: &[Seen], truth: &Seen) -> Value {
    let (mut from_201, mut from_sent) = (Vec::new(), Vec::new());
    let mut lost = 0_u64;
    for socket in seen {
        let arrived: HashMap<i64, Instant> = socket.arrivals.iter().copied().collect();
        for b in booked {
            match arrived.get(&b.id) {
                Some(at) => {
                    from_201.push(at.saturating_duration_since(b.answered).as_secs_f64() * 1e3);
                    from_sent.push(at.saturating_duration_since(b.sent).as_secs_f64() * 1e3);
                }
                None => lost += 1,
            }
        }
    }
    from_201.sort_by(f64::total_cmp);
    from_sent.sort_by(f64::total_cmp);
    let behind: i64 = seen
        .iter()
        .flat_map(|s| {
            truth
                .seqs
                .iter()
                .map(move |(id, seq)| (seq - s.seqs.get(id).copied().unwrap_or(0)).abs())
        })
        .sum();
    let summary = |v: &[f64]| {
        json!({
            "p50": percentile(v, 50.0), "p95": percentile(v, 95.0),
            "p99": percentile(v, 99.0), "max": v.last().copied().unwrap_or(0.0),
        })
    };
    json!({
        "echo": config.echo,
        "sockets": config.sockets,
        "listings": config.listings,
        "bookings": booked.len(),
        "booking_failures": failed,
        "book_for_s": config.book_for.as_secs_f64(),
        "bookings_per_s": booked.len() as f64 / config.book_for.as_secs_f64(),
        "events": seen.iter().map(|s| s.events).sum::<u64>(),
        "timed_deliveries": from_201.len(),
        "lost": lost,
        "gaps": seen.iter().map(|s| s.gaps).sum::<u64>(),
        "error_frames": seen.iter().map(|s| s.errors).sum::<u64>(),
        "seqs_behind_at_end": behind,
        "ms_from_201": summary(&from_201),
        "ms_from_request": summary(&from_sent),
    })
}
