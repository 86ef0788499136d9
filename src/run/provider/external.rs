//! Target external: a MAAS that already runs, reached with
//! `--maas-url/--api-key`, whose rack serves the bridge named by
//! `--lab-bridge`. Nothing is deployed. The lab is ours only in part: our
//! namespace joins that bridge with a veth holding the BMC addresses
//! (`--bmc-addresses`), and our VMs' NICs attach to it; the bridge itself
//! belongs to the user and is left as found.
//!
//! The run refuses to start when the MAAS is unreachable, refuses the key,
//! or already knows one of the run's MACs (two runs with one seed on one
//! bridge would fight over it). At stop the machines this run enlisted
//! are deleted from the MAAS, unless `--keep`.

use async_trait::async_trait;

use crate::maas::client::MaasClient;
use crate::run::context::RunContext;
use crate::run::drive::maas::machine_with_macs;
use crate::run::error::StageError;
use crate::run::lab::{LabShape, Network};
use crate::targets::external::External;

use super::{Target, harness_client};

#[derive(Default)]
pub struct ExternalTarget {
    /// Made at preflight, handed to drive at deploy.
    client: Option<MaasClient>,
}

#[async_trait]
impl Target for ExternalTarget {
    fn lab_shape(&self) -> LabShape {
        LabShape {
            network: Network::JoinExisting,
            vms: true,
        }
    }

    /// The MAAS first: a wrong URL or key starts nothing.
    async fn preflight(&mut self, cx: &RunContext<'_>) -> Result<(), StageError> {
        let p = cx.plan;
        let external = External::from_args(
            cx.options.maas_url.as_deref(),
            cx.options.api_key.as_deref(),
        )?;
        let version = external.check().await?;
        tracing::info!(url = %external.url, version = %version.version, "external MAAS answers");
        let client = harness_client(external.client()?);
        let known = client.machines().await.map_err(|e| {
            StageError::Target(format!("external MAAS {}: machines/: {e}", external.url))
        })?;
        for m in &p.machines {
            if let Some(x) = machine_with_macs(&known, m) {
                let macs: Vec<&str> = m.nics.iter().map(|n| n.mac.as_str()).collect();
                return Err(StageError::Target(format!(
                    "external MAAS {} already has machine {} ({}) with a MAC of {} ({}; from an earlier run with seed {}?); delete it there or pick another --seed",
                    external.url,
                    x.system_id,
                    x.hostname,
                    m.name,
                    macs.join(", "),
                    p.seed
                )));
            }
        }
        self.client = Some(client);
        Ok(())
    }

    /// Nothing to deploy: the MAAS runs already (checked at preflight).
    async fn deploy(&mut self, _cx: &RunContext<'_>) -> Result<Option<MaasClient>, StageError> {
        Ok(self.client.take())
    }

    fn without_maas(&self) -> Option<&'static str> {
        Some("the sim region is not running")
    }

    /// Delete what this run enlisted in someone else's MAAS (not with --keep).
    async fn stop(&mut self, cx: &RunContext<'_>, maas: Option<MaasClient>) {
        if cx.teardown.keeps() {
            return;
        }
        let Some(client) = maas.or_else(|| self.client.take()) else {
            return;
        };
        let known = client.machines().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list the external MAAS's machines; the run's machines stay there");
            Vec::new()
        });
        for m in &cx.plan.machines {
            if let Some(x) = machine_with_macs(&known, m)
                && let Err(e) = client.delete_machine(&x.system_id).await
            {
                tracing::warn!(machine = %m.name, system_id = %x.system_id, error = %e, "cannot delete the machine from the external MAAS");
            }
        }
        // The scripts the scenario uploaded would run in every later
        // commissioning there. A 404: the step never got to upload it.
        for name in &cx.plan.uploaded_scripts {
            match client.delete_script(name).await {
                Err(e) if e.status() != Some(404) => {
                    tracing::warn!(script = %name, error = %e, "cannot delete the uploaded script from the external MAAS");
                }
                _ => {}
            }
        }
    }
}
