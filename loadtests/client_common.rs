//! What the load clients (`live-client`, `race-client`) share: signing a
//! guest in, finding listings open to a week's stay, settings from the
//! environment, percentiles.

use serde_json::{Value, json};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Seven nights, within every seeded listing's stay rules.
pub const NIGHTS: i64 = 7;

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, Error> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name}: '{v}' is not a valid value").into()),
        Err(_) => Ok(default),
    }
}

/// The `i`-th seeded guest's token (`guest{i}@demo.roost`), or a new
/// guest's against an unseeded server.
pub async fn guest_token(http: &reqwest::Client, api: &str, i: usize) -> Result<String, Error> {
    let login = |email: String, password: &'static str| async move {
        let res = http
            .post(format!("{api}/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        let body: Value = res.json().await?;
        Ok::<_, Error>(body["token"].as_str().map(str::to_owned))
    };
    if let Some(token) = login(format!("guest{i}@demo.roost"), "roost-demo-password").await? {
        return Ok(token);
    }
    let email = format!("load-client-{}-{i}@example.com", std::process::id());
    http.post(format!("{api}/auth/register"))
        .json(&json!({"email": email, "password": "load-client-password", "name": "load client"}))
        .send()
        .await?
        .error_for_status()?;
    login(email, "load-client-password")
        .await?
        .ok_or_else(|| "could not sign a guest in (are the rate limits off?)".into())
}

/// Up to `count` listings, newest first, that take a week's stay on any
/// day however far ahead (as lib.js's `openListingIds`).
pub async fn open_listings(
    http: &reqwest::Client,
    api: &str,
    count: usize,
) -> Result<Vec<i64>, Error> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    while ids.len() < count {
        let mut request = http
            .get(format!("{api}/properties"))
            .query(&[("sort", "newest"), ("limit", "100")]);
        if let Some(c) = &cursor {
            request = request.query(&[("cursor", c)]);
        }
        let page: Value = request.send().await?.error_for_status()?.json().await?;
        for item in page["items"].as_array().into_iter().flatten() {
            let days = |k: &str| item[k].as_array().map_or(0, Vec::len);
            let open = item["booking_window_days"] == 0
                && days("check_in_days") == 7
                && days("check_out_days") == 7
                && item["min_nights"].as_i64().is_some_and(|m| m <= NIGHTS)
                && item["max_nights"].as_i64().is_some_and(|m| m >= NIGHTS);
            if let (true, Some(id)) = (open, item["id"].as_i64())
                && ids.len() < count
            {
                ids.push(id);
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    Ok(ids)
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
