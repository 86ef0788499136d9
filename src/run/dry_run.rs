//! `run --dry-run`: every action a run would take, in order, from the plan
//! alone. Pure: nothing is created.

use crate::plan::Plan;
use crate::run::drive::step_name;
use crate::run::options::TargetOptions;
use crate::scenario::{Scenario, TargetKind};

pub fn actions(plan: &Plan, scenario: &Scenario, _options: &TargetOptions) -> Vec<String> {
    let h = &plan.host;
    let mut out = vec![
        "# stage plan".to_string(),
        format!(
            "write {}/{{scenario.yaml,plan.yaml,run.json,state.json}}",
            h.run_dir.display()
        ),
        format!("register /run/maas-e2e/runs/{}.json", plan.run_id),
        "# stage lab".to_string(),
    ];
    if plan.target == TargetKind::External {
        out.extend([
            "GET MAAS_URL/api/2.0/version/, then machines/ with the API key; refuse if MAAS knows one of the run's MACs".to_string(),
            format!("check {} is an existing bridge (it is the user's: not created, not changed)", h.bridge),
            format!("ip netns add {}", h.netns),
        ]);
    } else {
        out.extend([
            format!("ip netns add {}", h.netns),
            format!(
                "ip link add {} type bridge (no address, no uplink)",
                h.bridge
            ),
        ]);
    }
    out.extend([
        format!(
            "ip link add {} type veth peer name {} netns {}",
            h.veth_host, h.veth_lab, h.netns
        ),
        format!("ip link set {} master {} up", h.veth_host, h.bridge),
    ]);
    // On chart the rack's address sits on a bridge in the kind node.
    if !plan.lab.rack_ip.is_unspecified() && plan.target != TargetKind::Chart {
        out.push(format!(
            "ip -n {} addr add {}/{} dev {}",
            h.netns, plan.lab.rack_ip, plan.lab.prefix_len, h.veth_lab
        ));
    }
    for m in &plan.machines {
        out.push(format!(
            "bmc {}: LAN {}:{} in netns {} (IPMI {:?}, suites {:?}), in-band socket {}",
            m.name,
            m.bmc.lan_ip,
            m.bmc.lan_port,
            h.netns,
            m.bmc.ipmi,
            m.bmc.cipher_suites,
            m.bmc.inband_socket.display()
        ));
        if m.bmc.redfish {
            out.push(format!(
                "bmc {}: Redfish https://{}:443 on the same state (power type {})",
                m.name,
                m.bmc.lan_ip,
                m.power_type.as_str()
            ));
        }
        if m.vm {
            for d in &m.disks {
                out.push(format!(
                    "qemu-img create -f qcow2 {} {}M",
                    d.path.display(),
                    d.size_mib
                ));
            }
            out.push(format!(
                "virsh define {} ({:?}, cpu {}, {} MiB, nics {}), console {}",
                m.domain,
                m.firmware,
                m.cpu,
                m.memory_mib,
                m.nics
                    .iter()
                    .map(|n| format!("{:?} {}", n.model, n.mac))
                    .collect::<Vec<_>>()
                    .join(", "),
                m.console_log.display()
            ));
        }
    }
    if plan.lab.capture {
        out.push(format!(
            "tcpdump in netns {} -> {}/network/capture.SECRET.pcap",
            h.netns,
            h.run_dir.display()
        ));
    }
    out.push("# stage deploy".into());
    match plan.target {
        TargetKind::None => out.push("no MAAS: the harness drives the BMCs with ipmipower inside the lab namespace".into()),
        TargetKind::Sim => out.push(format!("start Postgres (local, as user postgres), the sim region on {}:{} and the rack's DHCP/TFTP/HTTP in netns {}", plan.lab.rack_ip, plan.lab.region_port, h.netns)),
        TargetKind::External => out.push("nothing to deploy: the external MAAS runs already".into()),
        TargetKind::Chart => match crate::run::provider::chart_options(plan, _options).and_then(|o| Ok((crate::targets::chart::dry_run(&o)?, o))) {
            Ok((text, o)) => {
                // The same chart check as a real run's preflight (images: not required locally).
                match crate::targets::chart::render_check::check(&o, Default::default()) {
                    Ok(r) => out.extend(r.table().lines().map(|l| format!("# [check] {l}"))),
                    Err(e) => out.push(format!("# [check] chart check could not run: {e}")),
                }
                out.extend(text.lines().map(String::from))
            }
            Err(e) => out.push(format!("the chart plan is invalid: {e}")),
        },
    }
    out.push("# stage drive".into());
    for (i, s) in scenario.steps.iter().enumerate() {
        out.push(format!("step {i:02}: {}", step_name(s)));
    }
    out.push("# stage observe, report".into());
    out.push(format!(
        "write {}/{{result.yaml,junit.xml,events.jsonl}}; compare scenarios/{}.{}.snap",
        h.run_dir.display(),
        plan.scenario,
        crate::report::snapshot::target_label(plan.target, plan.lab.sim.profile)
    ));
    if plan.target == TargetKind::External {
        out.push("DELETE machines/{id}/ on the external MAAS for each machine this run enlisted, unless --keep".into());
    }
    out.push("# teardown (reverse order), unless --keep".into());
    out
}
