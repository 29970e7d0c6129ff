//! The typed GHL client: auth, rate limiting, retries and pagination streams.

pub mod rate;

pub use rate::RateSpec;
