//! Scenarios on target `sim` whose machines are BMCs without VMs: the
//! whole pipeline (lab namespace, BMC fleet, Postgres, region, rack power
//! drivers) with no guest to boot, so they run outside the VM group.

use std::path::{Path, PathBuf};
use std::process::Command;

use maas_e2e::plan::{self, RunId};
use maas_e2e::scenario::{self, TargetKind};
use maas_e2e::testing::{require, require_program, require_root};

#[path = "../support/walk.rs"]
mod walk;
use walk::run_dirs;
#[path = "../support/held_up.rs"]
mod held_up;
#[path = "../support/left_nothing.rs"]
mod left_nothing;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_maas-e2e"))
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

pub fn prerequisites() -> bool {
    require_root()
        && require_program("ip", "iproute2")
        && require_program("ipmipower", "freeipmi-tools")
        && require(
            "postgresql",
            maas_e2e::targets::sim::postgres::find_bin_dir().is_ok(),
            "apt-get install postgresql",
        )
}

/// Run one scenario on the sim (seed 1) into `out`; assert it passed and
/// matched its golden, left nothing on the host and no BMC password in any
/// artifact. Returns the run directory.
pub fn run_vm_less(name: &str, out: &Path) -> PathBuf {
    let r = bin()
        .args(["run", "--target", "sim", "--seed", "1", "--out"])
        .arg(out)
        .arg(repo(&format!("scenarios/{name}.yaml")))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&r.stdout);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(
        r.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains(name) && stdout.contains("match"),
        "{stdout}"
    );
    let dir = run_dirs(out).pop().unwrap();
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    let loaded = scenario::load(Path::new(record["scenario_path"].as_str().unwrap())).unwrap();
    let run_id: RunId = record["run_id"].as_str().unwrap().parse().unwrap();
    let plan = plan::plan(&loaded, TargetKind::Sim, &run_id, 1, out);
    left_nothing::assert_run_left_nothing(&dir, &plan);
    dir
}

#[test]
fn a_machine_created_with_power_type_redfish_is_queried_and_switched_over_redfish() {
    if !prerequisites() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let dir = run_vm_less("redfish-power", out.path());
    // The rack's driver spoke Redfish to the BMC, and only Redfish: the
    // power actions reached the shared state through the Redfish side.
    let t = std::fs::read_to_string(dir.join("machines/rf/bmc-transcript.jsonl")).unwrap();
    assert!(t.contains("\"channel\":\"redfish\""), "{t}");
    assert!(!t.contains("\"channel\":\"lan\""), "IPMI traffic: {t}");
    let result = std::fs::read_to_string(dir.join("result.yaml")).unwrap();
    assert!(result.contains("power_type: redfish"), "{result}");
}

#[test]
fn a_fleet_created_through_the_api_is_polled_by_maas_and_summarised() {
    if !prerequisites() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let dir = run_vm_less("fleet-power", out.path());
    let result: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(dir.join("result.yaml")).unwrap()).unwrap();
    let fleet = &result["fleet"];
    assert_eq!(fleet["machines"], 20, "{result}");
    // A quarter Redfish, spread over the fleet, the rest IPMI: the power
    // types MAAS stored from the operator's creates.
    assert_eq!(fleet["by_power_type"]["redfish"], 5, "{result}");
    assert_eq!(fleet["by_power_type"]["ipmi"], 15, "{result}");
    // Half powered on: of those ten, one faulty (its Redfish power-on
    // fails), one whose BMC accepts power-on but never comes on (MAAS gives
    // up after its re-checks), one that shuts itself down 10 s later (the
    // monitor then sees it off); then a quarter off: 2 stay on. The two
    // faulty BMCs in error; the rest off, as MAAS's monitor found them.
    // Nothing stayed unknown.
    assert_eq!(fleet["by_power_state"]["on"], 2, "{result}");
    assert_eq!(fleet["by_power_state"]["error"], 2, "{result}");
    assert_eq!(fleet["by_power_state"]["off"], 16, "{result}");
    assert!(fleet["by_power_state"].get("unknown").is_none(), "{result}");
    assert_eq!(fleet["by_status"]["New"], 20, "{result}");
    // Each behaviour on its own tenth of the fleet.
    for (b, n) in [
        ("plain", 14),
        ("faulty", 2),
        ("powers_off_after", 2),
        ("never_powers_on", 2),
    ] {
        assert_eq!(fleet["by_behaviour"][b], n, "{b}: {result}");
    }
    // The machine that shut itself down: on as asked, later off with no
    // failure reported, counted by that cause.
    assert_eq!(
        fleet["changed_unasked"]["asked on, shows off"], 1,
        "{result}"
    );
    let failures = fleet["failures"].as_object().unwrap();
    // MAAS 2.8.7's perform_power: power-on accepted at every re-check, the
    // chassis still off, then PowerError, system id masked.
    assert_eq!(
        failures["Failed to power on node - Power on for the node failed: Failed talking to node's BMC: Failed to power <system_id>. BMC never transitioned from off to on."],
        1,
        "{result}"
    );
    assert!(
        failures
            .keys()
            .any(|k| k.contains("Redfish request failed")),
        "{result}"
    );
    // Never one row per fleet machine.
    assert_eq!(result["machines"].as_object().map(|m| m.len()), Some(0));
    let timings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("fleet.json")).unwrap()).unwrap();
    assert_eq!(timings["create"]["count"], 20, "{timings}");
    assert_eq!(timings["until_known_s"].as_array().map(Vec::len), Some(1));
    assert_eq!(timings["power"]["on 50%"]["count"], 8, "{timings}");
    assert_eq!(timings["power"]["off 25%"]["count"], 5, "{timings}");
}

/// The same fleet through target external: `up` holds a sim MAAS, and a run
/// with its connection values creates the fleet on the lab bridge `up`
/// handed out, where that MAAS's own power monitor polls it. The summary
/// must be the sim run's (same golden but the target), the run must leave
/// nothing, and the fleet's machines must be gone from that MAAS after.
#[test]
fn a_fleet_runs_through_the_external_target_against_a_held_up_sim() {
    if !prerequisites() {
        return;
    }
    let up_out = tempfile::tempdir().unwrap();
    let mut up = held_up::HeldUp::start(bin(), up_out.path(), &repo("scenarios/sim-maas.yaml"), 3);
    let vars = up.vars();
    let key = vars
        .iter()
        .find(|(k, _)| k == "MAAS_API_KEY")
        .map(|(_, v)| v.clone())
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut c = bin();
    c.args(["run", "--target", "external", "--seed", "2", "--out"])
        .arg(out.path())
        .arg(repo("scenarios/fleet-power.yaml"));
    for (k, v) in &vars {
        c.env(k, v);
    }
    let r = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(r.status.code(), Some(0), "{text}\nup:\n{}", up.log_text());
    assert!(
        text.contains("fleet-power") && text.contains("match"),
        "{text}"
    );
    assert!(!text.contains(&key), "the run printed the API key");

    let dir = run_dirs(out.path()).pop().unwrap();
    let result: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(dir.join("result.yaml")).unwrap()).unwrap();
    assert_eq!(result["target"], "external", "{result}");
    assert_eq!(result["fleet"]["machines"], 20, "{result}");
    assert!(
        result["fleet"]["by_power_state"].get("unknown").is_none(),
        "{result}"
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    let loaded = scenario::load(Path::new(record["scenario_path"].as_str().unwrap())).unwrap();
    let run_id: RunId = record["run_id"].as_str().unwrap().parse().unwrap();
    let plan = plan::plan(&loaded, TargetKind::External, &run_id, 2, out.path());
    left_nothing::assert_run_left_nothing(&dir, &plan);

    // The run deletes what it created in that MAAS.
    let url = vars
        .iter()
        .find(|(k, _)| k == "MAAS_URL")
        .map(|(_, v)| v.clone())
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = maas_e2e::maas::MaasClient::new(&url, Some(key.parse().unwrap())).unwrap();
    let left: Vec<String> = rt
        .block_on(client.machines())
        .unwrap()
        .into_iter()
        .map(|m| m.hostname)
        .filter(|h| h.starts_with("fleet-"))
        .collect();
    assert!(left.is_empty(), "fleet machines left in the MAAS: {left:?}");
    assert_eq!(up.interrupt(), Some(0), "{}", up.log_text());
}
