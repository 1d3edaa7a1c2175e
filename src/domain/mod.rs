//! Pure types and rules, no I/O. A value of one of these types is valid by construction.

pub mod ids;
pub mod user;
pub mod validation;

pub use ids::UserId;
pub use user::{Email, Password, PersonName, Role};
pub use validation::{FieldError, FieldErrors};
