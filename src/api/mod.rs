//! The API surface. REST lives under `/api/v1`; operations endpoints at the root.

pub mod rest;
