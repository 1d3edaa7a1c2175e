//! The live calendar page at `/`, in a real headless Chromium driven over
//! WebDriver (Debian's `chromium` and `chromium-driver`): it shows a month,
//! and dates turn taken and free as bookings happen elsewhere, no reload.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, day, services_required};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Option<Self> {
        if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists()
        {
            assert!(
                !services_required(),
                "chromium and chromium-driver are not installed and services are required (.ci/services installs them)"
            );
            eprintln!("SKIPPED calendar page test: chromium or chromedriver is not installed");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let res: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {res}"))
            .to_owned();
        Some(Self {
            child,
            base,
            session,
            http,
            _profile: profile,
        })
    }

    async fn command(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}/{path}", self.base, self.session);
        let res: Value = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        res["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.command("url", json!({"url": url})).await;
    }

    /// Runs `script` in the page and returns what it returns.
    async fn eval(&self, script: &str) -> Value {
        self.command("execute/sync", json!({"script": script, "args": []}))
            .await
    }

    /// Waits until `script` returns `want` (15 s at most).
    async fn wait_for(&self, script: &str, want: Value) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.eval(script).await;
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{script} stayed {got}, wanted {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[actix_web::test]
async fn the_calendar_page_changes_live_as_bookings_happen() {
    let Some(browser) = Driver::start().await else {
        return;
    };
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (_, host) = app.signed_in("host").await;
    let (_, guest) = app.signed_in("guest").await;
    let id = app
        .create_listing(&host, json!({"title": "Harbour cottage"}))
        .await;
    let (check_in, night_two, check_out) = (day(20), day(21), day(22));
    let month = &check_in[..7];

    browser
        .open(&app.url(&format!("/?property={id}&month={month}")))
        .await;
    let status = "return document.getElementById('status').dataset.state";
    browser.wait_for(status, json!("live")).await;
    let cell = |date: &str| {
        format!("return document.querySelector('[data-date=\"{date}\"]').dataset.state")
    };
    browser.wait_for(&cell(&check_in), json!("free")).await;
    // The listing picker lists it.
    let options = browser
        .eval("return Array.from(document.querySelectorAll('#listing option')).map(o => o.textContent)")
        .await;
    assert!(options.to_string().contains("Harbour cottage"), "{options}");

    // Booked from outside the page: both nights turn held, the checkout day stays free.
    let booking = app.booked(&guest, id, &check_in, &check_out).await;
    browser.wait_for(&cell(&check_in), json!("held")).await;
    browser.wait_for(&cell(&night_two), json!("held")).await;
    if check_out.starts_with(month) {
        browser.wait_for(&cell(&check_out), json!("free")).await;
    }
    // Cancelled: free again. Blocked by the host: blocked.
    app.cancel(&guest, booking).await;
    browser.wait_for(&cell(&check_in), json!("free")).await;
    let block = app.block(&host, id, &night_two, &check_out).await;
    browser.wait_for(&cell(&night_two), json!("blocked")).await;
    app.unblock(&host, id, block).await;
    browser.wait_for(&cell(&night_two), json!("free")).await;
    // It never reloaded: the page still holds the first connection's state.
    let seq = browser
        .eval("return document.getElementById('seq').dataset.seq")
        .await;
    assert_eq!(seq, json!("4"));
    let url = format!("{}/session/{}", browser.base, browser.session);
    let _ = browser.http.delete(url).send().await;
}
