//! What every stage is handed: the plan, the target's flags, and the
//! teardown that every created resource is registered with first.

use crate::plan::{MachinePlan, Plan};
use crate::run::error::StageError;
use crate::run::options::TargetOptions;
use crate::run::state::Resource;
use crate::run::teardown::Teardown;

pub struct RunContext<'p> {
    pub plan: &'p Plan,
    pub options: &'p TargetOptions,
    /// The runner's teardown: stages register, the runner removes.
    pub teardown: Teardown,
}

impl<'p> RunContext<'p> {
    /// Record a resource in the run's state file before creating it, so
    /// teardown and `down` find it whatever happens next.
    pub fn register(&self, r: Resource) -> Result<(), StageError> {
        Ok(self.teardown.register(r)?)
    }

    /// The plan machines a step names (a machine, a group or `all`).
    pub fn machines(&self, name: &str) -> Result<Vec<&'p MachinePlan>, StageError> {
        let ms = self.plan.select(name);
        if ms.is_empty() {
            Err(StageError::Step(format!("no machine `{name}`")))
        } else {
            Ok(ms)
        }
    }
}
