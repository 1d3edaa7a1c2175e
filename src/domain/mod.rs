//! Pure types and rules, no I/O. A value of one of these types is valid by construction.

pub mod audit;
pub mod booking;
pub mod calendar;
pub mod cancellation;
pub mod crypto;
pub mod event;
pub mod idempotency;
pub mod ids;
pub mod money;
pub mod payment;
pub mod pricing;
pub mod property;
pub mod review;
pub mod stay;
pub mod user;
pub mod validation;

pub use booking::{BookingStatus, RefusedTransition, Transition};
pub use event::{CalendarEvent, EventKind};
pub use ids::{BlockId, BookingId, PropertyId, UserId};
pub use money::Currency;
pub use property::{Amenities, Country, Listing, ListingInput};
pub use stay::{StayDates, StayRules};
pub use user::{Email, Password, PersonName, Role};
pub use validation::{FieldError, FieldErrors};
