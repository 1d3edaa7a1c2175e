//! The `roost` binary as an operator runs it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{Backend, TestDatabase, postgres_ready};

const BIN: &str = env!("CARGO_BIN_EXE_roost");

/// `roost` with a clean environment: only what a test sets.
pub(crate) fn roost(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ROOST_LOG_FORMAT", "json")
        .env("ROOST_BIND", "127.0.0.1:0")
        .env("ROOST_WORKERS", "1")
        // A node opens its whole pool as it starts: tests running several
        // nodes at once stay well inside PostgreSQL's 100 connections.
        .env("ROOST_DB_POOL_SIZE", "4")
        // Required with PostgreSQL; the embedded default picks it anyway.
        .env("ROOST_PAYMENTS", "sandbox");
    cmd
}

/// `roost` on `database_url`, its rate limits off: a node for tests that
/// sign in and book many times, or run several nodes on one database.
pub(crate) fn unlimited(dir: &std::path::Path, database_url: &str) -> Command {
    let mut cmd = roost(dir);
    cmd.env("DATABASE_URL", database_url)
        .env("ROOST_API_RATE_LIMIT", "0")
        .env("ROOST_AUTH_RATE_LIMIT", "0");
    cmd
}

pub(crate) struct Running {
    child: Child,
    pub port: u16,
}

impl Running {
    /// A client for this node's API.
    pub(crate) fn api(&self) -> crate::helpers::Api {
        crate::helpers::Api::new(format!("http://127.0.0.1:{}", self.port))
    }

    /// SIGKILL: no shutdown, no flush; waits until the process is gone.
    pub(crate) fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server and waits for its "roost listening" log line.
pub(crate) fn start(mut cmd: Command) -> Running {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn roost");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "roost listening"
            {
                let address = v["address"].as_str().unwrap_or_default().to_owned();
                let _ = tx.send(address);
            }
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("roost did not start listening");
    let port = address.rsplit(':').next().unwrap().parse().unwrap();
    Running { child, port }
}

fn http(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

fn get(port: u16, path: &str) -> String {
    http(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < within, "roost did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serves_on_the_embedded_default_with_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = roost(dir.path());
    cmd.env_remove("ROOST_PAYMENTS");
    let running = start(cmd);
    let ready = get(running.port, "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(ready.contains(r#""database":"ok""#), "{ready}");
    // Payments work on the embedded default: the sandbox, unasked.
    assert!(ready.contains(r#""payments":"sandbox""#), "{ready}");
    assert!(
        dir.path().join("roost.db").exists(),
        "the default store is roost.db in the working directory"
    );
}

#[test]
fn a_bad_setting_stops_startup_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("ROOST_API_RATE_LIMIT", "lots"),
        ("ROOST_BIND", "everywhere"),
        ("DATABASE_URL", "mysql://root@db/roost"),
    ] {
        let out = roost(dir.path()).env(var, value).output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(var), "{stderr}");
    }
    // Secrets in a bad URL are not echoed back.
    let out = roost(dir.path())
        .env("REDIS_URL", "http://:hunter2@cache")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("REDIS_URL") && !stderr.contains("hunter2"),
        "{stderr}"
    );
}

/// A SIGTERM the moment the server says it is listening stops it
/// gracefully (exit 0), not by the signal's default action.
#[test]
fn sigterm_as_soon_as_it_listens_is_a_graceful_stop() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let mut running = start(roost(dir.path()));
        terminate(&running.child);
        let status = wait_exit(&mut running.child, Duration::from_secs(30));
        assert!(status.success(), "{status:?}");
    }
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = start(roost(dir.path()));
    let body = r#"{"email":"late@example.com","password":"password123","name":"Late"}"#;
    let mut stream = TcpStream::connect(("127.0.0.1", running.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // Send the headers asking to continue; the server's `100 Continue` says
    // it has taken the request in, however loaded the machine. Then half
    // the body, then ask the server to stop.
    let head = format!(
        "POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        interim.push(byte[0]);
    }
    assert!(interim.starts_with(b"HTTP/1.1 100"), "{interim:?}");
    stream.write_all(&body.as_bytes()[..10]).unwrap();
    terminate(&running.child);

    // New connections are soon no longer accepted…
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", running.port)).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "still accepting 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // …but the request already in flight completes.
    stream.write_all(&body.as_bytes()[10..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let status = wait_exit(&mut running.child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
}

#[actix_web::test]
async fn user_create_makes_the_first_admin() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = roost(dir.path())
        .args([
            "user",
            "create",
            "--email",
            "Root@Example.com",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("created admin user root@example.com"));

    let url = roost::config::DatabaseUrl::Sqlite(dir.path().join("roost.db"));
    let db = roost::db::Db::connect(&url, Some(1)).unwrap();
    let mut conn = db.get().await.unwrap();
    let user = roost::db::users::find_by_email(&mut conn, "root@example.com")
        .await
        .unwrap()
        .expect("admin stored");
    assert_eq!(user.role, "admin");
    assert!(
        roost::auth::password::verify("correct horse battery".into(), user.password_hash)
            .await
            .unwrap()
    );

    // A second admin with the same email is refused.
    let out = roost(dir.path())
        .args([
            "user",
            "create",
            "--email",
            "root@example.com",
            "--role",
            "admin",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[test]
fn migrate_applies_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = roost(dir.path()).arg("migrate").output().unwrap();
    assert!(first.status.success());
    assert!(String::from_utf8_lossy(&first.stdout).contains("applied"));
    let second = roost(dir.path()).arg("migrate").output().unwrap();
    assert!(String::from_utf8_lossy(&second.stdout).contains("up to date"));
}

/// Two nodes started together on one fresh database both come up: migrations
/// run under a lock, once.
async fn two_processes_start_together(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let url = database.env_url();
    let spawn = || {
        let mut cmd = roost(dir.path());
        cmd.env("DATABASE_URL", &url);
        std::thread::spawn(move || start(cmd))
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    for node in [&a, &b] {
        let ready = get(node.port, "/readyz");
        assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    }
}

/// On PostgreSQL (production) nobody ships free bookings by accident: with
/// no `ROOST_PAYMENTS`, serving stops at once with one line naming it (exit
/// 2); migrating needs no gateway.
#[actix_web::test]
async fn postgres_will_not_serve_without_a_chosen_gateway() {
    if !postgres_ready("postgres_will_not_serve_without_a_chosen_gateway").await {
        return;
    }
    let database = TestDatabase::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let unchosen = || {
        let mut cmd = roost(dir.path());
        cmd.env_remove("ROOST_PAYMENTS")
            .env("DATABASE_URL", database.env_url());
        cmd
    };
    let out = unchosen().arg("migrate").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = unchosen().arg("serve").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("ROOST_PAYMENTS"), "{stderr}");
}

#[actix_web::test]
async fn two_processes_start_together_on_sqlite() {
    two_processes_start_together(Backend::Sqlite).await;
}

#[actix_web::test]
async fn two_processes_start_together_on_postgres() {
    if postgres_ready("two_processes_start_together_on_postgres").await {
        two_processes_start_together(Backend::Postgres).await;
    }
}

/// Invariant 3: a 2xx means committed. A user acknowledged with 201 survives
/// the process being killed outright right after, on either backend.
async fn an_acknowledged_write_survives_kill_9(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let url = database.env_url();
    let body = r#"{"email":"durable@example.com","password":"password123","name":"Durable"}"#;
    let register = format!(
        "POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut cmd = roost(dir.path());
    cmd.env("DATABASE_URL", &url);
    let mut running = start(cmd);
    let response = http(running.port, &register);
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    running.child.kill().unwrap(); // SIGKILL: no shutdown, no flush
    running.child.wait().unwrap();

    let mut cmd = roost(dir.path());
    cmd.env("DATABASE_URL", &url);
    let running = start(cmd);
    let body = r#"{"email":"durable@example.com","password":"password123"}"#;
    let login = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let response = http(running.port, &login);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[actix_web::test]
async fn an_acknowledged_write_survives_kill_9_on_sqlite() {
    an_acknowledged_write_survives_kill_9(Backend::Sqlite).await;
}

#[actix_web::test]
async fn an_acknowledged_write_survives_kill_9_on_postgres() {
    if postgres_ready("an_acknowledged_write_survives_kill_9_on_postgres").await {
        an_acknowledged_write_survives_kill_9(Backend::Postgres).await;
    }
}
