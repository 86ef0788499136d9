//! The harness spine: scenarios, plans, the run pipeline, reports.

#[path = "support/walk.rs"]
mod walk;

mod spine {
    pub mod chart_dry_run;
    pub mod cli;
    pub mod e2e;
    pub mod failures;
    pub mod invalid_scenarios;
    pub mod kill_points;
    pub mod plan;
    pub mod qualify;
    pub mod report;
    pub mod router_adverts;
    pub mod teardown;
}
