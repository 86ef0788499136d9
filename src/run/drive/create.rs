//! What an operator types to add a machine MAAS cannot enlist by itself
//! (a BMC without a VM, a Redfish BMC that MAAS 2.8's in-guest autodetect
//! cannot find): `POST machines/` as the admin with the machine's MACs,
//! its power type and the power parameters of that type, and no
//! commissioning. Pure: the request is built from the plan.

use serde_json::{Value, json};

use crate::maas::client::EnlistRequest;
use crate::plan::MachinePlan;
use crate::run::lab::bmcs::ipmi_params;
use crate::scenario::PowerType;

/// The power parameters MAAS stores for this machine's power type, named
/// as MAAS 2.8's drivers name their settings (ipmi.py, redfish.py).
pub fn power_parameters(m: &MachinePlan) -> Value {
    match m.power_type {
        PowerType::Ipmi => {
            let p = ipmi_params(m);
            json!({
                "power_address": p.power_address,
                "power_user": p.power_user,
                "power_pass": p.power_pass,
                "power_driver": p.power_driver,
                "power_boot_type": p.power_boot_type,
            })
        }
        // The driver adds https:// to an address without a scheme and
        // takes the first member of Systems when node_id is unset.
        PowerType::Redfish => json!({
            "power_address": m.bmc.lan_ip.to_string(),
            "power_user": m.bmc.username,
            "power_pass": m.bmc.password,
        }),
    }
}

/// The create request of one plan machine.
pub fn create_request(m: &MachinePlan) -> EnlistRequest {
    EnlistRequest {
        hostname: m.name.clone(),
        architecture: "amd64/generic".into(),
        subarchitecture: None,
        power_type: m.power_type.as_str().into(),
        power_parameters: power_parameters(m),
        mac_addresses: m.nics.iter().map(|n| n.mac.clone()).collect(),
    }
}
