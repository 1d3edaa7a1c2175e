//! What the API does, over the database and the actors; no HTTP here.

pub mod accounts;
pub mod audit;
pub mod bookings;
pub mod housekeeping;
pub mod listing_cache;
pub mod payments;
pub mod pricing;
pub mod properties;
pub mod reviews;
