//! Actors: the owners of state that many requests touch at once.

pub mod bus;
pub mod property;
pub mod refunds;
pub mod registry;
pub mod relay;
pub mod session;

pub use bus::EventBus;
pub use property::PropertyActor;
pub use registry::PropertyRegistry;
