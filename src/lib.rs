//! Roost: a real-time reservation server for an Airbnb-style platform.
//! See README.md for what it does and ../ARCHITECTURE.md for its shape.

pub mod actors;
pub mod api;
pub mod auth;
pub mod commit;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod payments;
pub mod search;
pub mod seed;
pub mod services;
pub mod startup;
pub mod state;
pub mod telemetry;
