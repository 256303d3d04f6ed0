//! Instant updates: the relay protocol shared by `listen` and `relay`, and the small HTTP
//! server code both use.

pub mod admission;
pub mod http;
pub mod protocol;
