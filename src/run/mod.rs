//! The run: one module per stage of the flow, and the runner that calls
//! them in order (docs/architecture.md draws it).
//!
//! plan (crate::plan) -> lab -> target (deploy) -> drive -> observe ->
//! report; `pipeline` orchestrates, `teardown` and `state` guarantee that
//! what a run created goes away, `down` and `qualify` build on them.

pub mod batch;
pub mod chart_check;
pub mod context;
pub mod down;
pub mod drive;
pub mod dry_run;
pub mod error;
pub mod lab;
pub mod observe;
pub mod options;
pub mod pipeline;
pub mod provider;
pub mod qualify;
pub mod record;
pub mod report;
pub mod state;
pub mod teardown;
