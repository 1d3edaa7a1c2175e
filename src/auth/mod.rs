//! Authentication: password hashing, bearer tokens, and the extractor that
//! turns an `Authorization` header into the signed-in user.

pub mod cache;
pub mod extractor;
pub mod password;
pub mod token;

pub use extractor::AuthUser;
