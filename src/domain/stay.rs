//! Nights: a stay's dates, half-open, and the rules a listing sets for them.

use chrono::NaiveDate;

use super::validation::FieldError;

/// The longest stay any listing may allow, and the widest availability window.
pub const MAX_NIGHTS: i64 = 365;
pub const MAX_WINDOW_DAYS: i64 = 366;

/// Nights `[check_in, check_out)`: the guest arrives on `check_in` and leaves
/// on `check_out`, so a stay may begin on the day another ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StayDates {
    check_in: NaiveDate,
    check_out: NaiveDate,
}

impl StayDates {
    /// At least one night, at most `MAX_NIGHTS`.
    pub fn new(check_in: NaiveDate, check_out: NaiveDate) -> Result<Self, FieldError> {
        if check_out <= check_in {
            return Err(FieldError::new(
                "check_out",
                "check_out_not_after_check_in",
                "check_out must be after check_in",
            ));
        }
        if (check_out - check_in).num_days() > MAX_NIGHTS {
            return Err(FieldError::new(
                "check_out",
                "stay_too_long",
                format!("a stay is at most {MAX_NIGHTS} nights"),
            ));
        }
        Ok(Self {
            check_in,
            check_out,
        })
    }

    /// A range as stored, trusted to be non-empty (the database checks it).
    pub fn from_stored(check_in: NaiveDate, check_out: NaiveDate) -> Self {
        Self {
            check_in,
            check_out,
        }
    }

    pub fn check_in(&self) -> NaiveDate {
        self.check_in
    }

    pub fn check_out(&self) -> NaiveDate {
        self.check_out
    }

    pub fn nights(&self) -> i64 {
        (self.check_out - self.check_in).num_days()
    }

    /// Do the two share a night? Touching ends (one's check-out is the
    /// other's check-in) do not.
    pub fn overlaps(&self, other: &StayDates) -> bool {
        self.check_in < other.check_out && other.check_in < self.check_out
    }

    /// The part of `self` inside `window`, if any.
    pub fn clip(&self, window: &StayDates) -> Option<StayDates> {
        let start = self.check_in.max(window.check_in);
        let end = self.check_out.min(window.check_out);
        (start < end).then_some(StayDates::from_stored(start, end))
    }
}

/// A date range to look at, such as an availability query's `from`/`to`:
/// half-open, at most `MAX_WINDOW_DAYS` long.
pub fn window(from: NaiveDate, to: NaiveDate) -> Result<StayDates, FieldError> {
    if to <= from {
        return Err(FieldError::new(
            "to",
            "to_not_after_from",
            "to must be after from",
        ));
    }
    if (to - from).num_days() > MAX_WINDOW_DAYS {
        return Err(FieldError::new(
            "to",
            "window_too_long",
            format!("from and to may be at most {MAX_WINDOW_DAYS} days apart"),
        ));
    }
    Ok(StayDates::from_stored(from, to))
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(raw: &str) -> Result<NaiveDate, FieldError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
        FieldError::new(
            "date",
            "invalid_date",
            "dates are written YYYY-MM-DD, e.g. 2027-03-14",
        )
    })
}

/// What a listing allows: how many guests, how many nights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StayRules {
    pub max_guests: i64,
    pub min_nights: i64,
    pub max_nights: i64,
}

/// Why a stay does not fit a listing's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleBreach {
    TooManyGuests { max: i64 },
    TooFewNights { min: i64 },
    TooManyNights { max: i64 },
}

impl StayRules {
    pub fn check(&self, dates: &StayDates, guests: i64) -> Result<(), RuleBreach> {
        if guests > self.max_guests {
            return Err(RuleBreach::TooManyGuests {
                max: self.max_guests,
            });
        }
        if dates.nights() < self.min_nights {
            return Err(RuleBreach::TooFewNights {
                min: self.min_nights,
            });
        }
        if dates.nights() > self.max_nights {
            return Err(RuleBreach::TooManyNights {
                max: self.max_nights,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    fn stay(a: &str, b: &str) -> StayDates {
        StayDates::new(d(a), d(b)).unwrap()
    }

    #[test]
    fn dates_are_half_open() {
        let first = stay("2027-01-01", "2027-01-05");
        assert_eq!(first.nights(), 4);
        assert!(
            !first.overlaps(&stay("2027-01-05", "2027-01-07")),
            "back to back"
        );
        assert!(!stay("2026-12-28", "2027-01-01").overlaps(&first));
        assert!(first.overlaps(&stay("2027-01-04", "2027-01-05")));
        assert!(first.overlaps(&stay("2026-12-01", "2027-02-01")));
        assert!(first.overlaps(&first));
    }

    #[test]
    fn empty_backwards_and_overlong_stays_are_refused() {
        assert_eq!(
            StayDates::new(d("2027-01-05"), d("2027-01-05"))
                .unwrap_err()
                .code,
            "check_out_not_after_check_in"
        );
        assert!(StayDates::new(d("2027-01-05"), d("2027-01-01")).is_err());
        assert_eq!(
            StayDates::new(d("2027-01-01"), d("2028-01-02"))
                .unwrap_err()
                .code,
            "stay_too_long"
        );
        assert!(parse_date("2027-02-30").is_err());
        assert!(parse_date("tomorrow").is_err());
    }

    #[test]
    fn windows_are_bounded_and_clip() {
        assert!(window(d("2027-01-01"), d("2028-01-02")).is_ok());
        assert_eq!(
            window(d("2027-01-01"), d("2028-01-03")).unwrap_err().code,
            "window_too_long"
        );
        let w = window(d("2027-01-10"), d("2027-01-20")).unwrap();
        assert_eq!(
            stay("2027-01-05", "2027-01-12").clip(&w),
            Some(stay("2027-01-10", "2027-01-12"))
        );
        assert_eq!(stay("2027-01-01", "2027-01-10").clip(&w), None);
    }

    #[test]
    fn rules_bound_guests_and_nights() {
        let rules = StayRules {
            max_guests: 4,
            min_nights: 2,
            max_nights: 7,
        };
        assert!(rules.check(&stay("2027-01-01", "2027-01-03"), 4).is_ok());
        assert_eq!(
            rules.check(&stay("2027-01-01", "2027-01-03"), 5),
            Err(RuleBreach::TooManyGuests { max: 4 })
        );
        assert_eq!(
            rules.check(&stay("2027-01-01", "2027-01-02"), 1),
            Err(RuleBreach::TooFewNights { min: 2 })
        );
        assert_eq!(
            rules.check(&stay("2027-01-01", "2027-01-09"), 1),
            Err(RuleBreach::TooManyNights { max: 7 })
        );
    }
}
