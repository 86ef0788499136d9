//! Machines: enlistment, reads in MAAS's JSON shape, status changes, power
//! settings and power state.

use serde_json::{Value, json};
use tokio_postgres::Row;

use super::{API, Result, Store, invalid, no_machine, sql};
use crate::maas::types::*;

/// The machine columns `machine_from_rows` reads, in its order.
const MACHINE_COLUMNS: &str =
    "SELECT id, system_id, hostname, architecture, status, status_message, power_type, power_state,
        cpu_count, memory_mib, commissioning_status, cpu_model,
        (SELECT max(s.id) FROM script_sets s WHERE s.machine_id = machines.id AND s.result_type = 0),
        testing_status,
        (SELECT max(s.id) FROM script_sets s WHERE s.machine_id = machines.id AND s.result_type = 2)
        FROM machines";

/// What an anonymous enlistment posted.
#[derive(Debug, Clone, Default)]
pub struct EnlistForm {
    pub hostname: String,
    pub architecture: String,
    pub subarchitecture: String,
    pub power_type: String,
    /// The JSON string as posted.
    pub power_parameters: String,
    pub mac_addresses: Vec<String>,
}

/// Power types MAAS 2.8 knows; the sim drives ipmi and redfish (and manual does nothing).
pub const KNOWN_POWER_TYPES: &[&str] = &[
    "", "ipmi", "manual", "virsh", "redfish", "amt", "apc", "hmc", "lxd", "moonshot", "mscm",
    "msftocs", "openbmc", "sm15k", "ucsm", "vmware", "wedge", "webhook",
];

/// What the rack needs to decide a boot (see `boot::boot_config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineBootState {
    pub system_id: String,
    pub hostname: String,
    pub status: NodeStatus,
}

/// Power settings of one machine (power_parameters holds the BMC password).
#[derive(Debug, Clone, PartialEq)]
pub struct PowerSettings {
    pub system_id: String,
    pub hostname: String,
    pub power_type: String,
    pub power_parameters: Value,
}

/// Normalise a MAC to lower-case colon form, or None when it is not a MAC.
pub fn normalise_mac(mac: &str) -> Option<String> {
    let hex: Vec<&str> = mac.trim().split([':', '-']).collect();
    if hex.len() != 6
        || hex
            .iter()
            .any(|h| h.len() != 2 || !h.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return None;
    }
    Some(hex.join(":").to_ascii_lowercase())
}

/// A six-character system_id like MAAS's (lower-case letters and digits).
pub fn new_system_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstwxy0123456789";
    uuid::Uuid::new_v4().as_bytes()[..6]
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

/// A two-word hostname, as MAAS gives nodes enlisted without one.
fn petname(system_id: &str) -> String {
    const ADJ: &[&str] = &[
        "able", "brave", "calm", "eager", "fair", "glad", "keen", "lucky", "neat", "proud",
        "quick", "sharp", "tidy", "vast", "wise", "bold",
    ];
    const NOUN: &[&str] = &[
        "ant", "bass", "crab", "deer", "eel", "fox", "gull", "hare", "ibis", "jay", "koi", "lynx",
        "mole", "newt", "owl", "yak",
    ];
    let h = system_id
        .bytes()
        .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
    format!(
        "{}-{}-{}",
        ADJ[h % ADJ.len()],
        NOUN[(h / ADJ.len()) % NOUN.len()],
        system_id
    )
}

/// Rows grouped by the machine id in column `col`.
fn by_machine(rows: &[Row], col: usize) -> std::collections::HashMap<i64, Vec<&Row>> {
    let mut map: std::collections::HashMap<i64, Vec<&Row>> = std::collections::HashMap::new();
    for r in rows {
        map.entry(r.get::<_, i64>(col)).or_default().push(r);
    }
    map
}

impl Store {
    pub(super) async fn machine_id(&self, system_id: &str) -> Result<i64> {
        self.opt(
            "looking up a machine",
            "SELECT id FROM machines WHERE system_id = $1",
            &[&system_id],
            |r| r.get(0),
        )
        .await?
        .ok_or_else(|| no_machine(system_id))
    }

    /// All machines, in enlistment order (three queries, not one per machine).
    pub async fn machines(&self) -> Result<Vec<Machine>> {
        let t0 = std::time::Instant::now();
        let db = self.db.lock().await;
        let locked = t0.elapsed();
        let rows = sql::raw(
            &*db,
            "listing machines",
            &format!("{MACHINE_COLUMNS} ORDER BY id"),
            &[],
        )
        .await?;
        let ifaces = sql::raw(
            &*db,
            "reading interfaces",
            "SELECT id, name, mac_address, is_boot, machine_id FROM interfaces ORDER BY id",
            &[],
        )
        .await?;
        let disks = sql::raw(
            &*db,
            "reading block devices",
            "SELECT id, name, size_bytes, machine_id FROM block_devices ORDER BY name",
            &[],
        )
        .await?;
        drop(db);
        let queried = t0.elapsed();
        let (ifaces, disks) = (by_machine(&ifaces, 4), by_machine(&disks, 3));
        let out: Vec<Machine> = rows
            .iter()
            .map(|r| {
                let id: i64 = r.get(0);
                machine_from_rows(
                    r,
                    ifaces.get(&id).map_or(&[][..], Vec::as_slice),
                    disks.get(&id).map_or(&[][..], Vec::as_slice),
                )
            })
            .collect();
        // Where a slow list goes (docs/performance.md: the lock and the
        // queries are a small part of it; encoding the JSON is the most).
        tracing::debug!(
            machines = out.len(),
            lock_wait_ms = locked.as_secs_f64() * 1e3,
            queries_ms = (queried - locked).as_secs_f64() * 1e3,
            mapping_ms = (t0.elapsed() - queried).as_secs_f64() * 1e3,
            "listing machines"
        );
        Ok(out)
    }

    /// One machine in MAAS's JSON shape; NotFound when there is none.
    pub async fn machine(&self, system_id: &str) -> Result<Machine> {
        let db = self.db.lock().await;
        let mut rows = sql::raw(
            &*db,
            "reading a machine",
            &format!("{MACHINE_COLUMNS} WHERE system_id = $1"),
            &[&system_id],
        )
        .await?;
        let row = rows.pop().ok_or_else(|| no_machine(system_id))?;
        let id: i64 = row.get(0);
        let ifaces = sql::raw(
            &*db,
            "reading interfaces",
            "SELECT id, name, mac_address, is_boot FROM interfaces WHERE machine_id = $1 ORDER BY id",
            &[&id],
        )
        .await?;
        let disks = sql::raw(
            &*db,
            "reading block devices",
            "SELECT id, name, size_bytes FROM block_devices WHERE machine_id = $1 ORDER BY name",
            &[&id],
        )
        .await?;
        drop(db);
        let (ifaces, disks): (Vec<&Row>, Vec<&Row>) =
            (ifaces.iter().collect(), disks.iter().collect());
        Ok(machine_from_rows(&row, &ifaces, &disks))
    }

    /// Forget a machine and everything it owns (interfaces, disks, tokens,
    /// events, results cascade); NotFound when there is none.
    pub async fn delete_machine(&self, system_id: &str) -> Result<()> {
        let n = self
            .exec(
                "deleting a machine",
                "DELETE FROM machines WHERE system_id = $1",
                &[&system_id],
            )
            .await?;
        if n == 0 {
            return Err(no_machine(system_id));
        }
        Ok(())
    }

    /// The machine that owns this MAC, if any.
    pub async fn machine_for_mac(&self, mac: &str) -> Result<Option<MachineBootState>> {
        let Some(mac) = normalise_mac(mac) else {
            return Ok(None);
        };
        self.opt(
            "looking up a MAC",
            "SELECT m.system_id, m.hostname, m.status FROM interfaces i JOIN machines m ON m.id = i.machine_id
             WHERE i.mac_address = $1",
            &[&mac],
            |r| MachineBootState {
                system_id: r.get(0),
                hostname: r.get(1),
                status: NodeStatus(r.get(2)),
            },
        )
        .await
    }

    /// is_registered: whether a machine not in one of `ignore` has this MAC
    /// (2.8 api/nodes.py is_registered: anonymous callers ignore New,
    /// Commissioning and Retired machines, users only Retired ones).
    pub async fn is_registered(&self, mac: &str, ignore: &[NodeStatus]) -> Result<bool> {
        let Some(mac) = normalise_mac(mac) else {
            return Ok(false);
        };
        let ignore: Vec<i32> = ignore.iter().map(|s| s.0).collect();
        Ok(self
            .opt(
                "looking up a MAC",
                "SELECT 1 FROM interfaces i JOIN machines m ON m.id = i.machine_id
                 WHERE i.mac_address = $1 AND m.status <> ALL($2)",
                &[&mac, &ignore],
                |_| (),
            )
            .await?
            .is_some())
    }

    /// The New or Commissioning machine an anonymous enlistment is a repeat
    /// of (2.8 AnonMachinesHandler.create): same IPMI power_address first,
    /// then any of the MACs.
    pub async fn enlisted_before(&self, form: &EnlistForm) -> Result<Option<String>> {
        if form.power_type == "ipmi"
            && let Ok(params) = serde_json::from_str::<Value>(&form.power_parameters)
        {
            let address = params
                .get("power_address")
                .and_then(Value::as_str)
                .unwrap_or("");
            let by_bmc = self
                .opt(
                    "looking up a BMC",
                    "SELECT system_id FROM machines WHERE status IN (0, 1)
                     AND power_parameters->>'power_address' = $1 ORDER BY id LIMIT 1",
                    &[&address],
                    |r| r.get(0),
                )
                .await?;
            if by_bmc.is_some() {
                return Ok(by_bmc);
            }
        }
        let macs: Vec<String> = form
            .mac_addresses
            .iter()
            .filter_map(|m| normalise_mac(m))
            .collect();
        if macs.len() != form.mac_addresses.len() {
            // 2.8 looks up by MAC only when every MAC is valid.
            return Ok(None);
        }
        self.opt(
            "looking up MACs",
            "SELECT m.system_id FROM interfaces i JOIN machines m ON m.id = i.machine_id
             WHERE i.mac_address = ANY($1) AND m.status IN (0, 1) ORDER BY i.id LIMIT 1",
            &[&macs],
            |r| r.get(0),
        )
        .await
    }

    /// A repeated enlistment updates the machine it found: architecture,
    /// and power settings when any were sent (2.8 _update_new_node).
    pub async fn update_enlisted(&self, system_id: &str, form: &EnlistForm) -> Result<Machine> {
        let arch = enlist_architecture(form)?;
        self.exec(
            "updating an enlisted machine",
            "UPDATE machines SET architecture = $2, updated = now() WHERE system_id = $1",
            &[&system_id, &arch],
        )
        .await?;
        if !form.power_type.is_empty() || !form.power_parameters.trim().is_empty() {
            let params = enlist_power_parameters(form)?;
            self.set_power(system_id, &form.power_type, &params).await?;
        }
        self.machine(system_id).await
    }

    /// Anonymous enlistment: validate as MAAS does, create the machine New.
    pub async fn enlist(&self, form: &EnlistForm) -> Result<Machine> {
        if form.mac_addresses.is_empty() {
            return Err(invalid("mac_addresses", "This field is required."));
        }
        let mut macs = Vec::new();
        for m in &form.mac_addresses {
            let n = normalise_mac(m).ok_or_else(|| {
                invalid(
                    "mac_addresses",
                    format!("'{m}' is not a valid MAC address."),
                )
            })?;
            if !macs.contains(&n) {
                macs.push(n);
            }
        }
        let arch = enlist_architecture(form)?;
        let params = enlist_power_parameters(form)?;
        let system_id = new_system_id();
        let mut db = self.db.lock().await;
        let tx = sql::begin(&mut db, "opening an enlistment transaction").await?;
        for m in &macs {
            let taken = sql::opt(
                &tx,
                "checking a MAC",
                "SELECT 1 FROM interfaces WHERE mac_address = $1",
                &[m],
                |_| (),
            )
            .await?;
            if taken.is_some() {
                return Err(invalid(
                    "mac_addresses",
                    format!("MAC address {m} already in use on another machine."),
                ));
            }
        }
        let hostname = if form.hostname.trim().is_empty() {
            petname(&system_id)
        } else {
            // MAAS keeps only the host part of an FQDN given at enlistment.
            form.hostname
                .trim()
                .split('.')
                .next()
                .unwrap_or_default()
                .to_string()
        };
        let dup = sql::opt(
            &tx,
            "checking a hostname",
            "SELECT 1 FROM machines WHERE hostname = $1",
            &[&hostname],
            |_| (),
        )
        .await?;
        if dup.is_some() {
            return Err(invalid(
                "hostname",
                format!("Node with hostname \"{hostname}\" already exists."),
            ));
        }
        let params_text = params.to_string();
        let id: i64 = sql::one(
            &tx,
            "creating a machine",
            "INSERT INTO machines (system_id, hostname, architecture, status, power_type, power_parameters)
             VALUES ($1, $2, $3, 0, $4, $5::text::jsonb) RETURNING id",
            &[&system_id, &hostname, &arch, &form.power_type, &params_text],
            |r| r.get(0),
        )
        .await?;
        for (i, m) in macs.iter().enumerate() {
            sql::exec(
                &tx,
                "creating an interface",
                "INSERT INTO interfaces (machine_id, name, mac_address, is_boot) VALUES ($1, $2, $3, $4)",
                &[&id, &format!("eth{i}"), m, &(i == 0)],
            )
            .await?;
        }
        // PXE/TFTP events recorded before the machine existed join it.
        sql::exec(
            &tx,
            "attaching boot events",
            "UPDATE events SET machine_id = $1 WHERE machine_id IS NULL AND mac_address = ANY($2)",
            &[&id, &macs],
        )
        .await?;
        sql::commit(tx, "committing an enlistment").await?;
        drop(db);
        self.changed();
        self.machine(&system_id).await
    }

    /// Change the status and record MAAS's "Node changed status" event.
    /// Returns the old status.
    pub async fn set_status(
        &self,
        system_id: &str,
        new: NodeStatus,
        message: Option<&str>,
    ) -> Result<NodeStatus> {
        let old = self
            .opt(
                "changing a machine's status",
                "UPDATE machines m SET status = $2, status_message = $3, updated = now()
                 FROM machines old WHERE m.id = old.id AND m.system_id = $1 RETURNING old.status",
                &[&system_id, &new.0, &message],
                |r| NodeStatus(r.get(0)),
            )
            .await?
            .ok_or_else(|| no_machine(system_id))?;
        if old != new {
            self.record_event(
                Some(system_id),
                None,
                &crate::targets::sim::events::NODE_CHANGED_STATUS,
                &format!("From '{}' to '{}'", old.name(), new.name()),
            )
            .await?;
            self.changed();
        }
        Ok(old)
    }

    pub async fn power_settings(&self, system_id: &str) -> Result<PowerSettings> {
        self.opt(
            "reading power parameters",
            "SELECT hostname, power_type, power_parameters::text FROM machines WHERE system_id = $1",
            &[&system_id],
            |r| PowerSettings {
                system_id: system_id.into(),
                hostname: r.get(0),
                power_type: r.get(1),
                power_parameters: serde_json::from_str(r.get::<_, &str>(2))
                    .unwrap_or_else(|_| json!({})),
            },
        )
        .await?
        .ok_or_else(|| no_machine(system_id))
    }

    /// The machines the power monitor should query now: a queryable power
    /// type, and never queried or last queried more than `stale` ago (2.8:
    /// rpc/nodes.py _gen_cluster_nodes_power_parameters, 5 minutes).
    pub async fn machines_to_monitor(&self, stale: std::time::Duration) -> Result<Vec<String>> {
        let secs = stale.as_secs_f64();
        self.rows(
            "listing machines to query",
            "SELECT system_id FROM machines WHERE power_type NOT IN ('', 'manual')
             AND (power_state_queried IS NULL OR power_state_queried < now() - make_interval(secs => $1))
             ORDER BY id",
            &[&secs],
            |r| r.get(0),
        )
        .await
    }

    pub async fn set_power(&self, system_id: &str, power_type: &str, params: &Value) -> Result<()> {
        if !KNOWN_POWER_TYPES.contains(&power_type) {
            return Err(invalid(
                "power_type",
                format!("'{power_type}' is not a valid power type."),
            ));
        }
        let n = self
            .exec(
                "storing power parameters",
                "UPDATE machines SET power_type = $2, power_parameters = $3::text::jsonb, updated = now() WHERE system_id = $1",
                &[&system_id, &power_type, &params.to_string()],
            )
            .await?;
        if n == 0 {
            return Err(no_machine(system_id));
        }
        Ok(())
    }

    /// Store a power state an API query learnt, leaving the monitor's
    /// queried time alone: MAAS sets power_state_queried only when the
    /// rack lists the node for its monitor (3.6.4 rpc/nodes.py
    /// list_cluster_nodes_power_parameters; update_power_state does not).
    /// The 3.6 profile's API queries use this (profile.rs).
    pub async fn set_power_state_unmonitored(
        &self,
        system_id: &str,
        state: PowerState,
    ) -> Result<()> {
        self.exec(
            "storing a power state",
            "UPDATE machines SET power_state = $2 WHERE system_id = $1",
            &[&system_id, &state.as_str()],
        )
        .await
        .map(drop)
    }

    /// Store the power state (and when it was learnt, as MAAS's
    /// update_power_state); returns the previous one.
    pub async fn set_power_state(&self, system_id: &str, state: PowerState) -> Result<PowerState> {
        Ok(self
            .opt(
                "storing a power state",
                "UPDATE machines m SET power_state = $2, power_state_queried = now() FROM machines old
                 WHERE m.id = old.id AND m.system_id = $1 RETURNING old.power_state",
                &[&system_id, &state.as_str()],
                |r| PowerState::parse(r.get::<_, &str>(0)),
            )
            .await?
            .unwrap_or_default())
    }
}

/// The architecture an enlistment asks for, as MAAS validates it.
fn enlist_architecture(form: &EnlistForm) -> Result<String> {
    let arch = match (form.architecture.trim(), form.subarchitecture.trim()) {
        ("", _) => "amd64/generic".to_string(),
        (a, _) if a.contains('/') => a.to_string(),
        (a, "") => format!("{a}/generic"),
        (a, s) => format!("{a}/{s}"),
    };
    if !(arch.starts_with("amd64/") || arch.starts_with("i386/")) {
        return Err(invalid(
            "architecture",
            format!(
                "'{arch}' is not a valid architecture.  It should be one of: 'amd64/generic', 'i386/generic'."
            ),
        ));
    }
    Ok(arch)
}

/// The power type and parameters an enlistment sent, validated.
fn enlist_power_parameters(form: &EnlistForm) -> Result<Value> {
    if !KNOWN_POWER_TYPES.contains(&form.power_type.as_str()) {
        return Err(invalid(
            "power_type",
            format!("'{}' is not a valid power type.", form.power_type),
        ));
    }
    let params: Value = if form.power_parameters.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(&form.power_parameters)
            .map_err(|e| invalid("power_parameters", format!("not a JSON object: {e}")))?
    };
    if !params.is_object() {
        return Err(invalid("power_parameters", "not a JSON object"));
    }
    Ok(params)
}

fn machine_from_rows(row: &Row, ifaces: &[&Row], disks: &[&Row]) -> Machine {
    let system_id: String = row.get(1);
    let hostname: String = row.get(2);
    let status = NodeStatus(row.get(4));
    let interfaces: Vec<(bool, Interface)> = ifaces
        .iter()
        .map(|r| {
            let id: i64 = r.get(0);
            (
                r.get(3),
                Interface::physical(id, r.get(1), r.get(2), &system_id),
            )
        })
        .collect();
    let boot_interface = interfaces
        .iter()
        .find(|(b, _)| *b)
        .or(interfaces.first())
        .map(|(_, i)| i.clone());
    let devices: Vec<BlockDevice> = disks
        .iter()
        .map(|r| {
            let id: i64 = r.get(0);
            let name: String = r.get(1);
            BlockDevice {
                id,
                path: format!("/dev/disk/by-dname/{name}"),
                name,
                size: r.get::<_, i64>(2) as u64,
                block_size: 512,
                device_type: "physical".into(),
                model: String::new(),
                serial: String::new(),
                resource_uri: format!("{API}/nodes/{system_id}/blockdevices/{id}/"),
            }
        })
        .collect();
    // `+ 0.0`: an empty f64 sum is -0.0, and MAAS shows a diskless machine's
    // storage as 0.0.
    let storage_mb = devices
        .iter()
        .map(|d| d.size as f64 / 1_000_000.0)
        .sum::<f64>()
        + 0.0;
    let block_json: Vec<Value> = devices
        .iter()
        .map(|d| serde_json::to_value(d).unwrap_or_default())
        .collect();
    let cpu_count = row.get::<_, i32>(8) as u32;
    let memory = row.get::<_, i64>(9) as u64;
    let cpu_model: Option<String> = row.get(11);
    // 2.8 reports "Unknown" for what commissioning did not learn.
    let mut hardware_info = serde_json::Map::new();
    for key in [
        "system_vendor",
        "system_product",
        "system_family",
        "system_version",
        "system_sku",
        "system_serial",
        "cpu_model",
        "mainboard_vendor",
        "mainboard_product",
        "mainboard_serial",
        "mainboard_version",
        "mainboard_firmware_vendor",
        "mainboard_firmware_date",
        "mainboard_firmware_version",
        "chassis_vendor",
        "chassis_type",
        "chassis_serial",
        "chassis_version",
    ] {
        hardware_info.insert(key.into(), json!("Unknown"));
    }
    if let Some(model) = cpu_model {
        hardware_info.insert("cpu_model".into(), json!(model));
    }
    let no_tests = (-1, ScriptStatus::name(-1).to_string());
    let commissioning_status: i32 = row.get(10);
    let testing_status: i32 = row.get(13);
    // smartctl-validate, the one testing script, is a storage test.
    let storage_tests = match testing_status {
        -1 => no_tests.clone(),
        s => (s, ScriptStatus::name(s).to_string()),
    };
    Machine {
        fqdn: format!("{hostname}.maas"),
        domain: Some(Domain {
            id: 0,
            name: "maas".into(),
            authoritative: true,
            resource_uri: format!("{API}/domains/0/"),
        }),
        status_name: status.name().to_string(),
        status,
        status_message: row.get(5),
        power_type: row.get(6),
        power_state: PowerState::parse(row.get::<_, &str>(7)),
        architecture: row.get(3),
        boot_interface,
        interface_set: interfaces.into_iter().map(|(_, i)| i).collect(),
        cpu_count,
        cpu_speed: 0,
        memory,
        storage: storage_mb,
        physicalblockdevice_set: devices,
        hardware_uuid: None,
        owner_data: serde_json::Map::new(),
        locked: false,
        cache_sets: Vec::new(),
        bcaches: Vec::new(),
        min_hwe_kernel: Some(String::new()),
        hwe_kernel: None,
        swap_size: None,
        address_ttl: None,
        disable_ipv4: false,
        // MAAS boots from the first physical disk.
        boot_disk: block_json.first().cloned(),
        blockdevice_set: block_json,
        iscsiblockdevice_set: Vec::new(),
        virtualblockdevice_set: Vec::new(),
        volume_groups: Vec::new(),
        raids: Vec::new(),
        special_filesystems: Vec::new(),
        status_action: None,
        pod: None,
        default_gateways: json!({
            "ipv4": {"gateway_ip": null, "link_id": null},
            "ipv6": {"gateway_ip": null, "link_id": null},
        }),
        current_commissioning_result_id: row.get(12),
        current_testing_result_id: row.get(14),
        current_installation_result_id: None,
        cpu_test_status: no_tests.0,
        cpu_test_status_name: no_tests.1.clone(),
        memory_test_status: no_tests.0,
        memory_test_status_name: no_tests.1.clone(),
        network_test_status: no_tests.0,
        network_test_status_name: no_tests.1.clone(),
        storage_test_status: storage_tests.0,
        storage_test_status_name: storage_tests.1,
        other_test_status: no_tests.0,
        other_test_status_name: no_tests.1.clone(),
        interface_test_status: no_tests.0,
        interface_test_status_name: no_tests.1,
        hardware_info,
        // 2.8 gives every machine NUMA node 0 with all its cores and memory.
        numanode_set: vec![NumaNode {
            index: 0,
            cores: (0..cpu_count).collect(),
            memory,
        }],
        zone: Some(NamedRef {
            id: 1,
            name: "default".into(),
            description: String::new(),
            resource_uri: format!("{API}/zones/default/"),
        }),
        pool: Some(NamedRef {
            id: 0,
            name: "default".into(),
            description: "Default pool".into(),
            resource_uri: format!("{API}/resourcepool/0/"),
        }),
        node_type: 0,
        node_type_name: "Machine".into(),
        commissioning_status,
        commissioning_status_name: ScriptStatus::name(commissioning_status).into(),
        testing_status,
        testing_status_name: match testing_status {
            -1 => "None".into(),
            s => ScriptStatus::name(s).into(),
        },
        netboot: true,
        osystem: String::new(),
        distro_series: String::new(),
        bios_boot_method: None,
        ip_addresses: Vec::new(),
        tag_names: Vec::new(),
        owner: None,
        description: String::new(),
        resource_uri: format!("{API}/machines/{system_id}/"),
        hostname,
        system_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_normalise() {
        assert_eq!(
            normalise_mac("52-54-00-AB-cd-01").as_deref(),
            Some("52:54:00:ab:cd:01")
        );
        assert_eq!(normalise_mac("52:54:00:ab:cd"), None);
        assert_eq!(normalise_mac("zz:54:00:ab:cd:01"), None);
    }

    #[test]
    fn system_ids_look_like_maas() {
        let id = new_system_id();
        assert_eq!(id.len(), 6);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }
}
