//! What every finished run on a lab must show: its namespace gone, no BMC
//! password in any file of its run directory, and a state file listing no
//! resource (teardown removed all it recorded).

use std::path::Path;

use maas_e2e::plan::Plan;

use super::walk::files;

pub fn assert_run_left_nothing(dir: &Path, plan: &Plan) {
    assert!(
        !Path::new("/run/netns").join(&plan.host.netns).exists(),
        "netns {} was left behind",
        plan.host.netns
    );
    for f in files(dir) {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        for m in &plan.machines {
            assert!(
                !text.contains(&m.bmc.password),
                "{} holds the BMC password of {}",
                f.display(),
                m.name
            );
        }
    }
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(
        state["resources"].as_array().map(Vec::len),
        Some(0),
        "teardown left: {state}"
    );
}
