//! The chart target's environment: kind + Postgres + the MaaS chart,
//! deployed by `targets::chart::ChartRun`, then driven like any MAAS.
//!
//! preflight (before the lab): the programs and the chart options. deploy:
//! register what the run will create (so `down` finds it by run id), run
//! `ChartRun::deploy`, make the MAAS client from the secret's key (the sim
//! steps and observe use it as on sim), then configure MAAS
//! (`plan.maas_calls()`). observe: the sim observation plus the chart's
//! checks (`plan.expectations()`). collect: on failure or `--collect`.
//! stop: `ChartRun::teardown` on every exit path.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::maas::{ApiKey, MaasClient, RetryPolicy};
use crate::report::events::Outcome;
use crate::run::pipeline::Observation;
use crate::run::state::{self, Resource};
use crate::targets::chart::configure::{self, Captured, ConfigureContext};
use crate::targets::chart::plan::files;
use crate::targets::chart::wiring;
use crate::targets::chart::{
    ChartOptions, ChartPlan, ChartRun, ClusterSource, Deployed, PostgresMode, checks, prereq,
    render_check,
};

use super::Env;

/// What the chart target holds between stages.
#[derive(Default)]
pub struct ChartEnv {
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

/// How often the chart's MAAS is polled while configuring.
const POLL: Duration = Duration::from_secs(2);

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

impl<'p> Env<'p> {
    fn chart_options(&self) -> Result<ChartOptions, String> {
        let mut opts = crate::run::chart::chart_options(self.plan, &self.options)
            .map_err(|e| format!("chart target: {e}"))?;
        // --keep leaves everything, the cluster included.
        if self.teardown.keeps() {
            opts.keep_cluster = true;
        }
        Ok(opts)
    }

    /// Before the lab: every program the chart target runs, and options
    /// that can work. Nothing exists yet when this fails.
    pub(super) fn chart_preflight(&self) -> Result<(), String> {
        prereq::check().map_err(|e| e.to_string())?;
        let opts = self.chart_options()?;
        ChartPlan::new(&opts).map_err(|e| format!("chart target: {e}"))?;
        // The chart rendered with the run's values, checked against the plan.
        let report = render_check::check(
            &opts,
            render_check::CheckSettings {
                require_local_images: true,
                ..Default::default()
            },
        )
        .map_err(|e| format!("chart target: chart check: {e}"))?;
        if report.passed() {
            Ok(())
        } else {
            Err(format!(
                "chart target: the chart does not fit the plan (nothing was started):\n{}",
                report.table()
            ))
        }
    }

    pub(super) async fn chart_deploy(&mut self) -> Result<(), String> {
        prereq::check().map_err(|e| e.to_string())?;
        let opts = self.chart_options()?;
        let plan = ChartPlan::new(&opts).map_err(|e| format!("chart target: {e}"))?;
        let pxe = plan
            .wiring
            .first()
            .and_then(|w| w.links.first())
            .ok_or("chart target: the plan wires no rack node")?;
        let ctx = ConfigureContext {
            node_bridge: pxe.node_bridge.clone(),
            pxe_cidr: pxe.address.subnet(),
            poll: POLL,
            timeout: opts.timeouts.import,
        };
        let calls = plan.maas_calls();
        self.chart.keep_cluster = opts.keep_cluster;
        for r in chart_resources(&opts, &plan) {
            self.register(r.clone())?;
            self.chart.resources.push(r);
        }
        let run = self.chart.run.insert(ChartRun::new(plan, &opts));
        let deployed = run.deploy().await.map_err(|e| e.to_string())?;
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
            self.register(r.clone())?;
            self.chart.resources.push(r);
        }
        let key: ApiKey = deployed.api_key.0.parse().map_err(|e| {
            format!(
                "secret {}/maas-api-key key token is not consumer:token:secret: {e}",
                opts.namespace
            )
        })?;
        let client = MaasClient::new(&deployed.maas_url, Some(key))
            .map_err(|e| e.to_string())?
            .with_retry(RetryPolicy {
                attempts: 4,
                base_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(2),
            })
            .with_poll_interval(POLL);
        self.sim.client = Some(client.clone());
        self.chart.deployed = Some(deployed);
        self.chart.captured = configure::perform(&client, &calls, &ctx)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The sim observation of machines and API, plus the chart's checks.
    pub(super) async fn chart_observe(&mut self) -> Result<Observation, String> {
        if self.sim.client.is_none() {
            return Err(
                "the chart's MAAS was not deployed: nothing to observe (see the deploy stage)"
                    .into(),
            );
        }
        let (result, observed, mut api) = self.sim_observe().await?;
        api.target_checks = self.chart_checks().await;
        Ok((result, observed, api))
    }

    async fn chart_checks(&self) -> Vec<(String, Outcome)> {
        let Some(run) = &self.chart.run else {
            return Vec::new();
        };
        let expectations = run.plan.expectations();
        let (Some(deployed), Some(client)) = (&self.chart.deployed, &self.sim.client) else {
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
            rack_id: self.chart.captured.get("rack_id").map(String::as_str),
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

    /// Collect evidence on failure or on request: the cluster (pods, logs,
    /// events, helm, kind, Postgres) and MAAS's own objects, all redacted.
    pub(super) async fn chart_collect(&mut self, failed: bool) {
        if !(failed || self.options.chart.collect) {
            return;
        }
        let Some(run) = &self.chart.run else { return };
        let mut problems = run.collect().await;
        let dir = run.plan.run_dir.join(files::COLLECT_DIR);
        if let Some(client) = &self.sim.client {
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
    pub(super) async fn chart_stop(&mut self) {
        self.chart.deployed = None;
        let Some(run) = self.chart.run.take() else {
            return;
        };
        // A kept cluster outlives the lab (unless --keep keeps that too):
        // its links to the lab go now, not with the cluster.
        if self.chart.keep_cluster && !self.teardown.keeps() {
            for w in &run.plan.wiring {
                wiring::unwire_node(w).await;
            }
        }
        let problems = run.teardown().await;
        if problems.is_empty() && !self.chart.keep_cluster {
            for r in self.chart.resources.drain(..) {
                if let Err(e) = self.teardown.forget(&r) {
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
