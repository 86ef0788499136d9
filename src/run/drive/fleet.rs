//! The fleet's steps through the MAAS API, each timed into a [`FleetLog`]
//! (observe turns it into `fleet.json`). They look at the fleet with one
//! `GET machines/` per poll, never one request per machine, so MAAS's own
//! power monitor is what queries the BMCs.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::maas::client::MaasClient;
use crate::maas::types::{Machine, PowerState as MaasPower};
use crate::plan::MachinePlan;
use crate::run::error::StageError;
use crate::scenario::{PowerFraction, PowerState};

use super::maas::POLL;

/// What the fleet steps measured.
#[derive(Debug, Default)]
pub struct FleetLog {
    pub create: Vec<Duration>,
    pub first_create: Option<Instant>,
    pub create_total: Duration,
    /// From the first create to every power state known.
    pub until_known: Vec<Duration>,
    /// Per power_fraction step ("on 25%"): request to state seen.
    pub power: BTreeMap<String, Vec<Duration>>,
    /// Machine -> why its power change did not happen (the step's view).
    pub power_failures: HashMap<String, String>,
    /// `GET machines/`: request to the whole body received.
    pub list: Vec<Duration>,
    /// Parsing each `GET machines/` body (the harness's side).
    pub list_parse: Vec<Duration>,
    /// Machine -> the power state a step last asked MAAS for: a machine
    /// that shows another one at the end changed by itself.
    pub asked: HashMap<String, PowerState>,
}

impl FleetLog {
    /// `GET machines/`, timed.
    pub async fn list(&mut self, client: &MaasClient) -> Result<Vec<Machine>, StageError> {
        let (ms, answered, parse) = client.machines_timed().await?;
        self.list.push(answered);
        self.list_parse.push(parse);
        Ok(ms)
    }
}

/// The plan machines by hostname (create gives MAAS the plan's name).
fn by_hostname(ms: &[Machine]) -> HashMap<&str, &Machine> {
    ms.iter().map(|m| (m.hostname.as_str(), m)).collect()
}

/// Lists the machines every `POLL` until `lagging` names none of them; at
/// the deadline, the step fails with `too_late` of those still lagging.
async fn poll_until_none_lag(
    client: &MaasClient,
    log: &mut FleetLog,
    timeout: Duration,
    lagging: impl Fn(&HashMap<&str, &Machine>) -> Vec<String>,
    too_late: impl FnOnce(&[String]) -> String,
) -> Result<(), StageError> {
    let deadline = Instant::now() + timeout;
    loop {
        let all = log.list(client).await?;
        let behind = lagging(&by_hostname(&all));
        if behind.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StageError::Step(too_late(&behind)));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Until MAAS shows a power state other than unknown for every machine.
pub async fn wait_power_known(
    client: &MaasClient,
    log: &mut FleetLog,
    machines: &[&MachinePlan],
    timeout: Duration,
) -> Result<(), StageError> {
    let unknown = |seen: &HashMap<&str, &Machine>| {
        machines
            .iter()
            .filter(|m| {
                seen.get(m.name.as_str())
                    .is_none_or(|x| x.power_state == MaasPower::Unknown)
            })
            .map(|m| m.name.clone())
            .collect()
    };
    let too_late = |unknown: &[String]| {
        format!(
            "the power state of {} of {} machines was still unknown after {}; last seen unknown: {}",
            unknown.len(),
            machines.len(),
            humantime::format_duration(timeout),
            first_names(unknown.iter().map(String::as_str))
        )
    };
    poll_until_none_lag(client, log, timeout, unknown, too_late).await?;
    if let Some(t0) = log.first_create {
        log.until_known.push(t0.elapsed());
    }
    Ok(())
}

/// Until MAAS shows each machine in the state its chassis is in
/// (`chassis`: the lab's BMC; None when it cannot be read), leaving aside
/// the machines MAAS shows as error (their BMC fails reads): MAAS's power
/// monitor has caught up with machines that changed by themselves.
pub async fn wait_power_settled(
    client: &MaasClient,
    log: &mut FleetLog,
    machines: &[&MachinePlan],
    chassis: &dyn Fn(&str) -> Option<bool>,
    timeout: Duration,
) -> Result<(), StageError> {
    let behind = |seen: &HashMap<&str, &Machine>| {
        let mut behind = Vec::new();
        for m in machines {
            let maas = seen.get(m.name.as_str()).map(|x| x.power_state);
            if maas == Some(MaasPower::Error) {
                continue;
            }
            let bmc = chassis(&m.name).map(|on| if on { MaasPower::On } else { MaasPower::Off });
            if bmc.is_none() || maas != bmc {
                behind.push(format!(
                    "{} (MAAS: {}, chassis: {})",
                    m.name,
                    maas.map_or("not listed", |p| p.as_str()),
                    bmc.map_or("unreadable", |p| p.as_str())
                ));
            }
        }
        behind
    };
    let too_late = |behind: &[String]| {
        format!(
            "{} of {} machines were still not shown in their chassis' power state after {}: {}",
            behind.len(),
            machines.len(),
            humantime::format_duration(timeout),
            first_names(behind.iter().map(String::as_str))
        )
    };
    poll_until_none_lag(client, log, timeout, behind, too_late).await
}

/// The first ceil(fraction x N) machines of a selection.
pub fn share<'a>(machines: &[&'a MachinePlan], fraction: f64) -> Vec<&'a MachinePlan> {
    let n = ((machines.len() as f64) * fraction).ceil() as usize;
    machines.iter().take(n).copied().collect()
}

/// Ask MAAS to power each machine of the share on (or off), then watch
/// `GET machines/` until each shows the state, or its change failed (the
/// rack's "Failed to power on/off node" event): a failure is
/// counted by cause, not an error of the step. The step fails only when
/// some machine shows neither within the timeout.
pub async fn power_fraction(
    client: &MaasClient,
    log: &mut FleetLog,
    ids: &HashMap<String, String>,
    machines: &[&MachinePlan],
    p: &PowerFraction,
) -> Result<(), StageError> {
    let chosen = share(machines, p.fraction);
    let on = p.state == PowerState::On;
    let want = if on { MaasPower::On } else { MaasPower::Off };
    let key = format!(
        "{} {}%",
        if on { "on" } else { "off" },
        (p.fraction * 100.0).round()
    );
    let mut asked: HashMap<&str, Instant> = HashMap::new();
    for m in &chosen {
        let Some(id) = ids.get(&m.name) else {
            log.power_failures.insert(
                m.name.clone(),
                "not known to MAAS (no create_machine)".into(),
            );
            continue;
        };
        let r = if on {
            client.power_on(id).await
        } else {
            client.power_off(id).await
        };
        match r {
            Ok(_) => {
                asked.insert(&m.name, Instant::now());
                log.asked.insert(m.name.clone(), p.state);
            }
            Err(e) => {
                log.power_failures
                    .insert(m.name.clone(), format!("the API refused: {e}"));
            }
        }
    }
    let deadline = Instant::now() + p.timeout.0;
    let mut latencies = Vec::new();
    loop {
        let all = log.list(client).await?;
        let seen = by_hostname(&all);
        let mut waiting = Vec::new();
        for (name, t0) in asked.iter() {
            match seen.get(name).map(|x| x.power_state) {
                Some(s) if s == want => latencies.push(t0.elapsed()),
                // Error may still be the monitor's verdict from before the
                // request: only the rack's failure event ends the wait.
                _ => waiting.push(*name),
            }
        }
        // A failed change leaves the state as it was: the rack's failure
        // event says so.
        let mut still = Vec::new();
        for name in waiting {
            match failure_event(client, ids.get(name), on).await {
                Some(text) => {
                    log.power_failures.insert(name.to_string(), text);
                }
                None => still.push(name),
            }
        }
        asked.retain(|n, _| still.contains(n));
        if asked.is_empty() {
            log.power.entry(key).or_default().extend(latencies);
            return Ok(());
        }
        if Instant::now() >= deadline {
            log.power.entry(key).or_default().extend(latencies);
            let mut names: Vec<&str> = asked.keys().copied().collect();
            names.sort();
            return Err(StageError::Step(format!(
                "{} of {} machines showed neither power {} nor a failure within {}; last seen waiting: {}",
                names.len(),
                chosen.len(),
                want.as_str(),
                humantime::format_duration(p.timeout.0),
                names.iter().take(5).copied().collect::<Vec<_>>().join(", ")
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The rack's "Failed to power on/off node" event of a machine, if any.
async fn failure_event(client: &MaasClient, id: Option<&String>, on: bool) -> Option<String> {
    let id = id?;
    let page = client
        .events(&crate::maas::client::EventQuery {
            system_id: Some(id.clone()),
            level: Some("DEBUG".into()),
            after: None,
            limit: Some(50),
        })
        .await
        .ok()?;
    let wanted = if on {
        "Failed to power on node"
    } else {
        "Failed to power off node"
    };
    // The text names the machine ("Failed to power <system id>."): masked
    // so one cause counts once over the fleet.
    page.events
        .iter()
        .filter(|e| e.event_type == wanted)
        .max_by_key(|e| e.id)
        .map(|e| {
            format!("{} - {}", e.event_type, e.description).replace(id.as_str(), "<system_id>")
        })
}

/// The first few names of a list, for an error that should stay one line.
fn first_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.take(5).collect::<Vec<_>>().join(", ")
}
