//! Reviews after a stay: what each side may write, when, and the totals a
//! listing (and a guest) carries over its published reviews.
//!
//! A completed stay opens a review window that closes at the start of the
//! listing's local day `window + 1` days after check-out (with the default
//! 14: a stay leaving on the 10th may be reviewed through the 24th, local
//! time). The guest reviews the listing (an overall rating and six
//! categories, 1–5 each, and a comment); the host reviews the guest (a
//! rating and a comment). Each review stays with its author until both
//! are written or the window closes; then both are published at once.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::Serialize;

use super::property::bounded_text;
use super::stay::TimeZone;
use super::{FieldError, FieldErrors};

/// The longest comment or reply, in characters.
pub const MAX_COMMENT: usize = 2_000;
/// The longest removal reason, in characters.
pub const MAX_REASON: usize = 500;
/// How long after publication its author may still edit a review, and
/// after the first reply its author may still edit the reply.
pub const EDIT_WINDOW: Duration = Duration::hours(48);
/// The default review window, in days after check-out.
pub const DEFAULT_WINDOW_DAYS: i64 = 14;

/// The guest's six categories, in the order they are stored and shown.
pub const CATEGORIES: [&str; 6] = [
    "cleanliness",
    "accuracy",
    "communication",
    "location",
    "check_in",
    "value",
];

/// Who wrote it: the stay's guest (of the listing) or its host (of the guest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Guest,
    Host,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Guest => "guest",
            Side::Host => "host",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "guest" => Some(Side::Guest),
            "host" => Some(Side::Host),
            _ => None,
        }
    }

    pub fn other(self) -> Self {
        match self {
            Side::Guest => Side::Host,
            Side::Host => Side::Guest,
        }
    }

    /// The fields a review of this side has.
    pub fn fields(self) -> &'static [&'static str] {
        const GUEST: [&str; 8] = [
            "rating",
            "cleanliness",
            "accuracy",
            "communication",
            "location",
            "check_in",
            "value",
            "comment",
        ];
        const HOST: [&str; 2] = ["rating", "comment"];
        match self {
            Side::Guest => &GUEST,
            Side::Host => &HOST,
        }
    }
}

/// A review's ratings: the overall one, and the guest's six categories
/// (none on a host's review). Each from 1 to 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratings {
    pub rating: i64,
    pub categories: Option<[i64; 6]>,
}

impl Ratings {
    pub fn side(&self) -> Side {
        match self.categories {
            Some(_) => Side::Guest,
            None => Side::Host,
        }
    }
}

/// One 1–5 rating.
pub fn star(value: i64) -> Result<i64, FieldError> {
    if (1..=5).contains(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            "rating",
            "out_of_range",
            "must be a whole number from 1 to 5",
        ))
    }
}

/// A comment or reply: trimmed, 1 to 2,000 characters, no control
/// characters but line breaks and tabs. Markup is kept as the text it is:
/// clients show it as text (Roost's own pages never render it as HTML).
pub fn comment(raw: &str) -> Result<String, FieldError> {
    bounded_text(raw, 1, MAX_COMMENT)
}

/// A review as written or edited, raw from the request: every field
/// optional here, so an edit may give some and a new review must give all.
#[derive(Clone, Debug, Default)]
pub struct ReviewInput {
    pub rating: Option<i64>,
    /// In [`CATEGORIES`] order.
    pub categories: [Option<i64>; 6],
    pub comment: Option<String>,
}

impl ReviewInput {
    fn check_stars(&self, errors: &mut FieldErrors) -> (Option<i64>, [Option<i64>; 6]) {
        let rating = self.rating.and_then(|r| errors.check("rating", star(r)));
        let mut categories = [None; 6];
        for (i, name) in CATEGORIES.iter().enumerate() {
            categories[i] = self.categories[i].and_then(|r| errors.check(name, star(r)));
        }
        (rating, categories)
    }

    /// A new review for `side`: every field of that side required.
    pub fn parse_new(&self, side: Side, errors: &mut FieldErrors) -> Option<(Ratings, String)> {
        let (rating, categories) = self.check_stars(errors);
        let comment = self
            .comment
            .as_deref()
            .and_then(|c| errors.check("comment", comment(c)));
        let mut missing = |name: &str, given: bool| {
            if !given {
                errors.push(FieldError::new(
                    name,
                    "required",
                    format!("{name} is required"),
                ));
            }
        };
        missing("rating", self.rating.is_some());
        missing("comment", self.comment.is_some());
        let categories = match side {
            Side::Host => {
                for (i, name) in CATEGORIES.iter().enumerate() {
                    if self.categories[i].is_some() {
                        errors.push(FieldError::new(
                            name,
                            "not_for_hosts",
                            "a host's review of a guest has a rating and a comment only",
                        ));
                    }
                }
                None
            }
            Side::Guest => {
                for (i, name) in CATEGORIES.iter().enumerate() {
                    missing(name, self.categories[i].is_some());
                }
                let all: Option<Vec<i64>> = categories.iter().copied().collect();
                Some(all.and_then(|v| <[i64; 6]>::try_from(v).ok()))
            }
        };
        let ratings = match categories {
            None => Ratings {
                rating: rating?,
                categories: None,
            },
            Some(all) => Ratings {
                rating: rating?,
                categories: Some(all?),
            },
        };
        Some((ratings, comment?))
    }

    /// An edit of `current`: the fields given replace its own.
    pub fn parse_edit(
        &self,
        current: &Ratings,
        current_comment: &str,
        errors: &mut FieldErrors,
    ) -> Option<(Ratings, String)> {
        let (rating, categories) = self.check_stars(errors);
        let comment = match &self.comment {
            Some(c) => errors.check("comment", comment(c)),
            None => Some(current_comment.to_owned()),
        };
        if self.rating.is_none()
            && self.comment.is_none()
            && self.categories.iter().all(Option::is_none)
        {
            errors.push(FieldError::new(
                "body",
                "nothing_to_change",
                "give at least one field to change",
            ));
        }
        if !errors.is_empty() {
            return None;
        }
        let categories = current.categories.map(|mut now| {
            for (slot, new) in now.iter_mut().zip(categories) {
                if let Some(new) = new {
                    *slot = new;
                }
            }
            now
        });
        Some((
            Ratings {
                rating: rating.unwrap_or(current.rating),
                categories,
            },
            comment?,
        ))
    }
}

/// Sums over a set of published reviews: every average derives from them,
/// so totals moved by each publication, edit and removal stay exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub count: i64,
    pub rating: i64,
    /// In [`CATEGORIES`] order (zero for a guest's totals).
    pub categories: [i64; 6],
}

impl Totals {
    /// Counts `ratings` in (`sign` 1) or out (`sign` -1).
    pub fn apply(&mut self, ratings: &Ratings, sign: i64) {
        self.count += sign;
        self.rating += sign * ratings.rating;
        if let Some(categories) = ratings.categories {
            for (sum, r) in self.categories.iter_mut().zip(categories) {
                *sum += sign * r;
            }
        }
    }

    /// The overall average in hundredths, rounded half up (0 with no
    /// reviews): the key search sorts and filters on.
    pub fn rating_x100(&self) -> i64 {
        average_x100(self.rating, self.count)
    }

    /// The overall average to two decimals (none with no reviews).
    pub fn rating_avg(&self) -> Option<f64> {
        self.average(self.rating)
    }

    /// Each category's average to two decimals (none with no reviews).
    pub fn category_avgs(&self) -> [Option<f64>; 6] {
        self.categories.map(|sum| self.average(sum))
    }

    fn average(&self, sum: i64) -> Option<f64> {
        (self.count > 0).then(|| average_x100(sum, self.count) as f64 / 100.0)
    }
}

/// `sum / count` in hundredths, rounded half up: `(200·sum + count) /
/// (2·count)` in integers (the ratings are positive).
pub fn average_x100(sum: i64, count: i64) -> i64 {
    if count <= 0 {
        0
    } else {
        (200 * sum + count) / (2 * count)
    }
}

/// A `min_rating` as search takes it: from 1 to 5, at most two decimals;
/// in hundredths.
pub fn min_rating_x100(raw: &str) -> Result<i64, FieldError> {
    let bad = || {
        FieldError::new(
            "min_rating",
            "out_of_range",
            "min_rating must be a number from 1 to 5 with at most two decimals",
        )
    };
    let raw = raw.trim();
    let (whole, fraction) = match raw.split_once('.') {
        Some((_, "")) => return Err(bad()),
        Some(parts) => parts,
        None => (raw, ""),
    };
    if whole.is_empty()
        || fraction.len() > 2
        || !whole
            .chars()
            .chain(fraction.chars())
            .all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let fraction: i64 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
    let x100 = whole.checked_mul(100).ok_or_else(bad)? + fraction;
    if (100..=500).contains(&x100) {
        Ok(x100)
    } else {
        Err(bad())
    }
}

/// When a stay's review window closes: the start of the listing's local
/// day `window_days + 1` after check-out.
pub fn window_closes_at(check_out: NaiveDate, zone: TimeZone, window_days: i64) -> DateTime<Utc> {
    zone.instant(check_out + Duration::days(window_days + 1), NaiveTime::MIN)
}

/// May its author still edit it? While unpublished, until the window
/// closes; once published, for [`EDIT_WINDOW`].
pub fn editable(
    published_at: Option<DateTime<Utc>>,
    window_closes_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    match published_at {
        Some(at) => now < at + EDIT_WINDOW,
        None => window_closes_at.is_some_and(|close| now < close),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest_input() -> ReviewInput {
        ReviewInput {
            rating: Some(5),
            categories: [Some(5), Some(4), Some(5), Some(3), Some(5), Some(4)],
            comment: Some("  Lovely <b>stay</b>  ".into()),
        }
    }

    #[test]
    fn a_guest_gives_every_category_and_a_host_only_the_rating() {
        let mut errors = FieldErrors::new();
        let (ratings, comment) = guest_input().parse_new(Side::Guest, &mut errors).unwrap();
        assert_eq!(ratings.categories, Some([5, 4, 5, 3, 5, 4]));
        assert_eq!(comment, "Lovely <b>stay</b>", "markup is kept as text");
        assert_eq!(ratings.side(), Side::Guest);

        let mut errors = FieldErrors::new();
        let host = ReviewInput {
            rating: Some(4),
            comment: Some("Tidy guest".into()),
            ..Default::default()
        };
        let (ratings, _) = host.parse_new(Side::Host, &mut errors).unwrap();
        assert_eq!((ratings.rating, ratings.categories), (4, None));

        let mut errors = FieldErrors::new();
        let mut with_categories = host.clone();
        with_categories.categories[0] = Some(5);
        assert!(with_categories.parse_new(Side::Host, &mut errors).is_some());
        assert_eq!(errors.into_vec()[0].code, "not_for_hosts");

        let mut errors = FieldErrors::new();
        assert!(host.parse_new(Side::Guest, &mut errors).is_none());
        let missing: Vec<String> = errors.into_vec().into_iter().map(|e| e.field).collect();
        assert_eq!(missing, CATEGORIES.map(String::from).to_vec());
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let mut input = guest_input();
        input.rating = Some(6);
        input.categories[2] = Some(0);
        input.comment = Some("   ".into());
        let mut errors = FieldErrors::new();
        assert!(input.parse_new(Side::Guest, &mut errors).is_none());
        let errors: Vec<(String, &str)> = errors
            .into_vec()
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect();
        assert_eq!(
            errors,
            [
                ("rating".to_owned(), "out_of_range"),
                ("communication".to_owned(), "out_of_range"),
                ("comment".to_owned(), "required"),
            ]
        );
        let mut long = guest_input();
        long.comment = Some("é".repeat(MAX_COMMENT + 1));
        let mut errors = FieldErrors::new();
        assert!(long.parse_new(Side::Guest, &mut errors).is_none());
        assert_eq!(errors.into_vec()[0].code, "too_long");
        long.comment = Some("é".repeat(MAX_COMMENT));
        let mut errors = FieldErrors::new();
        assert!(long.parse_new(Side::Guest, &mut errors).is_some());
    }

    #[test]
    fn an_edit_replaces_only_what_it_gives() {
        let current = Ratings {
            rating: 3,
            categories: Some([3; 6]),
        };
        let edit = ReviewInput {
            categories: [None, Some(5), None, None, None, None],
            ..Default::default()
        };
        let mut errors = FieldErrors::new();
        let (ratings, comment) = edit.parse_edit(&current, "ok", &mut errors).unwrap();
        assert_eq!(ratings.categories, Some([3, 5, 3, 3, 3, 3]));
        assert_eq!((ratings.rating, comment.as_str()), (3, "ok"));
        let mut errors = FieldErrors::new();
        assert!(
            ReviewInput::default()
                .parse_edit(&current, "ok", &mut errors)
                .is_none()
        );
        assert_eq!(errors.into_vec()[0].code, "nothing_to_change");
    }

    #[test]
    fn averages_round_half_up_to_hundredths_and_totals_move_both_ways() {
        assert_eq!(average_x100(14, 3), 467); // 4.6666…
        assert_eq!(average_x100(13, 3), 433); // 4.3333…
        assert_eq!(average_x100(9, 2), 450);
        assert_eq!(average_x100(1, 8), 13); // 0.125 → 0.13
        assert_eq!(average_x100(0, 0), 0);
        let mut totals = Totals::default();
        let a = Ratings {
            rating: 5,
            categories: Some([5, 4, 3, 2, 1, 5]),
        };
        let b = Ratings {
            rating: 4,
            categories: Some([4, 4, 4, 4, 4, 4]),
        };
        totals.apply(&a, 1);
        totals.apply(&b, 1);
        assert_eq!(totals.rating_avg(), Some(4.5));
        assert_eq!(totals.rating_x100(), 450);
        assert_eq!(
            totals.category_avgs(),
            [
                Some(4.5),
                Some(4.0),
                Some(3.5),
                Some(3.0),
                Some(2.5),
                Some(4.5)
            ]
        );
        totals.apply(&a, -1);
        totals.apply(&b, -1);
        assert_eq!(totals, Totals::default());
        assert_eq!(totals.rating_avg(), None);
    }

    #[test]
    fn min_rating_takes_at_most_two_decimals_from_1_to_5() {
        assert_eq!(min_rating_x100("4.5"), Ok(450));
        assert_eq!(min_rating_x100("4.05"), Ok(405));
        assert_eq!(min_rating_x100("5"), Ok(500));
        assert_eq!(min_rating_x100("1.0"), Ok(100));
        for bad in ["0.99", "5.01", "4.555", "-1", "x", "", ".5", "4.", "1e2"] {
            assert!(min_rating_x100(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_window_closes_at_local_midnight_window_plus_one_days_after_check_out() {
        let out = NaiveDate::from_ymd_opt(2027, 3, 10).unwrap();
        let paris = TimeZone::parse("Europe/Paris").unwrap();
        // 25 March 2027, 00:00 in Paris (UTC+1 before the 28th's change).
        let close = window_closes_at(out, paris, 14);
        assert_eq!(close.to_rfc3339(), "2027-03-24T23:00:00+00:00");
        assert_eq!(
            window_closes_at(out, TimeZone::UTC, 0).to_rfc3339(),
            "2027-03-11T00:00:00+00:00"
        );
    }

    #[test]
    fn edits_are_allowed_before_the_window_closes_and_48_hours_after_publication() {
        let now = Utc::now();
        let hour = Duration::hours(1);
        assert!(editable(None, Some(now + hour), now));
        assert!(!editable(None, Some(now - hour), now));
        assert!(editable(Some(now - Duration::hours(47)), None, now));
        assert!(!editable(Some(now - Duration::hours(48)), None, now));
    }
}
