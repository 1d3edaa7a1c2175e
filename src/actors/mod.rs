//! Actors: the owners of state that many requests touch at once.

pub mod property;
pub mod registry;

pub use property::PropertyActor;
pub use registry::PropertyRegistry;
