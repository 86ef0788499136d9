//! Rack controllers: the sim's own rack registers at start.

use super::machines::new_system_id;
use super::{API, Result, Store};
use crate::maas::types::{RackController, ServiceStatus};

impl Store {
    /// Register (or find) the rack controller with this hostname.
    pub async fn register_rack(&self, hostname: &str, version: &str) -> Result<String> {
        self.one(
            "registering a rack controller",
            "INSERT INTO rack_controllers (system_id, hostname, version) VALUES ($1, $2, $3)
             ON CONFLICT (hostname) DO UPDATE SET version = EXCLUDED.version RETURNING system_id",
            &[&new_system_id(), &hostname, &version],
            |r| r.get(0),
        )
        .await
    }

    pub async fn rack_controllers(&self) -> Result<Vec<RackController>> {
        self.rows(
            "listing rack controllers",
            "SELECT system_id, hostname, version FROM rack_controllers ORDER BY id",
            &[],
            |r| {
                let system_id: String = r.get(0);
                let hostname: String = r.get(1);
                RackController {
                    fqdn: format!("{hostname}.maas"),
                    resource_uri: format!("{API}/rackcontrollers/{system_id}/"),
                    system_id,
                    hostname,
                    node_type: 2,
                    node_type_name: "Rack controller".into(),
                    version: r.get(2),
                    architecture: "amd64/generic".into(),
                    interface_set: Vec::new(),
                    service_set: ["rackd", "dhcpd", "tftp", "http"]
                        .iter()
                        .map(|n| ServiceStatus {
                            name: n.to_string(),
                            status: "running".into(),
                            status_info: String::new(),
                        })
                        .collect(),
                }
            },
        )
        .await
    }
}
