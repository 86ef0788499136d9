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
use super::store::Store;
use crate::maas::types::{NodeStatus, PowerState};

/// Shared by every handler and background task.
pub struct RegionState {
    pub store: Store,
    pub maas_url: String,
    pub power: IpmiPowerDriver,
    pub ipmi_retry_base_seconds: Option<u32>,
    pub rack_system_id: String,
    /// Interface names of the sim rack (SimRegionConfig::rack_interfaces).
    pub rack_interfaces: Vec<String>,
    pub(super) tasks: Mutex<Vec<JoinHandle<()>>>,
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

    /// Start a power change in the background, as MAAS does after the API
    /// call returns. On power-on failure the machine's status goes back to
    /// `revert_to` (MAAS resets the status when starting fails).
    pub async fn start_power(
        self: &Arc<Self>,
        system_id: String,
        action: PowerAction,
        revert_to: Option<NodeStatus>,
    ) {
        let me = self.clone();
        self.spawn(async move { me.power_task(&system_id, action, revert_to).await })
            .await;
    }

    async fn power_task(
        self: &Arc<Self>,
        system_id: &str,
        action: PowerAction,
        revert_to: Option<NodeStatus>,
    ) {
        let (starting, done, failed, state) = match action {
            PowerAction::On => (
                &events::POWERING_ON,
                &events::POWERED_ON,
                &events::POWER_ON_FAILED,
                PowerState::On,
            ),
            _ => (
                &events::POWERING_OFF,
                &events::POWERED_OFF,
                &events::POWER_OFF_FAILED,
                PowerState::Off,
            ),
        };
        self.event(system_id, starting, "").await;
        let result = match self.store.power_settings(system_id).await {
            Err(e) => Err(PowerError::Fatal(e.to_string())),
            Ok(s) if s.power_type == "manual" => {
                tracing::info!(
                    system_id,
                    "manual power type: the operator powers the machine"
                );
                return;
            }
            Ok(s) if s.power_type == "redfish" => {
                let driver = RedfishPowerDriver::new(self.power.config.clone());
                match RedfishParams::from_json(&s.power_parameters) {
                    Err(e) => Err(e),
                    Ok(p) => {
                        let mut retries = Vec::new();
                        let r = driver
                            .perform(system_id, &p, action, |attempt, e, wait| {
                                retries
                                    .push(format!("attempt {attempt}: {e} (next try in {wait:?})"))
                            })
                            .await;
                        for r in retries {
                            self.event(system_id, &events::POWER_RETRY, &r).await;
                        }
                        r
                    }
                }
            }
            Ok(s) if s.power_type != "ipmi" => Err(PowerError::Settings(format!(
                "the sim drives only ipmi and redfish, not power type {:?}",
                s.power_type
            ))),
            Ok(s) => match IpmiParams::from_json(&s.power_parameters) {
                Err(e) => Err(e),
                Ok(p) => {
                    let mut retries = Vec::new();
                    let r = self
                        .power
                        .perform(system_id, &p, action, |attempt, e, wait| {
                            retries.push(format!("attempt {attempt}: {e} (next try in {wait:?})"))
                        })
                        .await;
                    for r in retries {
                        self.event(system_id, &events::POWER_RETRY, &r).await;
                    }
                    r
                }
            },
        };
        match result {
            Ok(()) => {
                let _ = self.store.set_power_state(system_id, state).await;
                self.event(system_id, done, "").await;
            }
            Err(e) => {
                let _ = self
                    .store
                    .set_power_state(system_id, PowerState::Error)
                    .await;
                self.event(system_id, failed, &e.to_string()).await;
                if let Some(old) = revert_to
                    && let Err(err) = self
                        .store
                        .set_status(system_id, old, Some(&format!("Power {action:?} failed")))
                        .await
                {
                    tracing::warn!(error = %err, system_id, "could not revert status after a power failure");
                }
            }
        }
    }

    /// MAAS's status monitor: a Commissioning machine silent for `timeout`
    /// (since its last signal, or since commissioning started) fails.
    pub async fn fail_silent_machines(&self, timeout: Duration) {
        let silent = match self.store.silent_commissioning(timeout).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat check failed");
                return;
            }
        };
        for id in silent {
            let minutes = timeout.as_secs_f64() / 60.0;
            let msg = format!("Node has not been heard from for the last {minutes:.0} minutes");
            let _ = self.store.end_script_set(&id, 4).await;
            if let Err(e) = self
                .store
                .set_status(&id, NodeStatus::FAILED_COMMISSIONING, Some(&msg))
                .await
            {
                tracing::warn!(error = %e, system_id = %id, "could not fail a silent machine");
            }
        }
    }

    /// Query one machine's BMC now and store the answer.
    pub async fn query_power(&self, system_id: &str) -> Result<PowerState, PowerError> {
        let s = self
            .store
            .power_settings(system_id)
            .await
            .map_err(|e| PowerError::Fatal(e.to_string()))?;
        if s.power_type == "manual" {
            return Ok(PowerState::Unknown);
        }
        let queried = match s.power_type.as_str() {
            "ipmi" => {
                let p = IpmiParams::from_json(&s.power_parameters)?;
                self.power.query(&p).await
            }
            "redfish" => {
                let p = RedfishParams::from_json(&s.power_parameters)?;
                RedfishPowerDriver::new(self.power.config.clone())
                    .query(&p)
                    .await
            }
            other => {
                return Err(PowerError::Settings(format!(
                    "Power state could not be queried: power type {other:?} is not ipmi or redfish"
                )));
            }
        };
        match queried {
            Ok(state) => {
                let _ = self.store.set_power_state(system_id, state).await;
                Ok(state)
            }
            Err(e) => {
                let old = self
                    .store
                    .set_power_state(system_id, PowerState::Error)
                    .await
                    .unwrap_or_default();
                if old != PowerState::Error {
                    self.event(system_id, &events::POWER_QUERY_FAILED, &e.to_string())
                        .await;
                }
                Err(e)
            }
        }
    }
}
