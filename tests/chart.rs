//! The chart target's tests: plan snapshots, kube waits against a mocked
//! API server, Postgres through testcontainers, lab wiring into a real
//! container, prerequisites, the qualification summary, and whole
//! `run --target chart` runs against mock kind/helm/kubectl, a mock API
//! server and the sim region (pipeline.rs), and the real chart rendered by
//! the real Helm engine (render.rs). No test here boots a VM.

#[path = "chart/common.rs"]
mod common;
#[path = "chart/image_build.rs"]
mod image_build;
#[path = "chart/maas_config.rs"]
mod maas_config;
#[path = "chart/pipeline.rs"]
mod pipeline;
#[path = "chart/plan.rs"]
mod plan;
#[path = "chart/postgres.rs"]
mod postgres;
#[path = "chart/prereq.rs"]
mod prereq;
#[path = "chart/qualification.rs"]
mod qualification;
#[path = "chart/render.rs"]
mod render;
#[path = "chart/run.rs"]
mod run;
#[path = "chart/waits.rs"]
mod waits;
#[path = "chart/wiring.rs"]
mod wiring;
