//! Target none: no MAAS. The lab's BMCs (and nothing that boots) are
//! driven directly by the harness (drive/bmc.rs).

use async_trait::async_trait;

use crate::maas::client::MaasClient;
use crate::run::context::RunContext;
use crate::run::error::StageError;
use crate::run::lab::{LabShape, Network};

use super::Target;

pub struct NoMaas;

#[async_trait]
impl Target for NoMaas {
    fn lab_shape(&self) -> LabShape {
        LabShape {
            network: Network::Own { rack_ip: true },
            vms: false,
        }
    }

    async fn deploy(&mut self, _cx: &RunContext<'_>) -> Result<Option<MaasClient>, StageError> {
        Ok(None)
    }
}
