//! Integration tests: the real service against the real Postgres and Redis.

mod batches;
mod command_line;
mod connections;
mod contract;
mod counting;
mod durability;
mod errors;
mod events;
mod exports;
mod fake_hcaptcha;
mod grouping;
mod instances;
mod kiosk;
mod limits;
mod moderation;
mod operators;
mod operators_cli;
mod paper;
mod petitions;
mod readme;
mod redis_outage;
mod roles;
mod shutdown;
mod support;
mod timing;
mod web;
