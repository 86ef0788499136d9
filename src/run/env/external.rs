//! The external target's environment: a MAAS that already runs, reached
//! with `--maas-url/--api-key`, whose rack serves the bridge named by
//! `--lab-bridge`. Nothing is deployed. The lab is ours only in part: our
//! namespace joins that bridge with a veth holding the BMC addresses
//! (`--bmc-addresses`), and our VMs' NICs attach to it; the bridge itself
//! belongs to the user and is left as found.
//!
//! The run refuses to start when the MAAS is unreachable, refuses the key,
//! or already knows one of the run's MACs (two runs with one seed on one
//! bridge would fight over it). At stop the machines this run enlisted
//! are deleted from the MAAS, unless `--keep`.

use std::time::Duration;

use crate::lab::vm;
use crate::maas::client::RetryPolicy;
use crate::run::state::Resource;
use crate::targets::external::External;

use super::Env;
use super::sim::machine_with_macs;

impl<'p> Env<'p> {
    pub(super) async fn external_lab_up(&mut self) -> Result<(), String> {
        let p = self.plan;
        // The MAAS first: a wrong URL or key starts nothing.
        let external = External::from_args(
            self.options.maas_url.as_deref(),
            self.options.api_key.as_deref(),
        )
        .map_err(|e| e.to_string())?;
        let version = external.check().await.map_err(|e| e.to_string())?;
        tracing::info!(url = %external.url, version = %version.version, "external MAAS answers");
        let client = external
            .client()
            .map_err(|e| e.to_string())?
            .with_retry(RetryPolicy {
                attempts: 4,
                base_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(2),
            })
            .with_poll_interval(super::sim::POLL);
        let known = client
            .machines()
            .await
            .map_err(|e| format!("external MAAS {}: machines/: {e}", external.url))?;
        for m in &p.machines {
            if let Some(x) = machine_with_macs(&known, m) {
                let macs: Vec<&str> = m.nics.iter().map(|n| n.mac.as_str()).collect();
                return Err(format!(
                    "external MAAS {} already has machine {} ({}) with a MAC of {} ({}; from an earlier run with seed {}?); delete it there or pick another --seed",
                    external.url,
                    x.system_id,
                    x.hostname,
                    m.name,
                    macs.join(", "),
                    p.seed
                ));
            }
        }

        self.register(Resource::Dir {
            path: p.host.vm_dir.clone(),
        })?;
        self.register(Resource::Netns {
            name: p.host.netns.clone(),
        })?;
        self.register(Resource::Link {
            name: p.host.veth_host.clone(),
        })?;
        vm::run_dir(p.run_id.as_str()).map_err(|e| format!("{}: {e}", p.host.vm_dir.display()))?;
        for m in &p.machines {
            let dir = p.host.run_dir.join("machines").join(&m.name);
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let addresses: Vec<String> = p
            .machines
            .iter()
            .map(|m| format!("{}/{}", m.bmc.lan_ip, p.lab.prefix_len))
            .collect();
        crate::lab::net::join_existing_bridge(
            &p.host.netns,
            &p.host.bridge,
            &p.host.veth_host,
            &p.host.veth_lab,
            &addresses,
        )
        .await
        .map_err(|e| format!("--lab-bridge {}: {e}", p.host.bridge))?;
        self.sim.client = Some(client);
        self.machines_up().await
    }

    /// Nothing to deploy: the MAAS runs already (checked at lab).
    pub(super) async fn external_deploy(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// Delete what this run enlisted in someone else's MAAS (not with --keep).
    pub(super) async fn external_forget_machines(&mut self) {
        if self.teardown.keeps() {
            return;
        }
        let Some(client) = self.sim.client.clone() else {
            return;
        };
        let known = match client.machines().await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the external MAAS's machines; the run's machines stay there");
                return;
            }
        };
        for m in &self.plan.machines {
            if let Some(x) = machine_with_macs(&known, m)
                && let Err(e) = client.delete_machine(&x.system_id).await
            {
                tracing::warn!(machine = %m.name, system_id = %x.system_id, error = %e, "cannot delete the machine from the external MAAS");
            }
        }
    }
}
