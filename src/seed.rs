//! `roost seed`: realistic demo data, the same for the same `--seed`: hosts,
//! guests, listings spread around real cities, and bookings in the past
//! (completed, some cancelled) and the future (confirmed, some cancelled).
//! Dates are laid out around the day it runs (or `--today`).
//!
//! Rows go in batches of one transaction each (multi-row INSERTs on
//! PostgreSQL; a statement a row on SQLite). Users and listings are
//! written one batch after another, so their ids are the same for the same
//! seed; bookings and reviews, the bulk, several batches at once on
//! PostgreSQL (its own cores work on them while the next is made), so
//! their ids vary but not what they say.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::time::Instant;

use anyhow::Context;
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::db::bulk;
use crate::db::calendar::{self, KIND_BOOKING, NewEntry};
use crate::db::properties::{self, NewProperty, PropertyFields, city_key};
use crate::db::rates::{self, NewRate};
use crate::db::reviews::{self, NewReview, RatingFields};
use crate::db::users::{self, NewUser};
use crate::db::{Backend, Db};
use crate::domain::cancellation::CancellationPolicy;
use crate::domain::pricing::{PriceList, Pricing, RateOverride};
use crate::domain::property::AMENITIES;
use crate::domain::review::{self, Ratings, Side, Totals};
use crate::domain::stay::{TimeZone, Weekdays};
use crate::domain::{Currency, Password, StayDates};
use crate::write_tx;

/// Every seeded account's password.
pub const DEMO_PASSWORD: &str = "roost-demo-password";

pub struct SeedOptions {
    pub seed: u64,
    pub properties: usize,
    pub bookings: usize,
    pub hosts: usize,
    pub guests: usize,
    pub today: NaiveDate,
}

/// (city, country, currency, latitude, longitude, IANA time zone)
const CITIES: [(&str, &str, &str, f64, f64, &str); 32] = [
    ("Paris", "FR", "EUR", 48.8566, 2.3522, "Europe/Paris"),
    ("Lyon", "FR", "EUR", 45.7640, 4.8357, "Europe/Paris"),
    (
        "Amsterdam",
        "NL",
        "EUR",
        52.3676,
        4.9041,
        "Europe/Amsterdam",
    ),
    ("Berlin", "DE", "EUR", 52.5200, 13.4050, "Europe/Berlin"),
    ("Munich", "DE", "EUR", 48.1351, 11.5820, "Europe/Berlin"),
    ("Lisbon", "PT", "EUR", 38.7223, -9.1393, "Europe/Lisbon"),
    ("Porto", "PT", "EUR", 41.1579, -8.6291, "Europe/Lisbon"),
    ("Barcelona", "ES", "EUR", 41.3874, 2.1686, "Europe/Madrid"),
    ("Madrid", "ES", "EUR", 40.4168, -3.7038, "Europe/Madrid"),
    ("Rome", "IT", "EUR", 41.9028, 12.4964, "Europe/Rome"),
    ("Florence", "IT", "EUR", 43.7696, 11.2558, "Europe/Rome"),
    ("Vienna", "AT", "EUR", 48.2082, 16.3738, "Europe/Vienna"),
    ("Prague", "CZ", "CZK", 50.0755, 14.4378, "Europe/Prague"),
    (
        "Copenhagen",
        "DK",
        "DKK",
        55.6761,
        12.5683,
        "Europe/Copenhagen",
    ),
    (
        "Stockholm",
        "SE",
        "SEK",
        59.3293,
        18.0686,
        "Europe/Stockholm",
    ),
    ("London", "GB", "GBP", 51.5072, -0.1276, "Europe/London"),
    ("Edinburgh", "GB", "GBP", 55.9533, -3.1883, "Europe/London"),
    ("Dublin", "IE", "EUR", 53.3498, -6.2603, "Europe/Dublin"),
    (
        "Reykjavik",
        "IS",
        "ISK",
        64.1466,
        -21.9426,
        "Atlantic/Reykjavik",
    ),
    (
        "New York",
        "US",
        "USD",
        40.7128,
        -74.0060,
        "America/New_York",
    ),
    (
        "San Francisco",
        "US",
        "USD",
        37.7749,
        -122.4194,
        "America/Los_Angeles",
    ),
    ("Austin", "US", "USD", 30.2672, -97.7431, "America/Chicago"),
    (
        "Montreal",
        "CA",
        "CAD",
        45.5019,
        -73.5674,
        "America/Toronto",
    ),
    (
        "Mexico City",
        "MX",
        "MXN",
        19.4326,
        -99.1332,
        "America/Mexico_City",
    ),
    (
        "Buenos Aires",
        "AR",
        "ARS",
        -34.6037,
        -58.3816,
        "America/Argentina/Buenos_Aires",
    ),
    (
        "Rio de Janeiro",
        "BR",
        "BRL",
        -22.9068,
        -43.1729,
        "America/Sao_Paulo",
    ),
    (
        "Cape Town",
        "ZA",
        "ZAR",
        -33.9249,
        18.4241,
        "Africa/Johannesburg",
    ),
    (
        "Marrakesh",
        "MA",
        "MAD",
        31.6295,
        -7.9811,
        "Africa/Casablanca",
    ),
    ("Tokyo", "JP", "JPY", 35.6762, 139.6503, "Asia/Tokyo"),
    ("Kyoto", "JP", "JPY", 35.0116, 135.7681, "Asia/Tokyo"),
    ("Bangkok", "TH", "THB", 13.7563, 100.5018, "Asia/Bangkok"),
    (
        "Sydney",
        "AU",
        "AUD",
        -33.8688,
        151.2093,
        "Australia/Sydney",
    ),
];

const KINDS: [&str; 8] = [
    "loft",
    "studio",
    "flat",
    "cottage",
    "townhouse",
    "cabin",
    "villa",
    "room",
];
const MOODS: [&str; 8] = [
    "Bright", "Quiet", "Cosy", "Airy", "Charming", "Modern", "Sunny", "Hidden",
];
const STREETS: [&str; 8] = [
    "Market Street",
    "Station Road",
    "Harbour Lane",
    "Park Avenue",
    "Old Town Square",
    "River Walk",
    "Hill Road",
    "Garden Row",
];

/// Each batch is one transaction. Several are written at once on
/// PostgreSQL, which works on them (on as many cores as it has) while the
/// seeder makes the next; SQLite has one writer, so one is written while
/// the next is made.
const USER_BATCH: usize = 4_000;
const PROPERTY_BATCH: usize = 3_000;
const BOOKING_BATCH: usize = 3_000;

/// Fills an empty database; returns a one-line summary.
pub async fn run(db: &Db, opts: SeedOptions) -> anyhow::Result<String> {
    let started = Instant::now();
    let existing = db
        .run(|mut conn| async move {
            Ok::<_, anyhow::Error>(properties::find(&mut conn, 1).await?.is_some())
        })
        .await?;
    anyhow::ensure!(
        opts.hosts > 0 && opts.guests > 0,
        "--hosts and --guests must be at least 1"
    );
    anyhow::ensure!(
        !existing,
        "the database already has listings; seed a fresh one"
    );
    // As a superuser on PostgreSQL, rows go in without the foreign keys'
    // per-row triggers, and each foreign key is checked once over its whole
    // table at the end ([`bulk`]).
    let skip_triggers = db
        .run(|mut conn| async move {
            Ok::<_, anyhow::Error>(bulk::may_skip_reference_triggers(&mut conn).await?)
        })
        .await?;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let password = Password::parse(DEMO_PASSWORD).map_err(|e| anyhow::anyhow!(e.message))?;
    let hash = crate::auth::password::hash(password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let base_time = opts.today.and_hms_opt(9, 0, 0).context("today")? - Duration::days(400);

    // Users: hosts first, then guests; their ids follow insertion order from
    // the first id the table hands out.
    let total_users = opts.hosts + opts.guests;
    let mut user_ids = Vec::with_capacity(total_users);
    for start in (0..total_users).step_by(USER_BATCH) {
        let end = (start + USER_BATCH).min(total_users);
        let hash = hash.clone();
        let rows: Vec<(String, String, &'static str)> = (start..end)
            .map(|i| {
                if i < opts.hosts {
                    (format!("host{i}@demo.roost"), format!("Host {i}"), "host")
                } else {
                    let g = i - opts.hosts;
                    (
                        format!("guest{g}@demo.roost"),
                        format!("Guest {g}"),
                        "guest",
                    )
                }
            })
            .collect();
        let ids = db
            .run(move |mut conn| async move {
                let new: Vec<NewUser> = rows
                    .iter()
                    .map(|(email, name, role)| NewUser {
                        email,
                        name,
                        password_hash: &hash,
                        role,
                        active: true,
                        created_at: base_time,
                        updated_at: base_time,
                    })
                    .collect();
                write_tx!(&mut conn, |c| users::insert_many(c, &new).await)
                    .map_err(anyhow::Error::from)
            })
            .await?;
        user_ids.extend(ids);
    }
    let (host_ids, guest_ids) = user_ids.split_at(opts.hosts);
    let mut phases = vec![("users", started.elapsed())];

    // Listings.
    #[derive(Clone)]
    struct Listing {
        host_id: i64,
        title: String,
        address: String,
        city: usize,
        latitude: f64,
        longitude: f64,
        price: i64,
        cleaning_fee: i64,
        max_guests: i64,
        min_nights: i64,
        max_nights: i64,
        amenities: i64,
        created_at: NaiveDateTime,
        pricing: Pricing,
        /// (advance notice, booking window, check-in days, check-out days)
        rules: (i64, i64, Weekdays, Weekdays),
        /// A season: (start, end, price, minimum nights).
        season: Option<(NaiveDate, NaiveDate, i64, Option<i64>)>,
        policy: CancellationPolicy,
        check_in_minute: i64,
    }
    let mut property_ids = Vec::with_capacity(opts.properties);
    let mut listings = Vec::with_capacity(opts.properties);
    for i in 0..opts.properties {
        let city = rng.random_range(0..CITIES.len());
        let (_, _, currency, lat, lon, _) = CITIES[city];
        let kind = KINDS[rng.random_range(0..KINDS.len())];
        let max_guests = match kind {
            "room" | "studio" => rng.random_range(1..=2),
            "villa" | "townhouse" => rng.random_range(4..=12),
            _ => rng.random_range(2..=6),
        };
        // Prices in minor units, scaled for currencies with many units.
        let scale = match currency {
            "JPY" | "ISK" => 100,
            "CZK" | "THB" | "MXN" | "ARS" | "ZAR" | "MAD" | "DKK" | "SEK" | "BRL" => 10,
            _ => 1,
        };
        let min_nights = *[1, 1, 1, 2, 2, 3, 7]
            .get(rng.random_range(0..7))
            .unwrap_or(&1);
        let mut amenities = 0i64;
        for bit in 0..AMENITIES.len() {
            if rng.random_bool(0.3) {
                amenities |= 1 << bit;
            }
        }
        let price = rng.random_range(40..400) * 100 * scale;
        listings.push(Listing {
            host_id: host_ids[i % host_ids.len()],
            title: format!(
                "{} {} in {}",
                MOODS[rng.random_range(0..MOODS.len())],
                kind,
                CITIES[city].0
            ),
            address: format!(
                "{} {}",
                rng.random_range(1..300),
                STREETS[rng.random_range(0..STREETS.len())]
            ),
            city,
            latitude: lat + rng.random_range(-0.08..0.08),
            longitude: lon + rng.random_range(-0.08..0.08),
            price,
            cleaning_fee: rng.random_range(0..60) * 100 * scale,
            max_guests,
            min_nights,
            max_nights: rng.random_range(14..=60).max(min_nights),
            amenities,
            created_at: base_time + Duration::minutes(i as i64),
            pricing: seed_pricing(&mut rng, price, scale, max_guests),
            rules: seed_rules(&mut rng),
            policy: CancellationPolicy::ALL[rng.random_range(0..CancellationPolicy::ALL.len())],
            check_in_minute: [14 * 60, 15 * 60, 15 * 60, 16 * 60][rng.random_range(0..4)],
            season: rng.random_bool(0.25).then(|| {
                let start = opts.today + Duration::days(rng.random_range(20..150));
                let end = start + Duration::days(rng.random_range(7..=21));
                let min = rng.random_bool(0.5).then_some(3);
                (start, end, price / 2 * 3, min)
            }),
        });
    }
    for chunk in listings.chunks(PROPERTY_BATCH) {
        let rows: Vec<Listing> = chunk.to_vec();
        let ids = db
            .run(move |mut conn| async move {
                let keys: Vec<String> = CITIES.iter().map(|c| city_key(c.0)).collect();
                let new: Vec<NewProperty> = rows
                    .iter()
                    .map(|l| NewProperty {
                        host_id: l.host_id,
                        created_at: l.created_at,
                        fields: PropertyFields {
                            title: &l.title,
                            description: "A seeded demo listing.",
                            address: &l.address,
                            city: CITIES[l.city].0,
                            city_key: &keys[l.city],
                            country: CITIES[l.city].1,
                            latitude: l.latitude,
                            longitude: l.longitude,
                            price_per_night: l.price,
                            currency: CITIES[l.city].2,
                            cleaning_fee: l.cleaning_fee,
                            max_guests: l.max_guests,
                            min_nights: l.min_nights,
                            max_nights: l.max_nights,
                            amenities: l.amenities,
                            advance_notice_days: l.rules.0,
                            booking_window_days: l.rules.1,
                            check_in_days: l.rules.2.mask(),
                            check_out_days: l.rules.3.mask(),
                            time_zone: CITIES[l.city].5,
                            cancellation_policy: l.policy.as_str(),
                            check_in_minute: l.check_in_minute,
                            updated_at: l.created_at,
                        },
                        pricing: l.pricing.into(),
                        seasons_end: l.season.map(|(_, end, _, _)| end),
                    })
                    .collect();
                write_tx!(&mut conn, |c| {
                    if skip_triggers {
                        bulk::skip_reference_triggers(c).await?;
                    }
                    let ids = properties::insert_many(c, &new).await?;
                    let seasons: Vec<NewRate> = ids
                        .iter()
                        .zip(&rows)
                        .filter_map(|(&property_id, l)| {
                            let (start, end, price, min_nights) = l.season?;
                            Some(NewRate {
                                property_id,
                                start_date: start,
                                end_date: end,
                                price,
                                min_nights,
                                created_at: l.created_at,
                            })
                        })
                        .collect();
                    rates::insert_many(c, &seasons).await?;
                    Ok::<_, diesel::result::Error>(ids)
                })
                .map_err(anyhow::Error::from)
            })
            .await?;
        property_ids.extend(ids);
    }
    phases.push(("listings", started.elapsed()));

    // Bookings: each listing's stays follow one another with gaps, half of
    // them before today, so no two live ones overlap.
    let per_listing = opts.bookings / opts.properties.max(1);
    let extra = opts.bookings % opts.properties.max(1);
    let now = opts.today.and_hms_opt(12, 0, 0).context("today")?;
    let price_list = |l: &Listing, currency: Currency| PriceList {
        currency,
        base_price: l.price,
        cleaning_fee: l.cleaning_fee,
        pricing: l.pricing,
        rates: l
            .season
            .iter()
            .map(|&(start, end, price, min_nights)| RateOverride {
                id: 0,
                start,
                end,
                price,
                min_nights,
            })
            .collect(),
        service_fee_bp: 0,
    };
    let mut batch = Vec::with_capacity(BOOKING_BATCH);
    let mut writes = Writes::new(db);
    for (i, l) in listings.iter().enumerate() {
        let count = per_listing + usize::from(i < extra);
        let mut day = opts.today - Duration::days((count as i64 * 9) / 2);
        for _ in 0..count {
            day += Duration::days(rng.random_range(0..=4));
            let nights = rng.random_range(l.min_nights..=l.max_nights.min(l.min_nights + 6));
            let check_in = day;
            let check_out = day + Duration::days(nights);
            day = check_out;
            let cancelled = rng.random_bool(0.08);
            let status = match (cancelled, check_out <= opts.today) {
                (true, _) => "cancelled",
                (false, true) => "completed",
                (false, false) => "confirmed",
            };
            let guest = guest_ids[rng.random_range(0..guest_ids.len())];
            let guests = rng.random_range(1..=l.max_guests);
            let stay = StayDates::from_stored(check_in, check_out);
            let total = Currency::parse(CITIES[l.city].2)
                .ok()
                .and_then(|currency| price_list(l, currency).quote(&stay, guests))
                .map_or(nights * l.price + l.cleaning_fee, |q| q.total);
            batch.push(SeedBooking {
                property_id: property_ids[i],
                status,
                check_in,
                check_out,
                guest,
                guests,
                nights,
                total,
                price: l.price,
                cleaning_fee: l.cleaning_fee,
                currency: CITIES[l.city].2,
                created_at: (check_in.and_hms_opt(10, 0, 0).unwrap_or(now)
                    - Duration::days(rng.random_range(3..60)))
                .min(now),
                reviews_close_at: (status == "completed").then(|| {
                    let zone = TimeZone::parse(CITIES[l.city].5).unwrap_or(TimeZone::UTC);
                    review::window_closes_at(check_out, zone, review::DEFAULT_WINDOW_DAYS)
                        .naive_utc()
                }),
            });
            if batch.len() == BOOKING_BATCH {
                writes
                    .add(write_bookings(
                        db,
                        std::mem::take(&mut batch),
                        skip_triggers,
                    ))
                    .await?;
            }
        }
    }
    writes.add(write_bookings(db, batch, skip_triggers)).await?;
    let mut written = 0;
    let mut completed = Vec::new();
    for stays in writes.finish().await? {
        written += stays.len();
        completed.extend(stays.into_iter().filter(|s| s.status == "completed"));
    }
    phases.push(("bookings", started.elapsed()));

    let host_of: HashMap<i64, i64> = property_ids
        .iter()
        .zip(&listings)
        .map(|(&id, l)| (id, l.host_id))
        .collect();
    let reviews = write_reviews(db, opts.seed, now, &host_of, completed, skip_triggers).await?;
    phases.push(("reviews", started.elapsed()));
    if skip_triggers {
        check_references(db).await?;
        phases.push(("foreign keys", started.elapsed()));
    }

    // Each phase's own time: the elapsed time at its end less the one before.
    let mut before = std::time::Duration::ZERO;
    let phases: Vec<String> = phases
        .into_iter()
        .map(|(name, at)| {
            let took = at - before;
            before = at;
            format!("{name} {:.1}s", took.as_secs_f64())
        })
        .collect();
    Ok(format!(
        "seeded {} hosts, {} guests, {} listings, {} bookings and {} reviews in {:.1?} ({}; seed {}; every password: {DEMO_PASSWORD})",
        opts.hosts,
        opts.guests,
        opts.properties,
        written,
        reviews,
        started.elapsed(),
        phases.join(", "),
        opts.seed,
    ))
}

/// Prices a host might set: weekend prices, fees above half the guests,
/// long-stay discounts, taxes; each on some of the listings.
fn seed_pricing(rng: &mut StdRng, price: i64, scale: i64, max_guests: i64) -> Pricing {
    let pick = |rng: &mut StdRng, p: f64| rng.random_bool(p);
    Pricing {
        weekend_price: pick(rng, 0.4).then(|| price / 100 * 120),
        extra_guest_fee: (max_guests > 2 && pick(rng, 0.3))
            .then(|| rng.random_range(10..30) * 100 * scale),
        extra_guest_after: None,
        weekly_discount_pct: pick(rng, 0.5).then(|| rng.random_range(5..=15)),
        monthly_discount_pct: pick(rng, 0.3).then(|| rng.random_range(15..=30)),
        tax_rate_bp: pick(rng, 0.6)
            .then(|| [500, 700, 1_000, 1_200, 2_000][rng.random_range(0..5)]),
    }
    .with_extra_after(max_guests / 2)
}

/// Rules a host might set: most take any stay; some want notice, a shorter
/// window, weekend arrivals or Sunday and Monday departures.
fn seed_rules(rng: &mut StdRng) -> (i64, i64, Weekdays, Weekdays) {
    let notice = if rng.random_bool(0.2) {
        rng.random_range(1..=3)
    } else {
        0
    };
    let window = if rng.random_bool(0.3) {
        [180, 365][rng.random_range(0..2)]
    } else {
        0
    };
    let days = |names: &[&str]| Weekdays::parse(names).unwrap_or(Weekdays::ALL);
    let arrive = if rng.random_bool(0.1) {
        days(&["fri", "sat"])
    } else {
        Weekdays::ALL
    };
    let leave = if rng.random_bool(0.1) {
        days(&["sun", "mon"])
    } else {
        Weekdays::ALL
    };
    (notice, window, arrive, leave)
}

/// Batch writes, started in order, at most a few at once; their answers in
/// the order they were started.
struct Writes<T> {
    in_flight: usize,
    pending: VecDeque<Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send>>>,
    done: Vec<T>,
}

impl<T> Writes<T> {
    fn new(db: &Db) -> Self {
        let in_flight = match db.backend() {
            Backend::Postgres => 4,
            Backend::Sqlite => 1,
        };
        Self {
            in_flight,
            pending: VecDeque::new(),
            done: Vec::new(),
        }
    }

    /// Takes a started write; with too many in flight, waits for the oldest.
    async fn add(
        &mut self,
        write: impl Future<Output = anyhow::Result<T>> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.pending.push_back(Box::pin(write));
        while self.pending.len() > self.in_flight {
            if let Some(oldest) = self.pending.pop_front() {
                self.done.push(oldest.await?);
            }
        }
        Ok(())
    }

    /// Every answer, once every write has finished.
    async fn finish(mut self) -> anyhow::Result<Vec<T>> {
        while let Some(oldest) = self.pending.pop_front() {
            self.done.push(oldest.await?);
        }
        Ok(self.done)
    }
}

struct SeedBooking {
    property_id: i64,
    status: &'static str,
    check_in: NaiveDate,
    check_out: NaiveDate,
    guest: i64,
    guests: i64,
    nights: i64,
    total: i64,
    price: i64,
    cleaning_fee: i64,
    currency: &'static str,
    created_at: NaiveDateTime,
    reviews_close_at: Option<NaiveDateTime>,
}

/// Starts writing `rows` (one transaction); the answer is what went in.
fn write_bookings(
    db: &Db,
    rows: Vec<SeedBooking>,
    skip_triggers: bool,
) -> impl Future<Output = anyhow::Result<Vec<calendar::Written>>> + Send + 'static {
    db.start(move |mut conn| async move {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let new: Vec<NewEntry<'static>> = rows
            .iter()
            .map(|b| NewEntry {
                property_id: b.property_id,
                kind: KIND_BOOKING,
                status: b.status,
                check_in: b.check_in,
                check_out: b.check_out,
                hold_expires_at: None,
                created_by: b.guest,
                guest_id: Some(b.guest),
                guests: Some(b.guests),
                nights: Some(b.nights),
                price_per_night: Some(b.price),
                cleaning_fee: Some(b.cleaning_fee),
                total: Some(b.total),
                currency: Some(b.currency),
                reason: None,
                created_at: b.created_at,
                updated_at: b.created_at,
                price_detail: None,
                reviews_close_at: b.reviews_close_at,
            })
            .collect();
        write_tx!(&mut conn, |c| {
            if skip_triggers {
                bulk::skip_reference_triggers(c).await?;
            }
            calendar::insert_many(c, new.clone()).await
        })
        .map_err(anyhow::Error::from)
    })
}

/// Every foreign key checked over its whole table, several at once: what
/// the triggers the seeder skipped would have checked row by row.
async fn check_references(db: &Db) -> anyhow::Result<()> {
    let keys = db
        .run(|mut conn| async move { Ok::<_, anyhow::Error>(bulk::foreign_keys(&mut conn).await?) })
        .await?;
    let mut checks = Writes::new(db);
    for key in keys {
        let check = db.start(move |mut conn| async move {
            let broken = bulk::is_broken(&mut conn, &key).await?;
            Ok::<_, anyhow::Error>(broken.then_some(key.name))
        });
        checks.add(check).await?;
    }
    let broken: Vec<String> = checks.finish().await?.into_iter().flatten().collect();
    anyhow::ensure!(
        broken.is_empty(),
        "seeded rows break foreign keys: {}",
        broken.join(", ")
    );
    Ok(())
}

/// What guests and hosts say, by overall rating (1 to 5).
const GUEST_SAYS: [&[&str]; 5] = [
    &["Not as described, and nobody answered our messages."],
    &[
        "The place was not clean when we arrived.",
        "Noisy at night; the photos flatter it.",
    ],
    &[
        "Fine for a night or two.",
        "Good location, but the flat needs some care.",
    ],
    &[
        "Comfortable and close to everything.",
        "Nice stay; the check-in was easy.",
        "Good value for the area.",
    ],
    &[
        "Spotless, quiet and exactly as described.",
        "A wonderful host and a lovely home.",
        "We would come back tomorrow.",
        "Everything we needed, and a great neighbourhood.",
    ],
];
const HOST_SAYS: [&[&str]; 5] = [
    &["House rules ignored; a deposit claim was needed."],
    &["Left the place in a poor state."],
    &["Fine guests, a little late at check-out."],
    &["Friendly and tidy, welcome back."],
    &["Perfect guests: clear communication, spotless on leaving."],
];

/// (booking, listing, side, author, subject, ratings, comment, written, published)
type SeedReview = (
    i64,
    i64,
    Side,
    i64,
    i64,
    Ratings,
    &'static str,
    NaiveDateTime,
    Option<NaiveDateTime>,
);

/// One stay's own random numbers, from the seed, its listing (whose ids
/// follow the order listings are written in, one batch at a time) and its
/// check-out (one completed stay per listing ends on a day). Booking ids do
/// not enter: batches of bookings are written several at once on
/// PostgreSQL, so which batch gets the lower ids varies from run to run.
fn stay_rng(seed: u64, listing: i64, check_out: NaiveDate) -> StdRng {
    let stay = ((listing as u64) << 32) ^ u64::from(check_out.num_days_from_ce().unsigned_abs());
    StdRng::seed_from_u64(seed ^ stay.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// An overall rating the way real ones fall: mostly 4 and 5.
fn seed_rating(rng: &mut StdRng) -> i64 {
    match rng.random_range(0..100) {
        0..2 => 1,
        2..5 => 2,
        5..13 => 3,
        13..40 => 4,
        _ => 5,
    }
}

/// Reviews of the `completed` stays (as their bookings were written: the
/// seeder reads nothing back), a page of stays at a time: most guests
/// and hosts write one, some days after check-out. A pair, or a lone one
/// whose window has closed by `now`, is published (at the later writing,
/// or at the window's close); the rest wait. The listings' and guests'
/// totals are written at the end, from the same reviews. Each stay draws
/// from its own generator ([`stay_rng`]), so its reviews are the same for
/// the same seed whatever ids its booking got.
async fn write_reviews(
    db: &Db,
    seed: u64,
    now: NaiveDateTime,
    host_of: &HashMap<i64, i64>,
    completed: Vec<calendar::Written>,
    skip_triggers: bool,
) -> anyhow::Result<usize> {
    const PAGE: usize = 3_000;
    let mut listing_totals: HashMap<i64, Totals> = HashMap::new();
    let mut guest_totals: HashMap<i64, Totals> = HashMap::new();
    let mut written = 0;
    let mut writes = Writes::new(db);
    for stays in completed.chunks(PAGE) {
        let mut rows: Vec<SeedReview> = Vec::new();
        for stay in stays {
            let (booking, listing, check_out) = (stay.id, stay.property_id, stay.check_out);
            let (Some(guest), Some(&host), Some(closes)) =
                (stay.guest_id, host_of.get(&listing), stay.reviews_close_at)
            else {
                continue;
            };
            let rng = &mut stay_rng(seed, listing, check_out);
            let written_at = |rng: &mut StdRng| {
                (check_out.and_hms_opt(9, 0, 0).unwrap_or(now)
                    + Duration::minutes(rng.random_range(0..(13 * 24 * 60))))
                .min(closes - Duration::minutes(1))
            };
            let mut pair = Vec::new();
            if rng.random_bool(0.75) {
                let rating = seed_rating(rng);
                let mut categories = [0; 6];
                for c in &mut categories {
                    *c = (rating + rng.random_range(-1..=1)).clamp(1, 5);
                }
                let says = GUEST_SAYS[(rating - 1) as usize];
                let ratings = Ratings {
                    rating,
                    categories: Some(categories),
                };
                let at = written_at(rng);
                pair.push((
                    Side::Guest,
                    guest,
                    host,
                    ratings,
                    says[rng.random_range(0..says.len())],
                    at,
                ));
            }
            if rng.random_bool(0.7) {
                let rating = seed_rating(rng).max(3);
                let says = HOST_SAYS[(rating - 1) as usize];
                let ratings = Ratings {
                    rating,
                    categories: None,
                };
                let at = written_at(rng);
                pair.push((
                    Side::Host,
                    host,
                    guest,
                    ratings,
                    says[rng.random_range(0..says.len())],
                    at,
                ));
            }
            pair.retain(|r| r.5 <= now);
            let published = match pair.len() {
                2 => Some(pair[0].5.max(pair[1].5)),
                1 if closes <= now => Some(closes),
                _ => None,
            };
            for (side, author, subject, ratings, says, at) in pair {
                if published.is_some() {
                    match side {
                        Side::Guest => listing_totals
                            .entry(listing)
                            .or_default()
                            .apply(&ratings, 1),
                        Side::Host => guest_totals.entry(subject).or_default().apply(&ratings, 1),
                    }
                }
                rows.push((
                    booking, listing, side, author, subject, ratings, says, at, published,
                ));
            }
        }
        written += rows.len();
        let write = db.start(move |mut conn| async move {
            let new: Vec<NewReview<'static>> = rows
                .iter()
                .map(
                    |&(booking, listing, side, author, subject, ratings, says, at, published)| {
                        NewReview {
                            booking_id: booking,
                            property_id: listing,
                            side: side.as_str(),
                            author_id: author,
                            subject_id: subject,
                            ratings: RatingFields::from(&ratings),
                            comment: says,
                            created_at: at,
                            updated_at: at,
                            published_at: published,
                        }
                    },
                )
                .collect();
            write_tx!(&mut conn, |c| {
                if skip_triggers {
                    bulk::skip_reference_triggers(c).await?;
                }
                reviews::insert_many(c, &new).await
            })
            .map_err(anyhow::Error::from)
        });
        writes.add(write).await?;
    }
    writes.finish().await?;
    let mut writes = Writes::new(db);
    for (of_listings, totals) in [(true, listing_totals), (false, guest_totals)] {
        let mut totals: Vec<(i64, Totals)> = totals.into_iter().collect();
        totals.sort_unstable_by_key(|t| t.0);
        for chunk in totals.chunks(1_000) {
            let chunk = chunk.to_vec();
            let write = db.start(move |mut conn| async move {
                write_tx!(&mut conn, |c| reviews::set_totals_many(
                    c,
                    of_listings,
                    &chunk
                )
                .await)
                .map_err(anyhow::Error::from)
            });
            writes.add(write).await?;
        }
    }
    writes.finish().await?;
    Ok(written)
}
