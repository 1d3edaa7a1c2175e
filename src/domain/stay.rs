//! Nights: a stay's dates, half-open, and the rules a listing sets for them.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

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

/// Writes a date as `YYYY-MM-DD`, exactly as chrono's `Serialize` does,
/// without going through its formatter: a calendar page carries a date per
/// night, and chrono's way (`Display`, then JSON-escaping each piece) was
/// the largest part of that page's serialization (perf, `browse.js`). Years
/// outside 0–9999 are left to chrono.
pub fn ymd<S: serde::Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    let year = date.year();
    if !(0..=9999).contains(&year) {
        return date.serialize(s);
    }
    let mut text = *b"0000-00-00";
    let digits = |out: &mut [u8], mut n: u32| {
        for slot in out.iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    digits(&mut text[0..4], year.unsigned_abs());
    digits(&mut text[5..7], date.month());
    digits(&mut text[8..10], date.day());
    match std::str::from_utf8(&text) {
        Ok(text) => s.serialize_str(text),
        Err(_) => date.serialize(s),
    }
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

/// Days of the week a stay may begin or end on (a bit per day, Monday
/// first); all seven when the host sets none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weekdays(u8);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Weekdays {
    pub const ALL: Weekdays = Weekdays(0b111_1111);

    /// `["mon", "fri"]`: at least one day, each named once at most.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, FieldError> {
        let mut mask = 0u8;
        for name in names {
            let name = name.as_ref().trim().to_ascii_lowercase();
            match DAY_NAMES.iter().position(|d| *d == name) {
                Some(bit) => mask |= 1 << bit,
                None => {
                    return Err(FieldError::new(
                        "days",
                        "unknown_day",
                        format!("days are named {}", DAY_NAMES.join(", ")),
                    ));
                }
            }
        }
        if mask == 0 {
            return Err(FieldError::new(
                "days",
                "required",
                "name at least one day (all seven: any day)",
            ));
        }
        Ok(Self(mask))
    }

    /// From a stored mask (bits of no day dropped; none stored: any day).
    pub fn from_mask(mask: i64) -> Self {
        match (mask & 0b111_1111) as u8 {
            0 => Self::ALL,
            m => Self(m),
        }
    }

    pub fn mask(&self) -> i64 {
        i64::from(self.0)
    }

    pub fn names(&self) -> Vec<&'static str> {
        (0..7)
            .filter(|bit| self.0 & (1 << bit) != 0)
            .map(|bit| DAY_NAMES[bit])
            .collect()
    }

    pub fn allows(&self, date: NaiveDate) -> bool {
        self.0 & (1 << date.weekday().num_days_from_monday()) != 0
    }
}

/// A listing's IANA time zone: its "today" is the local date there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    pub const UTC: TimeZone = TimeZone(chrono_tz::Tz::UTC);

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        raw.trim().parse::<chrono_tz::Tz>().map(Self).map_err(|_| {
            FieldError::new(
                "time_zone",
                "unknown_time_zone",
                "time_zone must be an IANA time zone, e.g. Europe/Amsterdam or America/New_York",
            )
        })
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The local date at instant `now`.
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.0).date_naive()
    }

    /// The instant the local clock reads `time` on `date`: the earlier one
    /// when a clock set back reads it twice, and when a clock set forward
    /// skips it, the first instant after the gap.
    pub fn instant(&self, date: NaiveDate, time: chrono::NaiveTime) -> DateTime<Utc> {
        use chrono::TimeZone as _;
        let local = date.and_time(time);
        (0..=4)
            .find_map(|quarters| {
                let shifted = local + chrono::Duration::minutes(15 * quarters);
                self.0.from_local_datetime(&shifted).earliest()
            })
            .map(|at| at.with_timezone(&Utc))
            .unwrap_or_else(|| local.and_utc())
    }
}

/// What a listing allows: how many guests, how many nights, how soon and
/// how far ahead, arriving and leaving on which days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StayRules {
    pub max_guests: i64,
    pub min_nights: i64,
    pub max_nights: i64,
    /// Check-in at least this many days after the listing's today.
    pub advance_notice_days: i64,
    /// Check-in at most this many days after the listing's today; 0: no limit.
    pub booking_window_days: i64,
    pub check_in_days: Weekdays,
    pub check_out_days: Weekdays,
}

/// The longest booking window a host may set (0: no limit).
pub const MAX_BOOKING_WINDOW_DAYS: i64 = 730;
pub const MAX_ADVANCE_NOTICE_DAYS: i64 = 365;

/// Why a stay does not fit a listing's rules, in the order they are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleBreach {
    InThePast,
    TooSoon { days: i64 },
    TooFarAhead { days: i64 },
    CheckInDay,
    CheckOutDay,
    TooManyGuests { max: i64 },
    TooFewNights { min: i64 },
    TooManyNights { max: i64 },
}

impl StayRules {
    /// Checks a stay against the rules, with `today` the listing's local date.
    pub fn check(
        &self,
        dates: &StayDates,
        guests: i64,
        today: NaiveDate,
    ) -> Result<(), RuleBreach> {
        let ahead = (dates.check_in() - today).num_days();
        if ahead < 0 {
            return Err(RuleBreach::InThePast);
        }
        if ahead < self.advance_notice_days {
            return Err(RuleBreach::TooSoon {
                days: self.advance_notice_days,
            });
        }
        if self.booking_window_days > 0 && ahead > self.booking_window_days {
            return Err(RuleBreach::TooFarAhead {
                days: self.booking_window_days,
            });
        }
        if !self.check_in_days.allows(dates.check_in()) {
            return Err(RuleBreach::CheckInDay);
        }
        if !self.check_out_days.allows(dates.check_out()) {
            return Err(RuleBreach::CheckOutDay);
        }
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

    #[test]
    fn ymd_writes_what_chrono_writes() {
        #[derive(serde::Serialize)]
        struct Fast(#[serde(serialize_with = "ymd")] NaiveDate);
        let days = [
            (0, 1, 1),
            (9, 2, 28),
            (999, 12, 31),
            (2024, 2, 29),
            (2027, 3, 14),
            (9999, 12, 31),
            (10_000, 1, 1),
            (-1, 6, 30),
            (-12_345, 1, 9),
        ];
        for (y, m, d) in days {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(
                serde_json::to_string(&Fast(date)).unwrap(),
                serde_json::to_string(&date).unwrap(),
                "{y}-{m}-{d}"
            );
        }
    }

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
            advance_notice_days: 0,
            booking_window_days: 0,
            check_in_days: Weekdays::ALL,
            check_out_days: Weekdays::ALL,
        };
        let today = d("2026-12-01");
        assert!(
            rules
                .check(&stay("2027-01-01", "2027-01-03"), 4, today)
                .is_ok()
        );
        assert_eq!(
            rules.check(&stay("2027-01-01", "2027-01-03"), 5, today),
            Err(RuleBreach::TooManyGuests { max: 4 })
        );
        assert_eq!(
            rules.check(&stay("2027-01-01", "2027-01-02"), 1, today),
            Err(RuleBreach::TooFewNights { min: 2 })
        );
        assert_eq!(
            rules.check(&stay("2027-01-01", "2027-01-09"), 1, today),
            Err(RuleBreach::TooManyNights { max: 7 })
        );
    }

    fn rules() -> StayRules {
        StayRules {
            max_guests: 2,
            min_nights: 2,
            max_nights: 7,
            advance_notice_days: 2,
            booking_window_days: 30,
            check_in_days: Weekdays::parse(&["fri", "sat"]).unwrap(),
            check_out_days: Weekdays::ALL,
        }
    }

    #[test]
    fn rules_are_checked_in_order_at_their_edges() {
        let today = d("2027-03-10"); // a Wednesday
        let r = rules();
        let at = |a: &str, b: &str, g| r.check(&stay(a, b), g, today);
        assert_eq!(
            at("2027-03-09", "2027-03-12", 1),
            Err(RuleBreach::InThePast)
        );
        assert_eq!(
            at("2027-03-11", "2027-03-13", 1),
            Err(RuleBreach::TooSoon { days: 2 })
        );
        assert_eq!(
            at("2027-03-12", "2027-03-14", 1),
            Ok(()),
            "Friday, 2 days ahead"
        );
        assert_eq!(at("2027-04-09", "2027-04-11", 1), Ok(()), "30 days ahead");
        assert_eq!(
            at("2027-04-10", "2027-04-12", 1),
            Err(RuleBreach::TooFarAhead { days: 30 })
        );
        assert_eq!(
            at("2027-03-14", "2027-03-16", 1),
            Err(RuleBreach::CheckInDay)
        );
        assert_eq!(
            at("2027-03-12", "2027-03-14", 3),
            Err(RuleBreach::TooManyGuests { max: 2 })
        );
        assert_eq!(
            at("2027-03-12", "2027-03-13", 1),
            Err(RuleBreach::TooFewNights { min: 2 })
        );
        let mut r = rules();
        r.check_out_days = Weekdays::parse(&["sun"]).unwrap();
        assert_eq!(
            r.check(&stay("2027-03-12", "2027-03-15"), 1, today),
            Err(RuleBreach::CheckOutDay)
        );
        assert_eq!(r.check(&stay("2027-03-12", "2027-03-14"), 1, today), Ok(()));
    }

    #[test]
    fn weekdays_and_time_zones_parse() {
        assert_eq!(
            Weekdays::parse(&["Mon", "fri"]).unwrap().names(),
            ["mon", "fri"]
        );
        assert_eq!(
            Weekdays::parse(&["funday"]).unwrap_err().code,
            "unknown_day"
        );
        assert!(Weekdays::parse::<&str>(&[]).is_err());
        assert_eq!(Weekdays::from_mask(0), Weekdays::ALL);
        let kiritimati = TimeZone::parse("Pacific/Kiritimati").unwrap();
        let pago = TimeZone::parse("Pacific/Pago_Pago").unwrap();
        let noon = "2027-03-10T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(kiritimati.today(noon), d("2027-03-11"));
        assert_eq!(pago.today(noon), d("2027-03-10"));
        let early = "2027-03-10T05:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(pago.today(early), d("2027-03-09"));
        assert_eq!(
            TimeZone::parse("Mars/Olympus").unwrap_err().code,
            "unknown_time_zone"
        );
    }
}
