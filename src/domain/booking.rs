//! A booking's life, and what it costs.
//!
//! ```text
//! pending ──confirm──► confirmed ──complete──► completed
//!    │                  ▲  │
//!    ├──expire──► expired  │   (confirm_late: paid after the hold lapsed,
//!    │                     │    the nights still free)
//!    └──cancel──► cancelled ◄──cancel──┘
//! ```
//!
//! A pending booking is a hold: it claims its nights until `hold_expires_at`.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BookingStatus {
    Pending,
    Confirmed,
    Completed,
    Expired,
    Cancelled,
}

/// Something that happens to a booking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Confirm,
    /// Paid after the hold lapsed, with the nights still free.
    ConfirmLate,
    Complete,
    Expire,
    Cancel,
}

/// A transition the booking's current status does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {from} booking cannot be {verb}", verb = .transition.past_tense())]
pub struct RefusedTransition {
    pub from: BookingStatus,
    pub transition: Transition,
}

impl BookingStatus {
    pub const ALL: [BookingStatus; 5] = [
        BookingStatus::Pending,
        BookingStatus::Confirmed,
        BookingStatus::Completed,
        BookingStatus::Expired,
        BookingStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Pending => "pending",
            BookingStatus::Confirmed => "confirmed",
            BookingStatus::Completed => "completed",
            BookingStatus::Expired => "expired",
            BookingStatus::Cancelled => "cancelled",
        }
    }

    /// Does a booking in this status still claim its nights?
    pub fn holds_dates(self) -> bool {
        matches!(
            self,
            BookingStatus::Pending | BookingStatus::Confirmed | BookingStatus::Completed
        )
    }

    /// The status after `transition`, or why it is refused.
    pub fn apply(self, transition: Transition) -> Result<BookingStatus, RefusedTransition> {
        use BookingStatus::*;
        use Transition::*;
        match (self, transition) {
            (Pending, Confirm) => Ok(Confirmed),
            (Expired, ConfirmLate) => Ok(Confirmed),
            (Pending, Expire) => Ok(Expired),
            (Confirmed, Complete) => Ok(Completed),
            (Pending | Confirmed, Cancel) => Ok(Cancelled),
            (from, transition) => Err(RefusedTransition { from, transition }),
        }
    }
}

impl Transition {
    fn past_tense(self) -> &'static str {
        match self {
            Transition::Confirm | Transition::ConfirmLate => "confirmed",
            Transition::Complete => "completed",
            Transition::Expire => "expired",
            Transition::Cancel => "cancelled",
        }
    }
}

impl fmt::Display for BookingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BookingStatus {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BookingStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::BookingStatus::*;
    use super::Transition::*;
    use super::*;

    #[test]
    fn every_allowed_transition() {
        assert_eq!(Pending.apply(Confirm), Ok(Confirmed));
        assert_eq!(Expired.apply(ConfirmLate), Ok(Confirmed));
        assert_eq!(Pending.apply(Expire), Ok(Expired));
        assert_eq!(Pending.apply(Cancel), Ok(Cancelled));
        assert_eq!(Confirmed.apply(Complete), Ok(Completed));
        assert_eq!(Confirmed.apply(Cancel), Ok(Cancelled));
    }

    #[test]
    fn every_other_transition_is_refused() {
        let allowed = [
            (Pending, Confirm),
            (Expired, ConfirmLate),
            (Pending, Expire),
            (Pending, Cancel),
            (Confirmed, Complete),
            (Confirmed, Cancel),
        ];
        let mut refused = 0;
        for from in BookingStatus::ALL {
            for t in [Confirm, ConfirmLate, Complete, Expire, Cancel] {
                if allowed.contains(&(from, t)) {
                    continue;
                }
                assert_eq!(
                    from.apply(t),
                    Err(RefusedTransition {
                        from,
                        transition: t
                    }),
                    "{from} -> {t:?}"
                );
                refused += 1;
            }
        }
        assert_eq!(refused, 19);
        assert_eq!(
            Expired.apply(Cancel).unwrap_err().to_string(),
            "a expired booking cannot be cancelled"
        );
    }

    #[test]
    fn only_live_bookings_hold_dates() {
        assert!(Pending.holds_dates() && Confirmed.holds_dates() && Completed.holds_dates());
        assert!(!Expired.holds_dates() && !Cancelled.holds_dates());
    }

    #[test]
    fn statuses_round_trip() {
        for s in BookingStatus::ALL {
            assert_eq!(s.as_str().parse::<BookingStatus>(), Ok(s));
        }
        assert!("blocked".parse::<BookingStatus>().is_err());
    }
}
