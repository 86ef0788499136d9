//! The sim and external targets' environment: VMs under libvirt behind the
//! BMCs (in-band + libvirt power), the sim region and rack (or an external
//! MAAS), and steps that go through the MAAS API.

use crate::run::pipeline::Observation;
use crate::scenario::Step;

use super::Env;

/// What the sim/external targets hold between stages.
#[derive(Default)]
pub struct SimEnv {}

impl Env<'_> {
    pub(super) async fn sim_lab_up(&mut self) -> Result<(), String> {
        let _ = (&self.options, &self.teardown, &self.lab, &self.fleet);
        Err(format!("target {}: the lab with VMs is not available in this build yet", self.plan.target))
    }

    pub(super) async fn sim_deploy(&mut self) -> Result<(), String> {
        Err(format!("target {}: deploy is not available in this build yet", self.plan.target))
    }

    pub(super) async fn sim_step(&mut self, step: &Step) -> Result<(), String> {
        Err(format!("target {}: step {:?} is not available in this build yet", self.plan.target, step))
    }

    pub(super) async fn sim_observe(&mut self) -> Result<Observation, String> {
        Err(format!("target {}: observe is not available in this build yet", self.plan.target))
    }

    pub(super) async fn sim_stop(&mut self) {
        let _ = &self.sim;
    }
}
