//! `crate::lab::netns` of the main crate, which the BMC's UDP server uses.

#[path = "../../src/lab/netns.rs"]
pub mod netns;
