//! The v1 API.

pub mod audit;
pub mod batches;
pub mod blocks;
pub mod count;
pub mod erasures;
pub mod events;
pub mod exports;
pub mod history;
pub mod imports;
pub mod invalidations;
pub mod petitions;
pub mod signals;
pub mod signatures;
pub mod tokens;
pub mod webhooks;
pub mod withdrawals;
