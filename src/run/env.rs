//! The environment of one run: the lab, the BMCs, the target, and the
//! operations steps perform on them. Stages call these; nothing here
//! reaches back into the scenario file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::plan::Plan;
use crate::report::checks::{Observed, ObservedApi};
use crate::report::result::{MachineResult, RunResult};
use crate::run::pipeline::Observation;
use crate::run::teardown::Teardown;
use crate::scenario::{Step, TargetKind};

/// Target-specific flags from the command line.
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    pub maas_url: Option<String>,
    pub api_key: Option<String>,
    pub lab_bridge: Option<String>,
    pub chart: Option<PathBuf>,
    pub values: Option<PathBuf>,
    pub image_repo: Option<String>,
    pub image_tag: Option<String>,
    pub kind_config: Option<PathBuf>,
    pub keep_cluster: bool,
    pub reuse_cluster: Option<String>,
    pub postgres_container: bool,
}

pub struct Env<'p> {
    plan: &'p Plan,
    #[allow(dead_code)]
    options: TargetOptions,
    #[allow(dead_code)]
    teardown: Teardown,
}

impl<'p> Env<'p> {
    pub fn new(plan: &'p Plan, options: &TargetOptions, teardown: Teardown) -> Self {
        Env { plan, options: options.clone(), teardown }
    }

    pub async fn lab_up(&mut self) -> Result<(), String> {
        Err(format!("target {}: the lab stage is not available in this build yet", self.plan.target))
    }

    pub async fn deploy(&mut self) -> Result<(), String> {
        match self.plan.target {
            TargetKind::None => Ok(()),
            t => Err(format!("target {t}: deploy is not available in this build yet")),
        }
    }

    pub async fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Sleep(d) => {
                tokio::time::sleep(d.0).await;
                Ok(())
            }
            other => Err(format!("step {other:?} is not available in this build yet")),
        }
    }

    pub async fn observe(&mut self) -> Result<Observation, String> {
        let mut result = RunResult { scenario: self.plan.scenario.clone(), target: self.plan.target.to_string(), machines: BTreeMap::new() };
        let mut observed = BTreeMap::new();
        for m in &self.plan.machines {
            result.machines.insert(m.name.clone(), MachineResult::default());
            observed.insert(m.name.clone(), Observed::default());
        }
        Ok((result, observed, ObservedApi::default()))
    }

    /// Stop in-process services (BMCs, servers) before teardown removes
    /// what they sit on.
    pub async fn stop(&mut self) {}
}
