//! The observe stage: what the lab and the MAAS show after the steps, as
//! one [`Observation`] that the report stage judges and snapshots. With a
//! MAAS, each machine as the API shows it (fields, power parameters
//! without the password, events); without one, what the BMCs say. Both
//! carry each machine's BMC transcript.

use std::collections::BTreeMap;

use crate::maas::client::EventQuery;
use crate::plan::MachinePlan;
use crate::report::checks::{Observed, ObservedApi};
use crate::report::fleet;
use crate::report::result::{self, InterfaceResult, MachineResult, RunResult, TranscriptLine};
use crate::run::context::RunContext;
use crate::run::drive::maas::MaasDriver;
use crate::run::error::StageError;
use crate::run::lab::LabEnv;
use crate::run::lab::bmcs::{
    ipmi_params, read_transcript, transcript_path, write_machine_transcript,
};
use crate::run::lab::vms::console_path;

/// What observe hands to report.
#[derive(Debug)]
pub struct Observation {
    /// The normalised result, snapshotted after redaction.
    pub result: RunResult,
    /// Per machine: what the scenario's expectations are judged against.
    pub machines: BTreeMap<String, Observed>,
    /// API objects, response headers, and the target's own checks.
    pub api: ObservedApi,
}

/// Each machine's transcript lines, with its own file written beside it.
fn transcripts(cx: &RunContext<'_>) -> BTreeMap<String, Vec<TranscriptLine>> {
    let p = cx.plan;
    let all = read_transcript(&transcript_path(p));
    p.machines
        .iter()
        .filter(|m| !m.fleet)
        .map(|m| {
            write_machine_transcript(m, &transcript_path(p));
            let lines = all
                .iter()
                .filter(|(bmc, _)| *bmc == m.name)
                .map(|(_, l)| l.clone())
                .collect();
            (m.name.clone(), lines)
        })
        .collect()
}

fn empty_result(cx: &RunContext<'_>) -> RunResult {
    RunResult {
        scenario: cx.plan.scenario.clone(),
        target: cx.plan.target.to_string(),
        machines: BTreeMap::new(),
        fleet: None,
    }
}

/// Without a MAAS: power as the BMCs hold it, the parameters autodetect
/// would report.
pub fn from_bmcs(cx: &RunContext<'_>, lab: &LabEnv) -> Result<Observation, StageError> {
    let mut result = empty_result(cx);
    let mut observed = BTreeMap::new();
    let mut transcripts = transcripts(cx);
    for m in &cx.plan.machines {
        let lines = transcripts.remove(&m.name).unwrap_or_default();
        let power_state = match lab.fleet() {
            Ok(f) => f
                .power_state(&m.name)
                .map(|on| if on { "on" } else { "off" }.to_string())?,
            Err(_) => "unknown".into(),
        };
        let params = ipmi_params(m);
        let mut mr = MachineResult {
            power_state: Some(power_state.clone()),
            power_type: Some("ipmi".into()),
            ..MachineResult::default()
        };
        mr.power_parameters
            .insert("power_address".into(), params.power_address.clone().into());
        mr.power_parameters
            .insert("power_user".into(), params.power_user.clone().into());
        mr.power_parameters
            .insert("power_driver".into(), params.power_driver.clone().into());
        mr.bmc = result::summarise_transcript(&lines);
        let fields = serde_json::json!({
            "power_state": power_state,
            "power_type": "ipmi",
            "power_parameters": mr.power_parameters,
        });
        result.machines.insert(m.name.clone(), mr);
        observed.insert(
            m.name.clone(),
            Observed {
                fields,
                events: Vec::new(),
                transcript: lines,
            },
        );
    }
    Ok(Observation {
        result,
        machines: observed,
        api: ObservedApi::default(),
    })
}

/// With a MAAS: each machine as its API shows it, and the API's version
/// and rack controllers.
pub async fn from_maas(
    cx: &RunContext<'_>,
    maas: &mut MaasDriver,
) -> Result<Observation, StageError> {
    let p = cx.plan;
    let mut result = empty_result(cx);
    let mut observed = BTreeMap::new();
    let mut transcripts = transcripts(cx);
    for m in p.machines.iter().filter(|m| !m.fleet) {
        let lines = transcripts.remove(&m.name).unwrap_or_default();
        if m.vm {
            let _ = std::fs::copy(console_path(&p.host.vm_dir, m), &m.console_log);
        }
        let mut mr = MachineResult {
            bmc: result::summarise_transcript(&snapshot_lines(&lines)),
            ..MachineResult::default()
        };
        let (fields, events) = match maas.system_id(m).await? {
            Some(id) => machine_from_api(maas, m, &id, &mut mr)
                .await
                .map_err(|e| e.on(&m.name))?,
            None => {
                mr.status = Some("not enlisted".into());
                (
                    serde_json::json!({"status_name": "not enlisted", "interface_count": 0}),
                    Vec::new(),
                )
            }
        };
        result.machines.insert(m.name.clone(), mr);
        observed.insert(
            m.name.clone(),
            Observed {
                fields,
                events,
                transcript: lines,
            },
        );
    }
    if p.machines.iter().any(|m| m.fleet) {
        result.fleet = Some(fleet_summary(cx, maas).await?);
    }
    let mut api = ObservedApi::default();
    for path in ["version/", "rackcontrollers/"] {
        if let Ok(body) = maas.client().get_raw(path, &[]).await
            && let Ok(v) = serde_json::from_str(&body)
        {
            api.objects.insert(path.to_string(), v);
        }
    }
    Ok(Observation {
        result,
        machines: observed,
        api,
    })
}

/// The fleet as MAAS shows it (one `GET machines/`, events only for the
/// machines that failed), and its timings written to `fleet.json` and
/// the log.
async fn fleet_summary(
    cx: &RunContext<'_>,
    maas: &mut MaasDriver,
) -> Result<fleet::FleetSummary, StageError> {
    let p = cx.plan;
    let client = maas.client().clone();
    let listed = maas.fleet.list(&client).await?;
    let by_name: BTreeMap<&str, &crate::maas::types::Machine> =
        listed.iter().map(|x| (x.hostname.as_str(), x)).collect();
    let behaviour =
        |m: &crate::plan::MachinePlan| m.fleet_behaviour.clone().unwrap_or_else(|| "plain".into());
    let asked = |m: &crate::plan::MachinePlan| {
        maas.fleet.asked.get(&m.name).map(|s| match s {
            crate::scenario::PowerState::On => "on".to_string(),
            crate::scenario::PowerState::Off => "off".to_string(),
        })
    };
    let mut machines = Vec::new();
    for m in p.machines.iter().filter(|m| m.fleet) {
        let Some(x) = by_name.get(m.name.as_str()) else {
            machines.push(fleet::FleetMachine {
                power_type: m.power_type.as_str().into(),
                power_state: "not created".into(),
                status: "not created".into(),
                failure: maas.fleet.power_failures.get(&m.name).cloned(),
                behaviour: behaviour(m),
                asked: asked(m),
            });
            continue;
        };
        let mut failure = maas.fleet.power_failures.get(&m.name).cloned();
        if failure.is_none() && x.power_state == crate::maas::types::PowerState::Error {
            failure = last_failure_event(maas, &x.system_id).await;
        }
        machines.push(fleet::FleetMachine {
            power_type: x.power_type.clone(),
            power_state: x.power_state.as_str().into(),
            status: x.status_name.clone(),
            failure: failure.map(|f| f.replace(x.system_id.as_str(), "<system_id>")),
            behaviour: behaviour(m),
            asked: asked(m),
        });
    }
    let log = &maas.fleet;
    let timings = fleet::FleetTimings {
        create: fleet::percentiles(&log.create),
        create_total_s: log.create_total.as_secs_f64(),
        until_known_s: log.until_known.iter().map(|d| d.as_secs_f64()).collect(),
        power: log
            .power
            .iter()
            .map(|(k, v)| (k.clone(), fleet::percentiles(v)))
            .collect(),
        list_machines: fleet::percentiles(&log.list),
        list_machines_parse: fleet::percentiles(&log.list_parse),
    };
    let path = p.host.run_dir.join("fleet.json");
    let text = serde_json::to_string_pretty(&timings).expect("timings serialise");
    std::fs::write(&path, text).map_err(StageError::file(&path))?;
    tracing::info!(
        machines = machines.len(),
        create_p50_ms = timings.create.p50_ms,
        create_total_s = timings.create_total_s,
        until_known_s = ?timings.until_known_s,
        list_machines_p50_ms = timings.list_machines.p50_ms,
        list_machines_max_ms = timings.list_machines.max_ms,
        "fleet timings (fleet.json)"
    );
    Ok(fleet::summarise(&machines))
}

/// The text of a machine's latest power failure event.
async fn last_failure_event(maas: &MaasDriver, id: &str) -> Option<String> {
    let page = maas
        .client()
        .events(&EventQuery {
            system_id: Some(id.to_string()),
            level: Some("DEBUG".into()),
            after: None,
            limit: Some(100),
        })
        .await
        .ok()?;
    page.events
        .iter()
        .filter(|e| e.event_type.starts_with("Failed to"))
        .max_by_key(|e| e.id)
        .map(|e| format!("{} - {}", e.event_type, e.description))
}

/// One known machine: its JSON (with power parameters, password removed),
/// its events in order; `mr` filled for the snapshot.
async fn machine_from_api(
    maas: &MaasDriver,
    m: &MachinePlan,
    id: &str,
    mr: &mut MachineResult,
) -> Result<(serde_json::Value, Vec<String>), StageError> {
    let client = maas.client();
    let json_err = |e: serde_json::Error| StageError::Target(format!("machine JSON: {e}"));
    let raw = client.get_raw(&format!("machines/{id}/"), &[]).await?;
    let mut fields: serde_json::Value = serde_json::from_str(&raw).map_err(json_err)?;
    let machine: crate::maas::types::Machine =
        serde_json::from_value(fields.clone()).map_err(json_err)?;
    let mut params = client.power_parameters(id).await?;
    params.remove("power_pass");
    // 3.x's k_g is a secret too (drivers/power/ipmi.py: secret=True): shown
    // only as set or not.
    if let Some(k) = params
        .get_mut("k_g")
        .filter(|k| k.as_str().is_some_and(|s| !s.is_empty()))
    {
        *k = "<redacted>".into();
    }
    let page = client
        .events(&EventQuery {
            system_id: Some(id.to_string()),
            level: Some("DEBUG".into()),
            after: None,
            limit: Some(1000),
        })
        .await?;
    let mut evs = page.events;
    evs.sort_by_key(|e| e.id);
    let events: Vec<String> = evs
        .iter()
        .map(|e| {
            let text = if e.description.is_empty() {
                e.event_type.clone()
            } else {
                format!("{} - {}", e.event_type, e.description)
            };
            dashed_macs_to_colons(&text, m)
        })
        .collect();
    let boot_mac = machine
        .boot_interface
        .as_ref()
        .map(|i| i.mac_address.to_ascii_lowercase());
    mr.status = Some(machine.status_name.clone());
    mr.power_state = Some(machine.power_state.as_str().to_string());
    mr.power_type = Some(machine.power_type.clone());
    mr.power_parameters = params.clone().into_iter().collect();
    mr.interfaces = machine
        .interface_set
        .iter()
        .map(|i| InterfaceResult {
            name: i.name.clone(),
            mac: i.mac_address.to_ascii_lowercase(),
            boot: boot_mac.as_deref() == Some(&i.mac_address.to_ascii_lowercase()),
        })
        .collect();
    mr.events = result::normalise_events(events.iter().map(String::as_str));
    if let Some(o) = fields.as_object_mut() {
        o.insert("power_parameters".into(), serde_json::Value::Object(params));
        o.insert("power_state".into(), machine.power_state.as_str().into());
        o.insert("interface_count".into(), machine.interface_set.len().into());
    }
    Ok((fields, events))
}

/// The transcript lines the snapshot summarises: every LAN session, and
/// the in-band commands that change the BMC. The in-band reads (the
/// kernel driver's polling, FreeIPMI's channel probing) vary in number
/// with guest timing; checks still see every line.
pub fn snapshot_lines(lines: &[TranscriptLine]) -> Vec<TranscriptLine> {
    let read = |c: &str| {
        c.starts_with("get_")
            || c.starts_with("read_")
            || c == "clear_message_flags"
            || c == "unknown"
    };
    let mut out: Vec<TranscriptLine> = Vec::new();
    for l in lines
        .iter()
        .filter(|l| l.channel != "inband" || !read(&l.command))
    {
        // The same LAN request twice in a row inside one session is the
        // client's retransmission (the answer took longer than its timer,
        // e.g. while libvirt starts the domain); sessions are separated by
        // their handshake lines, so retries in new sessions still count.
        if l.channel == "lan" && out.last() == Some(l) && !l.command.starts_with("set_system_boot")
        {
            continue;
        }
        out.push(l.clone());
    }
    out
}

/// pxelinux asks for `pxelinux.cfg/01-aa-bb-...`: write the plan's MACs in
/// colon form so the run's redaction knows them.
fn dashed_macs_to_colons(text: &str, m: &MachinePlan) -> String {
    let mut out = text.to_string();
    for n in &m.nics {
        let dashed = n.mac.to_ascii_lowercase().replace(':', "-");
        out = out
            .replace(&dashed, &n.mac.to_ascii_lowercase())
            .replace(&dashed.to_ascii_uppercase(), &n.mac.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_lines_keep_writes_and_drop_retransmissions() {
        let l = |ch: &str, c: &str, cc: u8| TranscriptLine {
            channel: ch.into(),
            command: c.into(),
            completion_code: Some(cc),
            argument: None,
        };
        let lines = vec![
            l("inband", "get_channel_info", 0xcc),
            l("inband", "set_user_password", 0),
            l("lan", "get_channel_auth_capabilities", 0),
            l("lan", "chassis_control", 0),
            l("lan", "chassis_control", 0),
            l("lan", "close_session", 0),
            l("lan", "get_channel_auth_capabilities", 0),
            l("lan", "chassis_control", 0),
        ];
        let kept: Vec<String> = snapshot_lines(&lines)
            .iter()
            .map(|l| format!("{} {}", l.channel, l.command))
            .collect();
        assert_eq!(
            kept,
            [
                "inband set_user_password",
                "lan get_channel_auth_capabilities",
                "lan chassis_control",
                "lan close_session",
                "lan get_channel_auth_capabilities",
                "lan chassis_control"
            ]
        );
    }
}
