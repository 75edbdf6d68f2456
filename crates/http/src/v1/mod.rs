//! The v1 API.

pub mod count;
pub mod petitions;
pub mod signatures;
