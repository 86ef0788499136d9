//! The MAAS calls after wiring (snapshot) and the chart checks' judges.

use maas_e2e::targets::chart::ChartPlan;
use maas_e2e::targets::chart::maas_config::{check_no_server_header, check_rack_interfaces};
use serde_json::json;

use crate::common::{default_options, two_racks_options};

#[test]
fn configure_calls_snapshot() {
    let plan = ChartPlan::new(&two_racks_options()).unwrap();
    insta::assert_yaml_snapshot!("maas_calls_two_racks", plan.maas_calls());
    insta::assert_yaml_snapshot!("chart_expectations_two_racks", plan.expectations());
}

#[test]
fn configure_calls_follow_the_pxe_network() {
    let calls = ChartPlan::new(&default_options()).unwrap().maas_calls();
    let range = calls.iter().find(|c| c.path == "ipranges/").unwrap();
    assert!(
        range
            .params
            .contains(&("start_ip".into(), "10.40.0.100".into()))
    );
    assert!(
        range
            .params
            .contains(&("subnet".into(), "{subnet_id}".into()))
    );
    let subnets = calls.iter().find(|c| c.path == "subnets/").unwrap();
    assert!(
        subnets
            .captures
            .iter()
            .all(|(_, rule)| rule.contains("cidr is 10.40.0.0/24"))
    );
    let vlan = calls
        .iter()
        .find(|c| c.path.starts_with("fabrics/"))
        .unwrap();
    assert!(vlan.params.contains(&("dhcp_on".into(), "True".into())));
    assert!(
        vlan.params
            .contains(&("primary_rack".into(), "{rack_id}".into()))
    );
    // No gateway in the default options: no subnet update.
    assert!(
        !calls
            .iter()
            .any(|c| c.params.iter().any(|(k, _)| k == "gateway_ip"))
    );
    // The last call waits for the images to reach the rack.
    assert!(
        calls
            .last()
            .unwrap()
            .until
            .as_deref()
            .unwrap()
            .contains("synced")
    );
}

fn rack(names: &[&str]) -> serde_json::Value {
    json!({ "system_id": "abc123", "interface_set": names.iter().map(|n| json!({ "name": n, "type": "physical" })).collect::<Vec<_>>() })
}

#[test]
fn rack_interfaces_judge() {
    let inc = vec!["maas-pxe".to_string()];
    let exc = vec!["cali-e2e".to_string()];
    check_rack_interfaces(&rack(&["eth0", "maas-pxe"]), &inc, &exc).unwrap();
    let err =
        check_rack_interfaces(&rack(&["eth0", "maas-pxe", "cali-e2e"]), &inc, &exc).unwrap_err();
    assert!(
        err.contains("cali-e2e") && err.contains("nic_filter"),
        "{err}"
    );
    let err = check_rack_interfaces(&rack(&["eth0"]), &inc, &exc).unwrap_err();
    assert!(err.contains("missing [\"maas-pxe\"]"), "{err}");
    assert!(check_rack_interfaces(&json!({}), &inc, &exc).is_err());
}

#[test]
fn server_header_judge() {
    check_no_server_header([
        ("Content-Type", "text/html"),
        ("X-Frame-Options", "SAMEORIGIN"),
    ])
    .unwrap();
    let err = check_no_server_header([("server", "TwistedWeb/18.9.0")]).unwrap_err();
    assert!(
        err.contains("TwistedWeb") && err.contains("secure_headers"),
        "{err}"
    );
}
