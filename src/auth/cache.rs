//! Sign-ins remembered: a token that the database said was live, with its
//! user and role, is answered from memory for up to `ROOST_TOKEN_CACHE_SECS`
//! instead of a query per request.
//!
//! A revocation takes effect on every node within [`TRUST`]:
//! - here at once: sign-out, a password change, a role change and a
//!   deactivation forget the user's tokens after they commit
//!   ([`crate::state::AppState::user_changed`]);
//! - on other nodes at once through Redis (the word travels with calendar
//!   events), and in any case through the watch: every [`WATCH_EVERY`] each
//!   node reads which users had a token revoked or their row changed since
//!   its last read, and forgets them. Memory answers only while the last
//!   successful read started less than [`TRUST`] ago, so a node that cannot
//!   read (its database is away) stops trusting what it remembers.
//!
//! Only live tokens are remembered; an unknown, revoked or expired token is
//! asked of the database every time.
//!
//! A token memory cannot answer is read once however many requests bring
//! it at the same moment ([`SignIns::check`]): the requests that ask while
//! its read is out share that read's answer. A crowd racing for one
//! listing with freshly signed-in tokens, or an app's burst of requests on
//! opening, costs a read per token, not per request (500 racers with 50
//! tokens had made 496 reads, and on SQLite they queued for its readers
//! ahead of the race).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};

use super::AuthUser;
use crate::db::{Db, Unavailable, tokens};
use crate::domain::UserId;
use crate::error::ApiError;
use crate::http::metrics::Metrics;

/// How often the watch reads the changes.
pub const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How long after the last successful watch memory may still answer: the
/// bound on a revocation's taking effect on a node that heard no word of it.
pub const TRUST: Duration = Duration::from_secs(1);
/// How far back each watch reads before its previous one started: covers
/// a transaction that took its timestamp before that read and committed
/// after it, and clocks of different nodes this far apart.
const OVERLAP: Duration = Duration::from_secs(10);
/// At most this many tokens remembered; beyond it, the oldest are dropped.
const CAPACITY: usize = 100_000;

struct Remembered {
    user: AuthUser,
    expires_at: DateTime<Utc>,
    remembered_at: Instant,
}

#[derive(Default)]
struct Memory {
    by_hash: HashMap<String, Remembered>,
    by_user: HashMap<UserId, HashSet<String>>,
    /// The changes (user, when) the watch has applied, so one it reads
    /// again in the overlap is not applied twice. Each change, not only a
    /// user's latest: one that commits late may carry an earlier time.
    applied: HashSet<(i64, NaiveDateTime)>,
    /// When the last successful watch started.
    watched: Option<Instant>,
}

pub struct SignIns {
    max_age: Duration,
    memory: Mutex<Memory>,
    /// Bumped by every forgetting: a database answer read before one is
    /// not remembered after it (it may be what was just revoked).
    generation: AtomicU64,
    /// The reads out now, by token hash.
    flights: Mutex<HashMap<String, Arc<Flight>>>,
    metrics: Metrics,
}

/// A database read's ticket: remember its answer only if nothing was
/// forgotten while it was out.
pub struct Ticket(u64);

/// What a token's check reads: the signed-in user and when the token
/// expires, or `None` when the token is not live.
pub type Found = Option<(AuthUser, DateTime<Utc>)>;

/// One token's database read, out now, and its answer once read (a failed
/// read's reason): shared by every request for the token that asks while
/// it is out, unless something was forgotten since it started.
struct Flight {
    ticket: u64,
    answer: tokio::sync::OnceCell<Result<Found, String>>,
}

/// Held by the request that started a flight: the flight leaves the
/// board when that request is done with it (answered, or dropped), so a
/// request asking after that reads afresh.
struct Landing<'a> {
    sign_ins: &'a SignIns,
    hash: &'a str,
    flight: Arc<Flight>,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        let mut flights = self.sign_ins.boarding();
        if flights
            .get(self.hash)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            flights.remove(self.hash);
        }
    }
}

impl SignIns {
    /// `max_age` zero: nothing is remembered.
    pub fn new(max_age: Duration, metrics: Metrics) -> Self {
        Self {
            max_age,
            memory: Mutex::new(Memory::default()),
            generation: AtomicU64::new(0),
            flights: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        // Every change below leaves the maps consistent before it can panic.
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn boarding(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Flight>>> {
        // An insert or a remove: consistent whenever it could panic.
        self.flights.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The signed-in user for the token `hash` (None: not live), from
    /// memory if it may answer, else from `read` of the database, or from
    /// the read of the same token another request has out now, if nothing
    /// was forgotten since that read started. A live answer read is
    /// remembered.
    pub async fn check<F, Fut>(
        &self,
        hash: String,
        now: DateTime<Utc>,
        read: F,
    ) -> Result<Option<AuthUser>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Found, ApiError>>,
    {
        if let Some(user) = self.recall(&hash, now) {
            return Ok(Some(user));
        }
        let (flight, landing) = self.board(&hash);
        let ran = AtomicBool::new(false);
        let mut failed = None;
        let answer = flight
            .answer
            .get_or_init(|| async {
                ran.store(true, Ordering::Relaxed);
                match read().await {
                    Ok(found) => {
                        if let Some((user, expires_at)) = &found {
                            self.remember(Ticket(flight.ticket), hash.clone(), user, *expires_at);
                        }
                        Ok(found)
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        failed = Some(e);
                        Err(reason)
                    }
                }
            })
            .await
            .clone();
        drop(landing);
        let by = if ran.load(Ordering::Relaxed) {
            "database"
        } else {
            "shared"
        };
        self.metrics.token_checks.with_label_values(&[by]).inc();
        match (answer, failed) {
            (_, Some(e)) => Err(e),
            (Ok(found), None) => Ok(found
                .filter(|(_, expires_at)| *expires_at > now)
                .map(|(user, _)| user)),
            (Err(reason), None) => Err(Unavailable::new(reason).into()),
        }
    }

    /// Joins the read of `hash` out now, if one started since the last
    /// forgetting, or starts one (and the [`Landing`] that ends it).
    fn board<'a>(&'a self, hash: &'a str) -> (Arc<Flight>, Option<Landing<'a>>) {
        let mut flights = self.boarding();
        let ticket = self.generation.load(Ordering::SeqCst);
        if let Some(flight) = flights.get(hash).filter(|f| f.ticket == ticket) {
            return (flight.clone(), None);
        }
        let flight = Arc::new(Flight {
            ticket,
            answer: tokio::sync::OnceCell::new(),
        });
        flights.insert(hash.to_owned(), flight.clone());
        let landing = Landing {
            sign_ins: self,
            hash,
            flight: flight.clone(),
        };
        (flight, Some(landing))
    }

    /// The signed-in user for this token hash, if memory may answer.
    pub fn recall(&self, hash: &str, now: DateTime<Utc>) -> Option<AuthUser> {
        if self.max_age.is_zero() {
            return None;
        }
        let memory = self.lock();
        let trusted = memory.watched.is_some_and(|at| at.elapsed() < TRUST);
        let found = memory
            .by_hash
            .get(hash)
            .filter(|r| trusted && r.expires_at > now && r.remembered_at.elapsed() < self.max_age);
        let user = found.map(|r| r.user.clone());
        drop(memory);
        if user.is_some() {
            self.metrics
                .token_checks
                .with_label_values(&["memory"])
                .inc();
        }
        user
    }

    /// Taken before asking the database.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::SeqCst))
    }

    /// What the database answered for `hash`, asked under `ticket`.
    pub fn remember(
        &self,
        ticket: Ticket,
        hash: String,
        user: &AuthUser,
        expires_at: DateTime<Utc>,
    ) {
        if self.max_age.is_zero() {
            return;
        }
        let mut memory = self.lock();
        // Checked under the lock that forgetting takes too.
        if self.generation.load(Ordering::SeqCst) != ticket.0 {
            return;
        }
        if memory.by_hash.len() >= CAPACITY {
            memory.drop_oldest(CAPACITY / 10);
        }
        if let Some(old) = memory.by_hash.remove(&hash) {
            memory.unlink(old.user.id, &hash);
        }
        memory
            .by_user
            .entry(user.id)
            .or_default()
            .insert(hash.clone());
        let remembered = Remembered {
            user: user.clone(),
            expires_at,
            remembered_at: Instant::now(),
        };
        memory.by_hash.insert(hash, remembered);
        self.metrics
            .token_cache_entries
            .set(memory.by_hash.len() as i64);
    }

    /// Forgets every token of `user` (signed out, password or role changed,
    /// deactivated).
    pub fn forget(&self, user: UserId) {
        let mut memory = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        for hash in memory.by_user.remove(&user).unwrap_or_default() {
            memory.by_hash.remove(&hash);
        }
        self.metrics
            .token_cache_entries
            .set(memory.by_hash.len() as i64);
    }

    /// Reads which users changed since the last watch and forgets them;
    /// every [`WATCH_EVERY`], for as long as the server runs.
    pub async fn watch(self: std::sync::Arc<Self>, db: Db) {
        if self.max_age.is_zero() {
            return;
        }
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut since = crate::db::now().naive_utc();
        loop {
            tick.tick().await;
            let (started, at) = (Instant::now(), crate::db::now().naive_utc());
            let from = since - OVERLAP;
            let read = db
                .run(move |mut conn| async move {
                    Ok::<_, ApiError>(tokens::users_changed_since(&mut conn, from).await?)
                })
                .await;
            match read {
                Ok(changed) => {
                    self.apply(&changed, from);
                    self.lock().watched = Some(started);
                    since = at;
                }
                Err(e) => tracing::warn!(error = %e, "reading revoked sign-ins failed"),
            }
        }
    }

    /// Forgets each user whose change this node has not applied yet.
    fn apply(&self, changed: &[(i64, NaiveDateTime)], from: NaiveDateTime) {
        let fresh: Vec<i64> = {
            let mut memory = self.lock();
            memory.applied.retain(|&(_, at)| at > from);
            changed
                .iter()
                .filter(|&&change| memory.applied.insert(change))
                .map(|&(user, _)| user)
                .collect()
        };
        for user in fresh {
            self.forget(UserId(user));
        }
    }
}

impl Memory {
    fn unlink(&mut self, user: UserId, hash: &str) {
        if let Some(hashes) = self.by_user.get_mut(&user) {
            hashes.remove(hash);
            if hashes.is_empty() {
                self.by_user.remove(&user);
            }
        }
    }

    /// Drops the `n` tokens remembered longest ago.
    fn drop_oldest(&mut self, n: usize) {
        let mut ages: Vec<(Instant, String)> = self
            .by_hash
            .iter()
            .map(|(hash, r)| (r.remembered_at, hash.clone()))
            .collect();
        ages.sort_unstable();
        for (_, hash) in ages.into_iter().take(n) {
            if let Some(r) = self.by_hash.remove(&hash) {
                self.unlink(r.user.id, &hash);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use super::*;
    use crate::domain::Role;

    fn sign_ins() -> SignIns {
        let sign_ins = SignIns::new(Duration::from_secs(60), Metrics::new().unwrap());
        sign_ins.lock().watched = Some(Instant::now());
        sign_ins
    }

    fn user(id: i64) -> AuthUser {
        AuthUser {
            id: UserId(id),
            role: Role::Guest,
            token_id: id * 10,
        }
    }

    fn later() -> DateTime<Utc> {
        crate::db::now() + chrono::Duration::hours(1)
    }

    #[test]
    fn a_remembered_token_is_answered_until_its_user_is_forgotten() {
        let s = sign_ins();
        s.remember(s.ticket(), "a".into(), &user(1), later());
        s.remember(s.ticket(), "b".into(), &user(1), later());
        s.remember(s.ticket(), "c".into(), &user(2), later());
        assert_eq!(
            s.recall("a", crate::db::now()).map(|u| u.id),
            Some(UserId(1))
        );
        s.forget(UserId(1));
        assert!(s.recall("a", crate::db::now()).is_none());
        assert!(s.recall("b", crate::db::now()).is_none());
        assert!(s.recall("c", crate::db::now()).is_some());
    }

    #[test]
    fn an_answer_read_before_a_forgetting_is_not_remembered_after_it() {
        let s = sign_ins();
        let ticket = s.ticket();
        s.forget(UserId(1));
        s.remember(ticket, "a".into(), &user(1), later());
        assert!(s.recall("a", crate::db::now()).is_none());
    }

    #[test]
    fn memory_answers_only_while_the_watch_is_current_and_the_token_unexpired() {
        let s = sign_ins();
        s.remember(s.ticket(), "a".into(), &user(1), later());
        assert!(s.recall("a", later()).is_none(), "expired by then");
        s.lock().watched = Instant::now().checked_sub(TRUST);
        assert!(s.recall("a", crate::db::now()).is_none(), "watch too old");
        s.lock().watched = None;
        assert!(s.recall("a", crate::db::now()).is_none(), "never watched");
    }

    #[test]
    fn the_watch_applies_each_change_once() {
        let s = sign_ins();
        let at = crate::db::now().naive_utc();
        let from = at - chrono::Duration::seconds(10);
        s.remember(s.ticket(), "a".into(), &user(1), later());
        s.apply(&[(1, at)], from);
        assert!(s.recall("a", crate::db::now()).is_none());
        s.remember(s.ticket(), "a".into(), &user(1), later());
        // The same change read again in the overlap: already applied.
        s.apply(&[(1, at)], from);
        assert!(s.recall("a", crate::db::now()).is_some());
        // A newer one is.
        s.apply(&[(1, at + chrono::Duration::seconds(1))], from);
        assert!(s.recall("a", crate::db::now()).is_none());
        // And so is one that committed late with an earlier time.
        s.remember(s.ticket(), "a".into(), &user(1), later());
        s.apply(&[(1, at - chrono::Duration::seconds(1))], from);
        assert!(s.recall("a", crate::db::now()).is_none());
    }

    fn checks(s: &SignIns, by: &str) -> u64 {
        s.metrics.token_checks.with_label_values(&[by]).get()
    }

    #[tokio::test]
    async fn a_crowd_asking_for_one_token_at_once_costs_one_read() {
        let s = sign_ins();
        let reads = AtomicU64::new(0);
        let now = crate::db::now();
        let asks = (0..50).map(|_| {
            s.check("a".into(), now, || async {
                reads.fetch_add(1, Ordering::SeqCst);
                // Out long enough for the others to ask.
                tokio::task::yield_now().await;
                Ok(Some((user(1), later())))
            })
        });
        let answers = futures_util::future::join_all(asks).await;
        assert!(
            answers
                .iter()
                .all(|a| matches!(a, Ok(Some(u)) if u.id == UserId(1)))
        );
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert_eq!((checks(&s, "database"), checks(&s, "shared")), (1, 49));
        // Landed, and remembered: the next ask is memory's.
        assert!(s.boarding().is_empty());
        assert!(s.recall("a", now).is_some());
    }

    #[tokio::test]
    async fn a_read_out_when_its_user_is_forgotten_is_neither_joined_nor_remembered() {
        let s = sign_ins();
        let now = crate::db::now();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let mut first = Box::pin(s.check("a".into(), now, || async {
            let _ = released.await;
            Ok(Some((user(1), later())))
        }));
        assert!(futures_util::poll!(&mut first).is_pending());
        // Signed out while the first read is out: a later ask reads afresh.
        s.forget(UserId(1));
        let mut second = Box::pin(s.check("a".into(), now, || async { Ok(None) }));
        assert!(
            matches!(futures_util::poll!(&mut second), Poll::Ready(Ok(None))),
            "joined the read from before"
        );
        let _ = release.send(());
        assert!(matches!(first.await, Ok(Some(_))));
        assert!(
            s.recall("a", now).is_none(),
            "remembered a read from before"
        );
        assert_eq!(checks(&s, "database"), 2);
    }

    #[tokio::test]
    async fn a_failed_read_fails_everyone_waiting_on_it_and_is_not_kept() {
        let s = sign_ins();
        let reads = AtomicU64::new(0);
        let now = crate::db::now();
        let failing = || async {
            reads.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Err::<Found, _>(ApiError::Unavailable(Unavailable::new("database away")))
        };
        let (a, b) = tokio::join!(
            s.check("a".into(), now, failing),
            s.check("a".into(), now, failing)
        );
        assert!(matches!(a, Err(ApiError::Unavailable(_))));
        assert!(matches!(b, Err(ApiError::Unavailable(_))));
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        let again = s.check("a".into(), now, failing).await;
        assert!(again.is_err());
        assert_eq!(reads.load(Ordering::SeqCst), 2, "the failure was kept");
    }

    #[test]
    fn a_full_memory_drops_its_oldest() {
        let s = sign_ins();
        for i in 0..CAPACITY + 1 {
            s.remember(s.ticket(), format!("t{i}"), &user(i as i64 % 7), later());
        }
        s.lock().watched = Some(Instant::now());
        assert!(s.recall("t0", crate::db::now()).is_none());
        let newest = format!("t{CAPACITY}");
        assert!(s.recall(&newest, crate::db::now()).is_some());
        let memory = s.lock();
        let linked: usize = memory.by_user.values().map(HashSet::len).sum();
        assert_eq!(linked, memory.by_hash.len());
    }

    #[test]
    fn a_zero_max_age_remembers_nothing() {
        let s = SignIns::new(Duration::ZERO, Metrics::new().unwrap());
        s.lock().watched = Some(Instant::now());
        s.remember(s.ticket(), "a".into(), &user(1), later());
        assert!(s.recall("a", crate::db::now()).is_none());
    }
}
