//! Integration tests of the sim target and the MAAS client: a real local
//! Postgres (run as the postgres user), the sim region on 127.0.0.1, real
//! HTTP clients (reqwest, busybox wget) and named fake FreeIPMI scripts
//! until the project's BMC can answer for real.

#[path = "sim/api_errors.rs"]
mod api_errors;
#[path = "sim/bench.rs"]
mod bench;
#[path = "sim/client.rs"]
mod client;
#[path = "sim/common.rs"]
mod common;
#[path = "sim/guest.rs"]
mod guest;
#[path = "sim/libmaas.rs"]
mod libmaas;
#[path = "sim/netns.rs"]
mod netns;
#[path = "sim/postgres.rs"]
mod postgres;
#[path = "sim/power.rs"]
mod power;
#[path = "sim/profile36.rs"]
mod profile36;
#[path = "sim/region.rs"]
mod region;
#[path = "sim/scenarios.rs"]
mod scenarios;
#[path = "sim/user_scripts.rs"]
mod user_scripts;
