//! The run pipeline: stages, teardown guarantee, the registry of runs.

pub mod down;
pub mod state;
pub mod teardown;
