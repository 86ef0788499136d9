//! The run pipeline: stages, teardown guarantee, the registry of runs.

pub mod chart;
pub mod down;
pub mod dry_run;
pub mod env;
pub mod pipeline;
pub mod qualify;
pub mod state;
pub mod teardown;
