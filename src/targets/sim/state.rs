//! What every handler and background task of the sim region shares: the
//! store, the power driver, and the orchestration MAAS does around them
//! (background power changes, power queries, the heartbeat monitor).
//! Below the HTTP layers (`api`, `metadata`) and the region that starts them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::events::{self, EventKind};
use super::power::{IpmiParams, IpmiPowerDriver, PowerAction, PowerError};
use super::power_redfish::{RedfishParams, RedfishPowerDriver};
use super::store::{Phase, Store};
use crate::maas::types::{NodeStatus, PowerState, ScriptStatus};

/// The power driver of one machine, chosen by its power type (MAAS's
/// PowerDriverRegistry). One arm per driver the sim runs.
#[derive(Debug, Clone)]
pub enum Driver {
    Ipmi(IpmiParams),
    Redfish(RedfishParams),
    /// Nothing to run: an operator powers the machine (not queryable).
    Manual,
}

impl Driver {
    pub fn for_machine(power_type: &str, params: &serde_json::Value) -> Result<Driver, PowerError> {
        match power_type {
            "ipmi" => IpmiParams::from_json(params).map(Driver::Ipmi),
            "redfish" => RedfishParams::from_json(params).map(Driver::Redfish),
            "manual" => Ok(Driver::Manual),
            other => Err(PowerError::Settings(format!(
                "the sim drives ipmi, redfish and manual only, not power type {other:?}"
            ))),
        }
    }
}

/// redfish.py's waits between attempts, in units (the chart's patch).
pub const REDFISH_WAIT_TIME: [u32; 4] = [4, 8, 16, 32];

/// Shared by every handler and background task.
pub struct RegionState {
    pub store: Store,
    pub maas_url: String,
    pub power: IpmiPowerDriver,
    pub ipmi_retry_base_seconds: Option<u32>,
    /// Which MAAS the region imitates (profile.rs).
    pub profile: super::profile::SimProfile,
    pub rack_system_id: String,
    /// Interface names of the sim rack (SimRegionConfig::rack_interfaces).
    pub rack_interfaces: Vec<String>,
    pub(super) tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Machines with a power change under way (MAAS's
    /// power_action_registry: one change per node; the monitor skips them).
    pub(super) power_busy: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl RegionState {
    /// Record an event about a machine; failures are logged, not raised
    /// (an event must never break the action it describes).
    pub async fn event(&self, system_id: &str, kind: &EventKind, description: &str) {
        if let Err(e) = self
            .store
            .record_event(Some(system_id), None, kind, description)
            .await
        {
            tracing::warn!(error = %e, system_id, "could not record event");
        }
    }

    async fn spawn(self: &Arc<Self>, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().await;
        tasks.retain(|t| !t.is_finished());
        tasks.push(tokio::spawn(fut));
    }

    /// Start a power change in the background, as MAAS's rack does after
    /// the API call returns (rpc/power.py maybe_change_power_state).
    pub async fn start_power(self: &Arc<Self>, system_id: String, change: PowerChange) {
        if !self.power_busy.lock().unwrap().insert(system_id.clone()) {
            // 2.8 lets a running change go on and refuses another one.
            tracing::info!(
                system_id,
                ?change,
                "a power change is already under way; not starting another"
            );
            return;
        }
        let me = self.clone();
        self.spawn(async move {
            let limit = me.power.config.change_timeout;
            let outcome = tokio::time::timeout(limit, me.power_task(&system_id, change)).await;
            me.power_busy.lock().unwrap().remove(&system_id);
            if outcome.is_err() {
                // CHANGE_POWER_STATE_TIMEOUT: the change is cancelled and
                // reported as failed, "Timed out".
                me.power_change_failed(&system_id, change, "Timed out")
                    .await;
            }
        })
        .await;
    }

    /// Whether a power change for the machine is under way.
    pub fn power_busy(&self, system_id: &str) -> bool {
        self.power_busy.lock().unwrap().contains(system_id)
    }

    /// The machine's power driver, from its power type.
    async fn driver(&self, system_id: &str) -> Result<Driver, PowerError> {
        let s = self
            .store
            .power_settings(system_id)
            .await
            .map_err(|e| PowerError::Fatal(e.to_string()))?;
        Driver::for_machine(&s.power_type, &s.power_parameters)
    }

    /// A query through the machine's driver, with MAAS's retries.
    async fn query_with(
        &self,
        d: &Driver,
        on_retry: impl FnMut(usize, &PowerError, Duration),
    ) -> Result<PowerState, PowerError> {
        match d {
            Driver::Ipmi(p) => self.power.query_reporting(p, on_retry).await,
            Driver::Redfish(p) => self.redfish().query_reporting(p, on_retry).await,
            Driver::Manual => Ok(PowerState::Unknown),
        }
    }

    /// A change through the machine's driver, with MAAS's retries.
    async fn perform_with(
        &self,
        system_id: &str,
        d: &Driver,
        action: PowerAction,
        on_retry: impl FnMut(usize, &PowerError, Duration),
    ) -> Result<(), PowerError> {
        match d {
            Driver::Ipmi(p) => self.power.perform(system_id, p, action, on_retry).await,
            Driver::Redfish(p) => self.redfish().perform(system_id, p, action, on_retry).await,
            Driver::Manual => Ok(()),
        }
    }

    /// The redfish driver, with redfish.py's own waits: the chart's
    /// 2.8_redfish_retries.patch (and 3.6's) sets wait_time (4, 8, 16, 32)
    /// on RedfishPowerDriver, where IPMI has the ipmi_error patch's
    /// (4, 4, 8, 8, 16, 16, 32, 32); one unit is `wait_unit` for both.
    fn redfish(&self) -> RedfishPowerDriver {
        let mut config = self.power.config.clone();
        config.wait_time = REDFISH_WAIT_TIME.to_vec();
        RedfishPowerDriver::new(config)
    }

    /// rpc/power.py change_power_state: "Powering on" (or off, or "Power
    /// cycling"), the change with MAAS's retries (a cycle is a query, off
    /// when on, then on: PowerDriver.cycle), then a query (retried) whose
    /// answer decides success. A failure marks the node failed.
    async fn power_task(self: &Arc<Self>, system_id: &str, change: PowerChange) {
        let starting = match change {
            PowerChange::On => &events::POWERING_ON,
            PowerChange::Off => &events::POWERING_OFF,
            PowerChange::Cycle => &events::POWER_CYCLING,
        };
        // 3.6 records neither this nor "Node powered on" (profile.rs).
        let change_events = self.profile.records_power_change_events();
        if change_events {
            self.event(system_id, starting, "").await;
        }
        let d = match self.driver(system_id).await {
            Ok(Driver::Manual) => {
                tracing::info!(
                    system_id,
                    "manual power type: the operator powers the machine"
                );
                return;
            }
            Err(e) => {
                let msg = format!(
                    "Power {} for the node failed: {}",
                    change.verb(),
                    e.maas_message()
                );
                return self.power_change_failed(system_id, change, &msg).await;
            }
            Ok(d) => d,
        };
        let log_retry = |attempt: usize, e: &PowerError, wait: Duration| {
            // MAAS logs its retries (maas.log), it records no event for them.
            tracing::info!(system_id, attempt, error = %e, ?wait, "power attempt failed; retrying");
        };
        let result = async {
            if change == PowerChange::Cycle
                && self.query_with(&d, log_retry).await? == PowerState::On
            {
                self.perform_with(system_id, &d, PowerAction::Off, log_retry)
                    .await?;
            }
            let action = match change {
                PowerChange::Off => PowerAction::Off,
                PowerChange::On | PowerChange::Cycle => PowerAction::On,
            };
            self.perform_with(system_id, &d, action, log_retry).await
        }
        .await;
        if let Err(e) = result {
            let msg = format!(
                "Power {} for the node failed: {}",
                change.verb(),
                e.maas_message()
            );
            return self.power_change_failed(system_id, change, &msg).await;
        }
        // The query after every change (retried like a change).
        match self.query_with(&d, log_retry).await {
            Ok(state) => {
                let want = match change {
                    PowerChange::Off => PowerState::Off,
                    PowerChange::On | PowerChange::Cycle => PowerState::On,
                };
                if !change_events {
                    // 3.6 (Temporal workflow): the answer is stored as is.
                    let _ = self.store.set_power_state(system_id, state).await;
                } else if state == want || state == PowerState::Unknown {
                    // 2.8.7 change_power_state -> power_change_success: the
                    // state asked for is stored (also when the query said
                    // unknown), then "Node powered on/off".
                    let _ = self.store.set_power_state(system_id, want).await;
                    let done = match want {
                        PowerState::Off => &events::POWERED_OFF,
                        _ => &events::POWERED_ON,
                    };
                    self.event(system_id, done, "").await;
                } else {
                    // 2.8.7 reports nothing when the query after a
                    // successful change disagrees (the chassis changed
                    // again in between): the region keeps its old state
                    // until the power monitor's next query.
                    tracing::info!(
                        system_id,
                        ?state,
                        ?want,
                        "the query after a power change shows another state; not reported (as 2.8.7)"
                    );
                }
            }
            // MAAS only logs a failed query here (no event, no status).
            Err(e) => tracing::warn!(system_id, error = %e, "power query after a change failed"),
        }
    }

    /// rpc/power.py power_change_failure: the node is marked failed with
    /// the message (MarkNodeFailed), then "Failed to power on node" (or
    /// off, or cycle) carries it.
    async fn power_change_failed(&self, system_id: &str, change: PowerChange, message: &str) {
        self.mark_failed(system_id, message, ScriptStatus::FAILED)
            .await;
        let failed = match change {
            PowerChange::On => &events::POWER_ON_FAILED,
            PowerChange::Off => &events::POWER_OFF_FAILED,
            PowerChange::Cycle => &events::POWER_CYCLE_FAILED,
        };
        self.event(system_id, failed, message).await;
    }

    /// models/node.py mark_failed: "Marking node failed" with the comment;
    /// Commissioning -> Failed commissioning, Testing -> Failed testing,
    /// the pending and running scripts get `script_status`. A New or
    /// already failed node keeps its status; any other status refuses
    /// (MAAS's NodeStateViolation rolls the event back too).
    pub async fn mark_failed(&self, system_id: &str, comment: &str, script_status: i32) {
        let status = match self.store.machine(system_id).await {
            Ok(m) => m.status,
            Err(e) => {
                tracing::warn!(error = %e, system_id, "mark failed: no such machine");
                return;
            }
        };
        let failed = match status {
            NodeStatus::COMMISSIONING => Some(NodeStatus::FAILED_COMMISSIONING),
            NodeStatus::TESTING => Some(NodeStatus::FAILED_TESTING),
            // New, or already one of the failed statuses.
            NodeStatus(0 | 2 | 11 | 13 | 15 | 18 | 20 | 22) => None,
            other => {
                tracing::warn!(
                    system_id,
                    status = other.name(),
                    comment,
                    "mark failed refused in this status"
                );
                return;
            }
        };
        self.event(system_id, &events::MARKING_FAILED, comment)
            .await;
        let Some(failed) = failed else { return };
        for phase in [Phase::Commissioning, Phase::Testing] {
            let _ = self
                .store
                .end_script_set(system_id, phase, script_status)
                .await;
        }
        if let Err(e) = self
            .store
            .set_status(system_id, failed, Some(comment))
            .await
        {
            tracing::warn!(error = %e, system_id, "could not mark a machine failed");
        }
    }

    /// MAAS's status monitor (status_monitor.py): a Commissioning or
    /// Testing machine that never signalled within `timeout` of the start
    /// fails with "Node operation 'Commissioning' timed out after N
    /// minutes." (scripts Aborted); one whose last signal is older fails
    /// with "Node has not been heard from for the last N minutes" (scripts
    /// Timed out).
    pub async fn fail_silent_machines(&self, timeout: Duration) {
        let silent = match self.store.silent_machines(timeout).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat check failed");
                return;
            }
        };
        let minutes = format!("{:.0}", timeout.as_secs_f64() / 60.0);
        for (id, signalled) in silent {
            let status = match self.store.machine(&id).await {
                Ok(m) => m.status,
                Err(_) => continue,
            };
            if signalled {
                let msg = format!("Node has not been heard from for the last {minutes} minutes");
                self.mark_failed(&id, &msg, ScriptStatus::TIMEDOUT).await;
            } else {
                let msg = format!(
                    "Node operation '{}' timed out after {minutes} minutes.",
                    status.name()
                );
                self.mark_failed(&id, &msg, 5).await;
            }
        }
    }

    /// Query one machine's BMC now (retried as MAAS's PowerDriver.query)
    /// and store the answer; a failure stores "error" and, where the
    /// profile's MAAS does (profile.rs `query_failure_event`), records
    /// "Failed to query node's BMC" (rpc/power.py power_query_failure).
    pub async fn query_power(
        &self,
        system_id: &str,
        via: QueryVia,
    ) -> Result<PowerState, PowerError> {
        let d = self.driver(system_id).await?;
        if matches!(d, Driver::Manual) {
            return Ok(PowerState::Unknown);
        }
        let result = self.query_with(&d, |_, _, _| {}).await;
        let state = result.as_ref().copied().unwrap_or(PowerState::Error);
        if via == QueryVia::Api && !self.profile.api_query_marks_monitored() {
            let _ = self
                .store
                .set_power_state_unmonitored(system_id, state)
                .await;
        } else {
            let _ = self.store.set_power_state(system_id, state).await;
        }
        if let Err(e) = &result
            && self.profile.query_failure_event(via)
        {
            self.event(system_id, &events::POWER_QUERY_FAILED, &e.to_string())
                .await;
        }
        result
    }
}

pub use super::profile::QueryVia;

/// A power change MAAS's rack carries out (rpc/power.py: on, off, cycle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerChange {
    On,
    Off,
    /// Query; off when on; then on (what commissioning a machine that is on does).
    Cycle,
}

impl PowerChange {
    fn verb(self) -> &'static str {
        match self {
            PowerChange::On => "on",
            PowerChange::Off => "off",
            PowerChange::Cycle => "cycle",
        }
    }
}
