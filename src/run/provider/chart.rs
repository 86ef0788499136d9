//! Target chart: kind + Postgres + the MaaS chart, deployed by
//! `targets::chart::ChartRun`, then driven like any MAAS.
//!
//! preflight (before the lab): the programs and the chart options. deploy:
//! register what the run will create (so `down` finds it by run id), run
//! `ChartRun::deploy`, make the MAAS client from the secret's key (drive
//! and observe use it as on sim), then configure MAAS
//! (`plan.maas_calls()`). checks: the chart's own (`plan.expectations()`).
//! collect: on failure or `--collect`. stop: `ChartRun::teardown` on every
//! exit path. The chart's options from a plan and the command line are
//! made here too: the one place where a scenario meets `targets::chart`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::maas::{ApiKey, MaasClient};
use crate::plan::Plan;
use crate::report::checks::ObservedApi;
use crate::report::events::Outcome;
use crate::run::context::RunContext;
use crate::run::error::StageError;
use crate::run::lab::{LabShape, Network};
use crate::run::options::TargetOptions;
use crate::run::state::{self, Resource};
use crate::targets::chart::configure::{self, Captured, ConfigureContext};
use crate::targets::chart::plan::files;
use crate::targets::chart::wiring;
use crate::targets::chart::{
    ChartOptions, ChartOptionsError, ChartPlan, ChartRun, ClusterSource, Deployed, Ipv4Cidr,
    LabLink, PostgresMode, WiringOptions, checks, prereq, render_check,
};

use super::{Target, harness_client};

/// What the chart target holds between stages.
#[derive(Default)]
pub struct ChartTarget {
    /// The deployment; kept here (not in the deploy future) so Ctrl-C
    /// mid-deploy still reaches its teardown.
    run: Option<ChartRun>,
    deployed: Option<Deployed>,
    /// What configuring MAAS found (`rack_id`, `subnet_id`, ...).
    captured: Captured,
    /// Registered for `down`; forgotten again once `ChartRun::teardown`
    /// removed them itself.
    resources: Vec<Resource>,
    /// `--keep-cluster` (or `--keep`): the chart's teardown leaves the
    /// wiring, so the runner's teardown still removes the node netns names.
    keep_cluster: bool,
}

/// What a chart run creates on the host, for the run's state file: the
/// cluster (or, on a reused cluster, the release), the Postgres container,
/// the names given to the nodes' network namespaces. Nothing the user
/// keeps (`--keep-cluster`) is listed; a reused cluster never is.
pub fn chart_resources(opts: &ChartOptions, plan: &ChartPlan) -> Vec<Resource> {
    let mut out: Vec<Resource> = plan
        .wiring
        .iter()
        .map(|w| Resource::NetnsName {
            name: w.node_netns.clone(),
        })
        .collect();
    if opts.keep_cluster {
        return out;
    }
    match &opts.cluster {
        ClusterSource::Create { .. } => out.push(Resource::KindCluster {
            name: plan.cluster_name.clone(),
        }),
        ClusterSource::Reuse { .. } => out.push(Resource::HelmRelease {
            release: plan.release.clone(),
            namespace: plan.namespace.clone(),
            kubeconfig: plan.kubeconfig.clone(),
        }),
    }
    if opts.postgres.mode == PostgresMode::Container
        && let Some(pg) = &plan.postgres
    {
        out.push(Resource::Container {
            name: pg.name.clone(),
        });
    }
    out
}

/// The chart run for this plan. The rack, in the kind node, takes the lab's
/// rack address on a bridge inside the node (the nic_filter patch hides
/// veths); the dynamic range is the plan's.
pub fn chart_options(plan: &Plan, t: &TargetOptions) -> Result<ChartOptions, ChartOptionsError> {
    let wiring = WiringOptions {
        // The lab stage's bridges live in the host namespace (VM NICs
        // attach there); the lab namespace holds only their veth ends.
        lab_netns: None,
        links: vec![LabLink {
            lab_bridge: plan.host.bridge.clone(),
            node_bridge: "maas-pxe".into(),
            rack_address: Ipv4Cidr {
                addr: plan.lab.rack_ip,
                prefix: plan.lab.prefix_len,
            },
        }],
        dynamic_range: plan.lab.dhcp_range,
        gateway: None,
    };
    let mut opts = t.chart.to_options(
        plan.run_id.as_str(),
        plan.host.run_dir.clone(),
        false,
        plan.machines.len() as u32,
        wiring,
    )?;
    // The region secret from the seed (hex: MAAS reads it with a2b_hex).
    opts.secrets.region_secret = crate::targets::chart::options::region_secret_from_seed(plan.seed);
    Ok(opts)
}

/// How often the chart's MAAS is polled while configuring.
const POLL: Duration = Duration::from_secs(2);

/// A chart failure, said as `chart target: why`.
fn chart_err(e: impl std::fmt::Display) -> StageError {
    StageError::Target(format!("chart target: {e}"))
}

impl ChartTarget {
    fn options(&self, cx: &RunContext<'_>) -> Result<ChartOptions, StageError> {
        let mut opts = chart_options(cx.plan, cx.options).map_err(chart_err)?;
        // --keep leaves everything, the cluster included.
        if cx.teardown.keeps() {
            opts.keep_cluster = true;
        }
        Ok(opts)
    }

    async fn target_checks(&self, maas: Option<&MaasClient>) -> Vec<(String, Outcome)> {
        let Some(run) = &self.run else {
            return Vec::new();
        };
        let expectations = run.plan.expectations();
        let (Some(deployed), Some(client)) = (&self.deployed, maas) else {
            let why = Outcome::Skipped("the chart was not deployed".into());
            return expectations
                .iter()
                .map(|e| (checks::describe(e), why.clone()))
                .collect();
        };
        let forwarded =
            BTreeMap::from([(5240, deployed.region_port), (5249, deployed.rack_rpc_port)]);
        let target = checks::CheckTarget {
            client,
            maas_url: &deployed.maas_url,
            api_key: &deployed.api_key.0,
            rack_id: self.captured.get("rack_id").map(String::as_str),
            forwarded: &forwarded,
        };
        let mut out = Vec::new();
        for e in &expectations {
            let outcome = match checks::evaluate(e, &target).await {
                Ok(()) => Outcome::Passed,
                Err(why) => Outcome::Failed(why),
            };
            out.push((checks::describe(e), outcome));
        }
        out
    }
}

#[async_trait]
impl Target for ChartTarget {
    /// The rack's address lives on a bridge inside the kind node
    /// (targets::chart::wiring), so the lab must not hold it too.
    fn lab_shape(&self) -> LabShape {
        LabShape {
            network: Network::Own { rack_ip: false },
            vms: true,
        }
    }

    /// Kind, helm, kubectl, docker and the chart options: nothing is
    /// created when one is missing.
    async fn preflight(&mut self, cx: &RunContext<'_>) -> Result<(), StageError> {
        prereq::check()?;
        let opts = self.options(cx)?;
        ChartPlan::new(&opts).map_err(chart_err)?;
        // The chart rendered with the run's values, checked against the plan.
        let report = render_check::check(
            &opts,
            render_check::CheckSettings {
                require_local_images: true,
                ..Default::default()
            },
        )
        .map_err(|e| chart_err(format!("chart check: {e}")))?;
        if report.passed() {
            Ok(())
        } else {
            Err(chart_err(format!(
                "the chart does not fit the plan (nothing was started):\n{}",
                report.table()
            )))
        }
    }

    async fn deploy(&mut self, cx: &RunContext<'_>) -> Result<Option<MaasClient>, StageError> {
        prereq::check()?;
        let opts = self.options(cx)?;
        let plan = ChartPlan::new(&opts).map_err(chart_err)?;
        let pxe = plan
            .wiring
            .first()
            .and_then(|w| w.links.first())
            .ok_or_else(|| chart_err("the plan wires no rack node"))?;
        let ctx = ConfigureContext {
            node_bridge: pxe.node_bridge.clone(),
            pxe_cidr: pxe.address.subnet(),
            poll: POLL,
            timeout: opts.timeouts.configure,
        };
        let calls = plan.maas_calls();
        self.keep_cluster = opts.keep_cluster;
        for r in chart_resources(&opts, &plan) {
            cx.register(r.clone())?;
            self.resources.push(r);
        }
        let run = self.run.insert(ChartRun::new(plan, &opts));
        let deployed = run.deploy().await?;
        let forwards: Vec<(u32, &'static str)> = run
            .port_forwards
            .iter()
            .filter_map(|p| Some((p.pid()?, p.purpose)))
            .collect();
        for (pid, purpose) in forwards {
            let pid = pid as i32;
            let r = Resource::Process {
                pid,
                start_time: state::process_start_time(pid).unwrap_or(0),
                what: format!("kubectl port-forward: {purpose}"),
            };
            cx.register(r.clone())?;
            self.resources.push(r);
        }
        let key: ApiKey = deployed.api_key.0.parse().map_err(|e| {
            StageError::Target(format!(
                "secret {}/maas-api-key key token is not consumer:token:secret: {e}",
                opts.namespace
            ))
        })?;
        let client = harness_client(MaasClient::new(&deployed.maas_url, Some(key))?);
        self.deployed = Some(deployed);
        self.captured = configure::perform(&client, &calls, &ctx).await?;
        Ok(Some(client))
    }

    fn without_maas(&self) -> Option<&'static str> {
        Some("the chart's MAAS was not deployed: nothing to observe (see the deploy stage)")
    }

    async fn checks(
        &mut self,
        _cx: &RunContext<'_>,
        maas: Option<&MaasClient>,
        api: &mut ObservedApi,
    ) {
        api.target_checks = self.target_checks(maas).await;
    }

    /// Collect evidence on failure or on request: the cluster (pods, logs,
    /// events, helm, kind, Postgres) and MAAS's own objects, all redacted.
    async fn collect(&mut self, cx: &RunContext<'_>, maas: Option<&MaasClient>, failed: bool) {
        if !(failed || cx.options.chart.collect) {
            return;
        }
        let Some(run) = &self.run else { return };
        let mut problems = run.collect().await;
        let dir = run.plan.run_dir.join(files::COLLECT_DIR);
        if let Some(client) = maas {
            for (path, query, file) in [
                (
                    "events/",
                    &[("op", "query"), ("level", "DEBUG"), ("limit", "1000")][..],
                    "maas-events.json",
                ),
                ("machines/", &[][..], "maas-machines.json"),
                ("rackcontrollers/", &[][..], "maas-racks.json"),
            ] {
                match client.get_raw(path, query).await {
                    Ok(body) => {
                        if let Err(e) =
                            state::write_atomic(&dir.join(file), run.plan.redact(&body).as_bytes())
                        {
                            problems.push(e.to_string());
                        }
                    }
                    Err(e) => problems.push(format!("GET {path}: {e}")),
                }
            }
        }
        if !problems.is_empty() {
            let text = run.plan.redact(&problems.join("\n"));
            tracing::warn!(problems = %text, "chart collection incomplete");
            let _ = state::write_atomic(&dir.join("problems.txt"), format!("{text}\n").as_bytes());
        }
    }

    /// Undo the deployment (unless the cluster is kept); what it removed
    /// leaves the run's state, what it could not is left to the runner's
    /// teardown (and `down`) to retry.
    async fn stop(&mut self, cx: &RunContext<'_>, maas: Option<MaasClient>) {
        drop(maas);
        self.deployed = None;
        let Some(run) = self.run.take() else {
            return;
        };
        // A kept cluster outlives the lab (unless --keep keeps that too):
        // its links to the lab go now, not with the cluster.
        if self.keep_cluster && !cx.teardown.keeps() {
            for w in &run.plan.wiring {
                wiring::unwire_node(w).await;
            }
        }
        let problems = run.teardown().await;
        if problems.is_empty() && !self.keep_cluster {
            for r in self.resources.drain(..) {
                if let Err(e) = cx.teardown.forget(&r) {
                    tracing::warn!(resource = %r.describe(), error = %e, "updating the state file");
                }
            }
        } else {
            tracing::warn!(
                ?problems,
                "chart teardown left work for the runner's teardown"
            );
        }
    }
}
