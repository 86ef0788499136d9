//! The heartbeat of a long step: every interval (30 s, or
//! `MAAS_E2E_HEARTBEAT`, e.g. `5s`) what each machine last showed: its MAAS
//! status and power (or the VM's own when MAAS does not know it yet), its
//! last MAAS event and the console's last line. The pipeline emits it as a
//! `StepProgress` event; without a terminal it becomes lines in the log.

use std::time::Duration;

use crate::maas::MaasClient;
use crate::maas::client::EventQuery;
use crate::plan::Plan;
use crate::report::events::MachineGlimpse;
use crate::run::drive::maas::machine_with_macs;
use crate::run::lab::vms::{self, console_path, last_console_line};

/// How often a running step reports, unless `MAAS_E2E_HEARTBEAT` says.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// The interval from `MAAS_E2E_HEARTBEAT` (humantime: `5s`, `1m`), else the
/// default; a value that does not parse is the default too.
pub fn interval() -> Duration {
    std::env::var("MAAS_E2E_HEARTBEAT")
        .ok()
        .and_then(|v| humantime::parse_duration(&v).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_INTERVAL)
}

/// A heartbeat never holds a step up: what it cannot learn in this long
/// it leaves out.
const LOOK_LIMIT: Duration = Duration::from_secs(5);

/// What each of the plan's machines shows now.
pub async fn glimpse(plan: &Plan, maas: Option<&MaasClient>) -> Vec<MachineGlimpse> {
    let known = match maas {
        Some(c) => tokio::time::timeout(LOOK_LIMIT, c.machines())
            .await
            .ok()
            .and_then(Result::ok),
        None => None,
    };
    let mut out = Vec::with_capacity(plan.machines.len());
    for (n, m) in plan.machines.iter().enumerate() {
        let mut g = MachineGlimpse {
            machine: m.name.clone(),
            ..Default::default()
        };
        match known.as_deref().and_then(|ms| machine_with_macs(ms, m)) {
            Some(machine) => {
                g.status = Some(machine.status_name.clone());
                g.power = Some(machine.power_state.as_str().to_string());
                // Events for the machines a heartbeat prints (the first 10).
                if let Some(c) = maas.filter(|_| n < 10) {
                    let q = EventQuery {
                        system_id: Some(machine.system_id.clone()),
                        limit: Some(1),
                        ..Default::default()
                    };
                    if let Ok(Ok(page)) = tokio::time::timeout(LOOK_LIMIT, c.events(&q)).await {
                        g.last_event = page.events.first().map(|e| {
                            format!("{}: {}", e.event_type, e.description)
                                .trim_end_matches(": ")
                                .to_string()
                        });
                    }
                }
            }
            None => {
                if known.is_some() {
                    g.status = Some("not enlisted yet".into());
                }
                if m.vm
                    && let Ok(Ok(on)) =
                        tokio::time::timeout(LOOK_LIMIT, vms::is_running(&m.domain)).await
                {
                    g.power = Some(format!("{} (the VM)", if on { "on" } else { "off" }));
                }
            }
        }
        if m.vm {
            g.console = last_console_line(&console_path(&plan.host.vm_dir, m));
        }
        out.push(g);
    }
    out
}
