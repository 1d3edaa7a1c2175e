//! One test binary: every scenario runs against the real server over HTTP,
//! on SQLite and on PostgreSQL.

mod helpers;

mod audit;
mod auth;
mod binary;
mod bookings;
mod browser;
mod changes;
mod completion;
mod concurrency;
mod cors;
mod errors;
mod graphql;
mod graphql_idempotency;
mod graphql_live;
mod group_commit;
mod holds;
mod idempotency;
mod listing_cache;
mod live;
mod nodes;
mod openapi;
mod ops;
mod paid_changes;
mod payments;
mod pricing;
mod properties;
mod rate_limit;
mod reconciliation;
mod refunds;
mod reviews;
mod search;
mod seed;
mod stay_rules;
mod stripe;
mod upgrade;
mod users;
