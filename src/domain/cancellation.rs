//! What cancelling a stay gives back: the listing's cancellation policy,
//! measured against its local check-in time, applied to the lines the
//! booking was sold at (README "Cancellation policies").
//!
//! The rules, for a guest who cancels at instant `now` a stay booked at
//! `booked_at` whose check-in is at `check_in` (the listing's local
//! check-in date and `check_in_time`, in its time zone):
//!
//! 1. **Grace**, whatever the policy: within 24 h of booking
//!    (`now − booked_at ≤ 24 h`) and with check-in at least 7 days away
//!    (`check_in − now ≥ 7 d`), everything is refunded.
//! 2. **The policy** gives the share of the lodging (`nights +
//!    extra_guests + discount`) refunded; "at least X before" means
//!    `check_in − now ≥ X`:
//!    - `flexible`: all at least 24 h before; after that, all but the
//!      first night.
//!    - `moderate`: all at least 5 days before; after that, half of what
//!      is left once the first night is kept.
//!    - `limited`: all at least 14 days before; half at least 7 days
//!      before; none after.
//!    - `firm`: all at least 30 days before; half at least 7 days before;
//!      none after.
//!    - `strict`: all only within 48 h of booking and at least 14 days
//!      before; else half at least 7 days before; none after.
//!
//!    A night's part of the lodging is its price plus its extra-guest fee
//!    (the discount is shared by every night alike), so "the first night"
//!    is `lodging × first / (nights + extra_guests)`.
//! 3. **The cleaning fee** is refunded whole before check-in, not after.
//! 4. **The service fee and tax** follow what they were charged on
//!    (`lodging + cleaning_fee`): each is refunded in the proportion of
//!    that base refunded.
//! 5. **Rounding**: each refunded amount is `amount × part / whole`,
//!    rounded half up to one minor unit (a tie goes to the guest). A
//!    refund of everything is exact: each line whole.
//! 6. **The refund** is the sum of its lines, and never more than was
//!    paid and is not yet refunded.
//!
//! A cancellation by the listing's host or an admin refunds everything.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde::Serialize;

use super::pricing::{Line, LineKind, PriceQuote, share};
use super::validation::FieldError;

/// A listing's cancellation policy, from the most to the least lenient.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancellationPolicy {
    Flexible,
    #[default]
    Moderate,
    Limited,
    Firm,
    Strict,
}

impl CancellationPolicy {
    pub const ALL: [CancellationPolicy; 5] = [
        CancellationPolicy::Flexible,
        CancellationPolicy::Moderate,
        CancellationPolicy::Limited,
        CancellationPolicy::Firm,
        CancellationPolicy::Strict,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CancellationPolicy::Flexible => "flexible",
            CancellationPolicy::Moderate => "moderate",
            CancellationPolicy::Limited => "limited",
            CancellationPolicy::Firm => "firm",
            CancellationPolicy::Strict => "strict",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == raw.trim())
            .ok_or_else(|| {
                FieldError::new(
                    "cancellation_policy",
                    "unknown_cancellation_policy",
                    "cancellation_policy is one of flexible, moderate, limited, firm, strict",
                )
            })
    }

    /// Until when (at least this long before check-in) everything is
    /// refunded, the grace rule aside.
    pub fn full_refund_notice(self) -> Duration {
        match self {
            CancellationPolicy::Flexible => Duration::hours(24),
            CancellationPolicy::Moderate => Duration::days(5),
            CancellationPolicy::Limited | CancellationPolicy::Strict => Duration::days(14),
            CancellationPolicy::Firm => Duration::days(30),
        }
    }
}

/// A listing's local check-in time, to the minute (default 15:00).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckInTime(NaiveTime);

impl Default for CheckInTime {
    fn default() -> Self {
        Self::from_minute(15 * 60)
    }
}

impl CheckInTime {
    /// `HH:MM`, 24-hour.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let bad = || {
            FieldError::new(
                "check_in_time",
                "invalid_time",
                "check_in_time is a 24-hour local time, HH:MM (e.g. 15:00)",
            )
        };
        let raw = raw.trim();
        if raw.len() != 5 {
            return Err(bad());
        }
        NaiveTime::parse_from_str(raw, "%H:%M")
            .map(Self)
            .map_err(|_| bad())
    }

    /// From minutes after midnight, as stored (0..1440, checked there).
    pub fn from_minute(minute: i64) -> Self {
        let minute = u32::try_from(minute.clamp(0, 1439)).unwrap_or(0);
        Self(NaiveTime::from_hms_opt(minute / 60, minute % 60, 0).unwrap_or(NaiveTime::MIN))
    }

    pub fn minute(self) -> i64 {
        use chrono::Timelike;
        i64::from(self.0.hour() * 60 + self.0.minute())
    }

    pub fn time(self) -> NaiveTime {
        self.0
    }

    pub fn to_hhmm(self) -> String {
        self.0.format("%H:%M").to_string()
    }
}

/// Who cancels: the guest under the policy, or the host or an admin,
/// which refunds everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelledBy {
    Guest,
    Host,
    Admin,
}

/// Which rule decided the refund.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundRule {
    /// Cancelled by the host or an admin.
    HostCancelled,
    /// Within 24 h of booking, check-in at least 7 days away.
    Grace,
    /// Early enough for the policy's full refund.
    Full,
    FirstNightKept,
    FirstNightAndHalfKept,
    Half,
    None,
}

/// A stay being cancelled.
#[derive(Clone, Copy, Debug)]
pub struct Cancellation<'a> {
    pub policy: CancellationPolicy,
    pub by: CancelledBy,
    pub booked_at: DateTime<Utc>,
    pub check_in: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// The lines the stay was sold at.
    pub sold: &'a PriceQuote,
    /// What was paid and is not yet refunded (the refund's cap).
    pub refundable: i64,
}

/// What cancelling gives back, line by line; `total` is their sum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RefundQuote {
    pub rule: RefundRule,
    pub lines: Vec<Line>,
    pub total: i64,
}

impl RefundQuote {
    /// Everything the stay was sold at back, line by line, up to
    /// `refundable` (a host's cancellation, a payment with no stay).
    pub fn whole(sold: &PriceQuote, refundable: i64) -> Self {
        let mut lines: Vec<(LineKind, i64)> =
            sold.lines.iter().map(|l| (l.kind, l.amount)).collect();
        if lines.iter().any(|(_, a)| *a < 0) {
            // A discount is netted into the lodging it reduced.
            lines = vec![
                (
                    LineKind::Nights,
                    sold.line(LineKind::Nights)
                        + sold.line(LineKind::ExtraGuests)
                        + sold.line(LineKind::Discount),
                ),
                (LineKind::CleaningFee, sold.line(LineKind::CleaningFee)),
                (LineKind::ServiceFee, sold.line(LineKind::ServiceFee)),
                (LineKind::Tax, sold.line(LineKind::Tax)),
            ];
        }
        Self::of(RefundRule::HostCancelled, lines, refundable)
    }

    fn of(rule: RefundRule, mut lines: Vec<(LineKind, i64)>, refundable: i64) -> Self {
        cap(&mut lines, refundable.max(0));
        let lines: Vec<Line> = lines
            .into_iter()
            .filter(|(_, amount)| *amount != 0)
            .map(|(kind, amount)| Line { kind, amount })
            .collect();
        RefundQuote {
            rule,
            total: lines.iter().map(|l| l.amount).sum(),
            lines,
        }
    }

    /// The lines split into parts of `amounts` (which add up to the
    /// total), filled in order: each part's lines add up to its amount.
    pub fn split(&self, amounts: &[i64]) -> Vec<Vec<Line>> {
        let mut left: Vec<Line> = self.lines.clone();
        let mut parts = Vec::with_capacity(amounts.len());
        for amount in amounts {
            let mut want = *amount;
            let mut part = Vec::new();
            for line in left.iter_mut() {
                if want == 0 {
                    break;
                }
                let take = want.min(line.amount);
                if take > 0 {
                    part.push(Line {
                        kind: line.kind,
                        amount: take,
                    });
                    line.amount -= take;
                    want -= take;
                }
            }
            parts.push(part);
        }
        parts
    }
}

impl Cancellation<'_> {
    /// The last instant a guest's cancellation refunds everything (the
    /// grace rule or the policy's, whichever is later); `None` for a host's.
    pub fn full_refund_until(&self) -> Option<DateTime<Utc>> {
        if self.by != CancelledBy::Guest {
            return None;
        }
        let grace = (self.booked_at + Duration::hours(24)).min(self.check_in - Duration::days(7));
        let policy = match self.policy {
            CancellationPolicy::Strict => {
                (self.booked_at + Duration::hours(48)).min(self.check_in - Duration::days(14))
            }
            p => self.check_in - p.full_refund_notice(),
        };
        let latest = grace.max(policy);
        (latest >= self.booked_at).then_some(latest)
    }

    /// The rule that applies now.
    pub fn rule(&self) -> RefundRule {
        let before = self.check_in - self.now;
        let since_booking = self.now - self.booked_at;
        match self.by {
            CancelledBy::Host | CancelledBy::Admin => return RefundRule::HostCancelled,
            CancelledBy::Guest => {}
        }
        if since_booking <= Duration::hours(24) && before >= Duration::days(7) {
            return RefundRule::Grace;
        }
        match self.policy {
            CancellationPolicy::Flexible if before >= Duration::hours(24) => RefundRule::Full,
            CancellationPolicy::Flexible => RefundRule::FirstNightKept,
            CancellationPolicy::Moderate if before >= Duration::days(5) => RefundRule::Full,
            CancellationPolicy::Moderate => RefundRule::FirstNightAndHalfKept,
            CancellationPolicy::Limited if before >= Duration::days(14) => RefundRule::Full,
            CancellationPolicy::Firm if before >= Duration::days(30) => RefundRule::Full,
            CancellationPolicy::Strict
                if since_booking <= Duration::hours(48) && before >= Duration::days(14) =>
            {
                RefundRule::Full
            }
            _ if before >= Duration::days(7) => RefundRule::Half,
            _ => RefundRule::None,
        }
    }

    /// The refund, line by line.
    pub fn refund(&self) -> RefundQuote {
        let rule = self.rule();
        let sold = self.sold;
        let lodging = sold.line(LineKind::Nights)
            + sold.line(LineKind::ExtraGuests)
            + sold.line(LineKind::Discount);
        let cleaning = sold.line(LineKind::CleaningFee);
        let service = sold.line(LineKind::ServiceFee);
        let tax = sold.line(LineKind::Tax);
        let whole = matches!(
            rule,
            RefundRule::HostCancelled | RefundRule::Grace | RefundRule::Full
        );
        if whole {
            let mut all = RefundQuote::whole(sold, self.refundable);
            all.rule = rule;
            return all;
        }
        let lines = {
            // The lodging's share refunded, as part / whole.
            let before_extras = sold.line(LineKind::Nights) + sold.line(LineKind::ExtraGuests);
            let first = sold.nights.first().map_or(0, |n| n.amount) + extra_per_night(sold);
            let (part, of) = match rule {
                RefundRule::FirstNightKept => (before_extras - first, before_extras),
                RefundRule::FirstNightAndHalfKept => (before_extras - first, 2 * before_extras),
                RefundRule::Half => (1, 2),
                _ => (0, 1),
            };
            let nights = portion(lodging, part, of);
            let cleaning_back = if self.now < self.check_in {
                cleaning
            } else {
                0
            };
            let base = lodging + cleaning;
            let base_back = nights + cleaning_back;
            vec![
                (LineKind::Nights, nights),
                (LineKind::CleaningFee, cleaning_back),
                (LineKind::ServiceFee, portion(service, base_back, base)),
                (LineKind::Tax, portion(tax, base_back, base)),
            ]
        };
        RefundQuote::of(rule, lines, self.refundable)
    }
}

/// `amount × part / whole`, half up; nothing of nothing.
fn portion(amount: i64, part: i64, whole: i64) -> i64 {
    if whole <= 0 || part <= 0 {
        return 0;
    }
    share(amount, part.min(whole), whole).unwrap_or(0)
}

/// Each night's extra-guest fee (the line is `fee × extra × nights`).
fn extra_per_night(sold: &PriceQuote) -> i64 {
    let nights = i64::try_from(sold.nights.len()).unwrap_or(1).max(1);
    sold.line(LineKind::ExtraGuests) / nights
}

/// Never more than `cap` back: lines are cut from the last (tax) to the
/// first (nights) until they fit.
fn cap(lines: &mut [(LineKind, i64)], cap: i64) {
    let mut over = lines.iter().map(|(_, a)| *a).sum::<i64>() - cap;
    for (_, amount) in lines.iter_mut().rev() {
        if over <= 0 {
            break;
        }
        let cut = over.min(*amount);
        *amount -= cut;
        over -= cut;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::pricing::{NightPrice, Rate};
    use chrono::NaiveDate;

    fn quote(
        nights: &[i64],
        extra: i64,
        discount: i64,
        cleaning: i64,
        service: i64,
        tax: i64,
    ) -> PriceQuote {
        let start = NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
        let nights: Vec<NightPrice> = nights
            .iter()
            .enumerate()
            .map(|(i, amount)| NightPrice {
                date: start + Duration::days(i as i64),
                amount: *amount,
                rate: Rate::Base,
            })
            .collect();
        let lines: Vec<Line> = [
            (LineKind::Nights, nights.iter().map(|n| n.amount).sum()),
            (LineKind::ExtraGuests, extra),
            (LineKind::Discount, discount),
            (LineKind::CleaningFee, cleaning),
            (LineKind::ServiceFee, service),
            (LineKind::Tax, tax),
        ]
        .into_iter()
        .filter(|(_, a)| *a != 0)
        .map(|(kind, amount)| Line { kind, amount })
        .collect();
        PriceQuote {
            total: lines.iter().map(|l| l.amount).sum(),
            nights,
            lines,
        }
    }

    fn at(days_before: i64, minutes: i64) -> (DateTime<Utc>, DateTime<Utc>) {
        let check_in = DateTime::parse_from_rfc3339("2027-03-01T15:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let now = check_in - Duration::days(days_before) + Duration::minutes(minutes);
        (check_in, now)
    }

    fn cancel(policy: CancellationPolicy, sold: &PriceQuote, before: Duration) -> RefundQuote {
        let check_in = DateTime::parse_from_rfc3339("2027-03-01T15:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let now = check_in - before;
        Cancellation {
            policy,
            by: CancelledBy::Guest,
            booked_at: now - Duration::days(60),
            check_in,
            now,
            sold,
            refundable: sold.total,
        }
        .refund()
    }

    fn amounts(r: &RefundQuote) -> Vec<(LineKind, i64)> {
        r.lines.iter().map(|l| (l.kind, l.amount)).collect()
    }

    #[test]
    fn each_policy_changes_at_its_deadline_to_the_minute() {
        use CancellationPolicy::*;
        let sold = quote(&[100, 100, 100, 100], 0, 0, 0, 0, 0);
        let m = Duration::minutes(1);
        let cases = [
            (
                Flexible,
                Duration::hours(24),
                RefundRule::Full,
                RefundRule::FirstNightKept,
            ),
            (
                Moderate,
                Duration::days(5),
                RefundRule::Full,
                RefundRule::FirstNightAndHalfKept,
            ),
            (
                Limited,
                Duration::days(14),
                RefundRule::Full,
                RefundRule::Half,
            ),
            (
                Limited,
                Duration::days(7),
                RefundRule::Half,
                RefundRule::None,
            ),
            (Firm, Duration::days(30), RefundRule::Full, RefundRule::Half),
            (Firm, Duration::days(7), RefundRule::Half, RefundRule::None),
            (
                Strict,
                Duration::days(7),
                RefundRule::Half,
                RefundRule::None,
            ),
        ];
        for (policy, deadline, before, after) in cases {
            assert_eq!(
                cancel(policy, &sold, deadline + m).rule,
                before,
                "{policy:?} {deadline}"
            );
            assert_eq!(
                cancel(policy, &sold, deadline).rule,
                before,
                "{policy:?} at {deadline}"
            );
            assert_eq!(
                cancel(policy, &sold, deadline - m).rule,
                after,
                "{policy:?} {deadline}"
            );
        }
        // Booked long ago, strict never refunds all, even a year ahead.
        assert_eq!(
            cancel(Strict, &sold, Duration::days(365)).rule,
            RefundRule::Half
        );
    }

    #[test]
    fn strict_refunds_all_only_within_48_hours_of_booking_and_14_days_ahead() {
        let sold = quote(&[100, 100], 0, 0, 0, 0, 0);
        let (check_in, now) = at(20, 0);
        let rule = |booked_ago: Duration, now: DateTime<Utc>| {
            Cancellation {
                policy: CancellationPolicy::Strict,
                by: CancelledBy::Guest,
                booked_at: now - booked_ago,
                check_in,
                now,
                sold: &sold,
                refundable: sold.total,
            }
            .rule()
        };
        let m = Duration::minutes(1);
        assert_eq!(rule(Duration::hours(48) - m, now), RefundRule::Full);
        assert_eq!(rule(Duration::hours(48) + m, now), RefundRule::Half);
        let (_, near) = at(14, -1);
        assert_eq!(rule(Duration::hours(30), near), RefundRule::Full);
        let (_, nearer) = at(14, 1);
        assert_eq!(rule(Duration::hours(30), nearer), RefundRule::Half);
    }

    #[test]
    fn within_24_hours_of_booking_and_7_days_ahead_everything_comes_back() {
        let sold = quote(&[100, 100], 0, 0, 50, 20, 10);
        let m = Duration::minutes(1);
        for policy in CancellationPolicy::ALL {
            for (booked_ago, before, grace) in [
                (Duration::hours(24) - m, Duration::days(7), true),
                (Duration::hours(24) + m, Duration::days(7) + m, false),
                (Duration::hours(1), Duration::days(7) - m, false),
            ] {
                let (check_in, _) = at(0, 0);
                let now = check_in - before;
                let c = Cancellation {
                    policy,
                    by: CancelledBy::Guest,
                    booked_at: now - booked_ago,
                    check_in,
                    now,
                    sold: &sold,
                    refundable: sold.total,
                };
                assert_eq!(
                    c.rule() == RefundRule::Grace,
                    grace,
                    "{policy:?} {booked_ago} {before}"
                );
                if grace {
                    assert_eq!(c.refund().total, sold.total);
                }
            }
        }
    }

    #[test]
    fn fees_follow_the_nights_and_round_half_up() {
        // 3 nights 101 + 103 + 105, extras 30 (10 a night), discount −24,
        // cleaning 40, service fee 51, tax 27.
        let sold = quote(&[101, 103, 105], 30, -24, 40, 51, 27);
        let lodging = 101 + 103 + 105 + 30 - 24; // 315
        // Flexible, 23 h before: the first night (101 + 10 of 339) kept.
        let r = cancel(CancellationPolicy::Flexible, &sold, Duration::hours(23));
        let nights = (315 * 228 * 2 + 339) / (2 * 339); // 211.86… → 212
        assert_eq!(nights, 212);
        let base_back = nights + 40;
        assert_eq!(
            amounts(&r),
            [
                (LineKind::Nights, 212),
                (LineKind::CleaningFee, 40),
                // 51 × 252 / 355 = 36.20… → 36; 27 × 252 / 355 = 19.16… → 19
                (LineKind::ServiceFee, (51 * base_back * 2 + 355) / (2 * 355)),
                (LineKind::Tax, 19),
            ]
        );
        assert_eq!(r.total, 212 + 40 + 36 + 19);
        assert_eq!(lodging, 315);
        // Moderate, 4 days before: half of what the first night leaves.
        let r = cancel(CancellationPolicy::Moderate, &sold, Duration::days(4));
        // 315 × 228 / 678 = 105.93 → 106
        assert_eq!(amounts(&r)[0], (LineKind::Nights, 106));
        // After check-in the cleaning fee is kept.
        let r = cancel(CancellationPolicy::Flexible, &sold, -Duration::hours(1));
        assert!(r.lines.iter().all(|l| l.kind != LineKind::CleaningFee));
        // Half of an odd amount: the tie goes to the guest.
        let odd = quote(&[101], 0, 0, 0, 0, 0);
        let r = cancel(CancellationPolicy::Limited, &odd, Duration::days(8));
        assert_eq!(r.total, 51);
        // None: nothing, not even fees.
        let r = cancel(CancellationPolicy::Firm, &sold, Duration::days(2));
        assert_eq!((r.total, r.lines.len()), (40 + 6 + 3, 3));
    }

    #[test]
    fn lines_add_up_and_never_exceed_what_is_refundable() {
        let sold = quote(&[100, 100], 0, 0, 50, 20, 10);
        let (check_in, now) = at(60, 0);
        let r = Cancellation {
            policy: CancellationPolicy::Moderate,
            by: CancelledBy::Host,
            booked_at: now - Duration::days(90),
            check_in,
            now,
            sold: &sold,
            refundable: 230,
        }
        .refund();
        assert_eq!(r.rule, RefundRule::HostCancelled);
        assert_eq!(r.total, 230);
        assert_eq!(r.lines.iter().map(|l| l.amount).sum::<i64>(), 230);
        assert_eq!(
            amounts(&r),
            [(LineKind::Nights, 200), (LineKind::CleaningFee, 30)]
        );
    }

    #[test]
    fn a_whole_refund_nets_the_discount_and_splits_over_payments() {
        let sold = quote(&[100, 100, 100, 100, 100, 100, 100], 0, -70, 50, 20, 10);
        let all = RefundQuote::whole(&sold, sold.total);
        assert_eq!(all.total, sold.total);
        assert_eq!(amounts(&all)[0], (LineKind::Nights, 630));
        let parts = all.split(&[600, all.total - 600]);
        assert_eq!(
            parts[0],
            [Line {
                kind: LineKind::Nights,
                amount: 600
            }]
        );
        let second: i64 = parts[1].iter().map(|l| l.amount).sum();
        assert_eq!(second, all.total - 600);
        assert_eq!(
            parts[1][0],
            Line {
                kind: LineKind::Nights,
                amount: 30
            }
        );
    }

    #[test]
    fn full_refunds_last_until_the_later_of_grace_and_policy() {
        let sold = quote(&[100], 0, 0, 0, 0, 0);
        let check_in = DateTime::parse_from_rfc3339("2027-03-01T15:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let booked_at = check_in - Duration::days(10);
        let c = |policy| Cancellation {
            policy,
            by: CancelledBy::Guest,
            booked_at,
            check_in,
            now: booked_at,
            sold: &sold,
            refundable: 100,
        };
        // Firm's 30 days had passed when booked: the grace day is all.
        assert_eq!(
            c(CancellationPolicy::Firm).full_refund_until(),
            Some(booked_at + Duration::hours(24))
        );
        assert_eq!(
            c(CancellationPolicy::Moderate).full_refund_until(),
            Some(check_in - Duration::days(5))
        );
    }

    #[test]
    fn check_in_times_parse_as_hh_mm() {
        assert_eq!(CheckInTime::parse("15:00").unwrap().minute(), 900);
        assert_eq!(CheckInTime::parse("09:30").unwrap().to_hhmm(), "09:30");
        for bad in ["9:30", "24:00", "15:60", "3pm", ""] {
            assert!(CheckInTime::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(CheckInTime::default().to_hhmm(), "15:00");
    }
}
