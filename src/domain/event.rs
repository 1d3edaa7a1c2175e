//! Calendar events: each committed change to a listing's calendar, numbered
//! per listing (`seq` 1, 2, 3… with no gaps). Live calendars, other nodes'
//! actors and resuming clients all follow a listing through these.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::calendar::{Busy, Claim};
use super::ids::{PropertyId, UserId};
use super::stay::StayDates;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    BookingHeld,
    BookingChanged,
    BookingConfirmed,
    BookingCancelled,
    BookingExpired,
    BookingCompleted,
    BlockAdded,
    BlockRemoved,
    ListingRemoved,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        EventKind::BookingHeld,
        EventKind::BookingChanged,
        EventKind::BookingConfirmed,
        EventKind::BookingCancelled,
        EventKind::BookingExpired,
        EventKind::BookingCompleted,
        EventKind::BlockAdded,
        EventKind::BlockRemoved,
        EventKind::ListingRemoved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::BookingHeld => "booking_held",
            EventKind::BookingChanged => "booking_changed",
            EventKind::BookingConfirmed => "booking_confirmed",
            EventKind::BookingCancelled => "booking_cancelled",
            EventKind::BookingExpired => "booking_expired",
            EventKind::BookingCompleted => "booking_completed",
            EventKind::BlockAdded => "block_added",
            EventKind::BlockRemoved => "block_removed",
            EventKind::ListingRemoved => "listing_removed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What the entry's status is after this event (`blocked` for a block).
    pub fn status(self) -> Option<&'static str> {
        match self {
            EventKind::BookingHeld | EventKind::BookingChanged => Some("pending"),
            EventKind::BookingConfirmed => Some("confirmed"),
            EventKind::BookingCancelled => Some("cancelled"),
            EventKind::BookingExpired => Some("expired"),
            EventKind::BookingCompleted => Some("completed"),
            EventKind::BlockAdded => Some("blocked"),
            EventKind::BlockRemoved => Some("removed"),
            EventKind::ListingRemoved => None,
        }
    }

    /// Is it about a guest's booking (and so of interest to the guest and host)?
    pub fn is_booking(self) -> bool {
        matches!(
            self,
            EventKind::BookingHeld
                | EventKind::BookingChanged
                | EventKind::BookingConfirmed
                | EventKind::BookingCancelled
                | EventKind::BookingExpired
                | EventKind::BookingCompleted
        )
    }
}

/// One committed change, as the bus carries it, between nodes too.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalendarEvent {
    pub property_id: PropertyId,
    pub seq: i64,
    pub kind: EventKind,
    /// The booking or block it is about (none for `listing_removed`).
    pub entry_id: Option<i64>,
    pub check_in: Option<NaiveDate>,
    pub check_out: Option<NaiveDate>,
    /// A hold's expiry: it stops claiming its nights then.
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
    /// Routing only: whose user channel hears of it. Never sent to a
    /// listing's subscribers.
    pub guest_id: Option<UserId>,
    pub host_id: UserId,
}

/// What an event does to a calendar.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// These nights are claimed (or the claim with this id changed).
    Claim(Claim),
    /// The claim with this id no longer holds its nights.
    Free(i64),
    /// The listing is gone.
    Delisted,
}

impl CalendarEvent {
    pub fn effect(&self) -> Option<Effect> {
        let busy = match self.kind {
            EventKind::ListingRemoved => return Some(Effect::Delisted),
            EventKind::BookingCancelled | EventKind::BookingExpired | EventKind::BlockRemoved => {
                return self.entry_id.map(Effect::Free);
            }
            EventKind::BookingHeld | EventKind::BookingChanged => Busy::Held,
            EventKind::BookingConfirmed | EventKind::BookingCompleted => Busy::Booked,
            EventKind::BlockAdded => Busy::Blocked,
        };
        let (id, check_in, check_out) = (self.entry_id?, self.check_in?, self.check_out?);
        Some(Effect::Claim(Claim {
            id,
            dates: StayDates::from_stored(check_in, check_out),
            busy,
            held_until: self.hold_expires_at.filter(|_| busy == Busy::Held),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> CalendarEvent {
        CalendarEvent {
            property_id: PropertyId(1),
            seq: 1,
            kind,
            entry_id: Some(7),
            check_in: NaiveDate::from_ymd_opt(2030, 1, 1),
            check_out: NaiveDate::from_ymd_opt(2030, 1, 4),
            hold_expires_at: Some(Utc::now()),
            at: Utc::now(),
            guest_id: Some(UserId(3)),
            host_id: UserId(2),
        }
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
        }
        assert_eq!(EventKind::parse("booking_paid"), None);
    }

    #[test]
    fn holds_bookings_and_blocks_claim_nights_and_the_rest_free_them() {
        let held = event(EventKind::BookingHeld).effect();
        assert!(matches!(
            held,
            Some(Effect::Claim(Claim {
                id: 7,
                busy: Busy::Held,
                held_until: Some(_),
                ..
            }))
        ));
        let booked = event(EventKind::BookingConfirmed).effect();
        assert!(matches!(
            booked,
            Some(Effect::Claim(Claim {
                busy: Busy::Booked,
                held_until: None,
                ..
            }))
        ));
        let blocked = event(EventKind::BlockAdded).effect();
        assert!(matches!(
            blocked,
            Some(Effect::Claim(Claim {
                busy: Busy::Blocked,
                ..
            }))
        ));
        for kind in [
            EventKind::BookingCancelled,
            EventKind::BookingExpired,
            EventKind::BlockRemoved,
        ] {
            assert_eq!(event(kind).effect(), Some(Effect::Free(7)));
        }
        assert_eq!(
            event(EventKind::ListingRemoved).effect(),
            Some(Effect::Delisted)
        );
    }
}
