//! One listing's calendar as its actor holds it: the live claims on its nights.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::stay::StayDates;

/// Why a night is not available, as anyone may see it (never whose it is).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Busy {
    /// A confirmed (or completed) booking.
    Booked,
    /// A pending booking's hold, until it is paid or lapses.
    Held,
    /// The host blocked it.
    Blocked,
}

/// One live claim: a booking, a hold or a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub id: i64,
    pub dates: StayDates,
    pub busy: Busy,
    /// For a hold: when it stops claiming its nights.
    pub held_until: Option<DateTime<Utc>>,
}

impl Claim {
    /// Does it still claim its nights at `now`? A hold stops at its expiry.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        match (self.busy, self.held_until) {
            (Busy::Held, Some(until)) => until > now,
            _ => true,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Calendar {
    claims: Vec<Claim>,
}

impl Calendar {
    pub fn new(claims: Vec<Claim>) -> Self {
        Self { claims }
    }

    /// Whether any claim it holds, live or a lapsed hold, shares a night
    /// with `dates`; claim `except` does not count.
    pub fn touches(&self, dates: &StayDates, except: Option<i64>) -> bool {
        self.claims
            .iter()
            .any(|c| Some(c.id) != except && c.dates.overlaps(dates))
    }

    /// A live claim sharing a night with `dates`, if any; claim `except`
    /// (a booking moving to new nights) does not count.
    pub fn conflict(
        &self,
        dates: &StayDates,
        now: DateTime<Utc>,
        except: Option<i64>,
    ) -> Option<&Claim> {
        self.claims
            .iter()
            .find(|c| Some(c.id) != except && c.is_live(now) && c.dates.overlaps(dates))
    }

    /// The busy ranges inside `window`, clipped to it, in date order.
    pub fn unavailable(&self, window: &StayDates, now: DateTime<Utc>) -> Vec<(StayDates, Busy)> {
        let mut out: Vec<_> = self
            .claims
            .iter()
            .filter(|c| c.is_live(now))
            .filter_map(|c| c.dates.clip(window).map(|d| (d, c.busy)))
            .collect();
        out.sort_by_key(|(d, _)| d.check_in());
        out
    }

    /// Every claim live at `now`, in date order.
    pub fn live(&self, now: DateTime<Utc>) -> Vec<Claim> {
        let mut out: Vec<_> = self
            .claims
            .iter()
            .filter(|c| c.is_live(now))
            .cloned()
            .collect();
        out.sort_by_key(|c| c.dates.check_in());
        out
    }

    /// The earliest stay of `nights` nights inside `[from, to)` that is
    /// free at `now` and that `rules` allow (`today` the listing's local
    /// date, `guests` as the search gives them): flexible dates. Walks the
    /// check-in days in order, jumping past a claim it runs into.
    pub fn earliest_free(
        &self,
        rules: &crate::domain::StayRules,
        (from, to): (NaiveDate, NaiveDate),
        nights: i64,
        guests: i64,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Option<StayDates> {
        let last = to - chrono::Duration::days(nights);
        let mut day = from;
        while day <= last {
            let stay = StayDates::from_stored(day, day + chrono::Duration::days(nights));
            if let Some(claim) = self.conflict(&stay, now, None) {
                day = claim.dates.check_out().max(day + chrono::Duration::days(1));
                continue;
            }
            if rules.check(&stay, guests, today).is_ok() {
                return Some(stay);
            }
            day += chrono::Duration::days(1);
        }
        None
    }

    /// The dates of the claims that hold their nights whatever the time:
    /// bookings and blocks (a hold with an expiry is not one of them).
    pub fn firm(&self) -> impl Iterator<Item = StayDates> + '_ {
        self.claims
            .iter()
            .filter(|c| c.busy != Busy::Held || c.held_until.is_none())
            .map(|c| c.dates)
    }

    /// Adds a claim, or replaces the one with its id.
    pub fn put(&mut self, claim: Claim) {
        self.remove(claim.id);
        self.claims.push(claim);
    }

    /// Forgets a claim (cancelled, expired, unblocked).
    pub fn remove(&mut self, id: i64) {
        self.claims.retain(|c| c.id != id);
    }

    pub fn len(&self) -> usize {
        self.claims.len()
    }

    pub fn is_empty(&self) -> bool {
        self.claims.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::stay::parse_date;

    fn dates(a: &str, b: &str) -> StayDates {
        StayDates::new(parse_date(a).unwrap(), parse_date(b).unwrap()).unwrap()
    }

    #[test]
    fn a_lapsed_hold_frees_its_nights_at_its_expiry() {
        let now = Utc::now();
        let hold = Claim {
            id: 1,
            dates: dates("2027-01-01", "2027-01-05"),
            busy: Busy::Held,
            held_until: Some(now + chrono::Duration::seconds(1)),
        };
        let cal = Calendar::new(vec![hold]);
        let wanted = dates("2027-01-03", "2027-01-04");
        assert!(cal.conflict(&wanted, now, None).is_some());
        assert!(
            cal.conflict(&wanted, now, Some(1)).is_none(),
            "a claim never conflicts with itself"
        );
        assert!(
            cal.conflict(&wanted, now + chrono::Duration::seconds(1), None)
                .is_none()
        );
    }

    #[test]
    fn the_earliest_free_stay_skips_claims_lapsed_holds_aside_and_keeps_the_rules() {
        use crate::domain::stay::Weekdays;
        let now = Utc::now();
        let d = |s: &str| parse_date(s).unwrap();
        let mut cal = Calendar::default();
        cal.put(Claim {
            id: 1,
            dates: dates("2027-03-01", "2027-03-04"),
            busy: Busy::Booked,
            held_until: None,
        });
        cal.put(Claim {
            id: 2,
            dates: dates("2027-03-05", "2027-03-09"),
            busy: Busy::Blocked,
            held_until: None,
        });
        cal.put(Claim {
            id: 3,
            dates: dates("2027-03-09", "2027-03-12"),
            busy: Busy::Held,
            held_until: Some(now - chrono::Duration::minutes(1)),
        });
        let mut rules = crate::domain::StayRules {
            max_guests: 4,
            min_nights: 1,
            max_nights: 30,
            advance_notice_days: 0,
            booking_window_days: 0,
            check_in_days: Weekdays::from_mask(0),
            check_out_days: Weekdays::from_mask(0),
        };
        let today = d("2027-02-01");
        let window = (d("2027-03-01"), d("2027-03-31"));
        let found = |rules: &crate::domain::StayRules, nights| {
            cal.earliest_free(rules, window, nights, 1, today, now)
        };
        // One night fits between the booking and the block; three nights
        // fit only past the block, the lapsed hold claiming nothing.
        assert_eq!(found(&rules, 1), Some(dates("2027-03-04", "2027-03-05")));
        assert_eq!(found(&rules, 3), Some(dates("2027-03-09", "2027-03-12")));
        // The window's end is a check-out: 22 nights fit from the 9th, 23 do not.
        assert_eq!(found(&rules, 22), Some(dates("2027-03-09", "2027-03-31")));
        assert_eq!(found(&rules, 23), None);
        // Check-in on Saturdays only (2027-03-13 is one).
        rules.check_in_days = Weekdays::parse(&["sat"]).unwrap();
        assert_eq!(found(&rules, 3), Some(dates("2027-03-13", "2027-03-16")));
        // Too soon: 45 days' notice from today puts the first check-in on
        // the 18th, a Thursday; the Saturday after is the 20th.
        rules.advance_notice_days = 45;
        assert_eq!(found(&rules, 3), Some(dates("2027-03-20", "2027-03-23")));
        rules.booking_window_days = 46;
        assert_eq!(found(&rules, 3), None, "past the booking window");
    }

    #[test]
    fn unavailable_ranges_are_clipped_sorted_and_kinded() {
        let now = Utc::now();
        let mut cal = Calendar::default();
        cal.put(Claim {
            id: 2,
            dates: dates("2027-01-10", "2027-01-12"),
            busy: Busy::Blocked,
            held_until: None,
        });
        cal.put(Claim {
            id: 1,
            dates: dates("2026-12-30", "2027-01-03"),
            busy: Busy::Booked,
            held_until: None,
        });
        let window = dates("2027-01-01", "2027-02-01");
        assert_eq!(
            cal.unavailable(&window, now),
            vec![
                (dates("2027-01-01", "2027-01-03"), Busy::Booked),
                (dates("2027-01-10", "2027-01-12"), Busy::Blocked),
            ]
        );
        cal.remove(1);
        assert_eq!(cal.len(), 1);
        assert!(
            cal.conflict(&dates("2027-01-12", "2027-01-14"), now, None)
                .is_none()
        );
    }
}
