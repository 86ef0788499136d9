//! The sim region's state in Postgres: every read and write the API, the
//! metadata service, the power driver and the rack make goes through here.
//!
//! Rows are turned into the shared MAAS types (`crate::maas::types`), so the
//! JSON the sim serves is the JSON the client parses.

use serde_json::{Value, json};
use thiserror::Error;
use tokio::sync::Mutex;
use tokio_postgres::Row;

use crate::maas::ApiKey;
use crate::maas::types::*;

const API: &str = "/MAAS/api/2.0";

/// Rows grouped by the machine id in column `col`.
fn by_machine(rows: &[Row], col: usize) -> std::collections::HashMap<i64, Vec<&Row>> {
    let mut map: std::collections::HashMap<i64, Vec<&Row>> = std::collections::HashMap::new();
    for r in rows {
        map.entry(r.get::<_, i64>(col)).or_default().push(r);
    }
    map
}

/// The machine columns `machine_from_rows` reads, in its order.
const MACHINE_COLUMNS: &str =
    "SELECT id, system_id, hostname, architecture, status, status_message, power_type, power_state,
        cpu_count, memory_mib, commissioning_status FROM machines";

/// A store operation that failed; the API maps each kind to an HTTP status.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{what}: {source}")]
    Sql {
        what: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// 400 with MAAS's field-error body `{"field": ["message"]}`.
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409 (a node state violation in MAAS terms).
    #[error("{0}")]
    Conflict(String),
}

type Result<T> = std::result::Result<T, StoreError>;

fn sql(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    let what = what.into();
    move |source| StoreError::Sql { what, source }
}

fn invalid(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field: field.into(),
        message: message.into(),
    }
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

/// SQL that renders a timestamp column as MAAS does ("Wed, 25 Nov. 2026 12:00:00").
fn maas_time(col: &str) -> String {
    format!("to_char({col} AT TIME ZONE 'UTC', 'Dy, DD Mon. YYYY HH24:MI:SS')")
}

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

/// Power types MAAS 2.8 knows; the sim drives only ipmi (and manual does nothing).
pub const KNOWN_POWER_TYPES: &[&str] = &[
    "", "ipmi", "manual", "virsh", "redfish", "amt", "apc", "hmc", "lxd", "moonshot", "mscm",
    "msftocs", "openbmc", "sm15k", "ucsm", "vmware", "wedge", "webhook",
];

/// One interface reported by commissioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedInterface {
    pub name: String,
    pub mac: String,
    pub boot: bool,
}

/// Hardware reported by commissioning (50-maas-01-commissioning).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportedHardware {
    pub cpu_count: i32,
    pub cpu_model: Option<String>,
    pub memory_mib: i64,
    pub disks: Vec<(String, i64)>,
}

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

/// Commissioning scripts the sim expects (MAAS 2.8 built-ins it implements).
pub const COMMISSIONING_SCRIPTS: &[&str] = &[
    "00-maas-00-support-info",
    "40-maas-01-network-interfaces",
    "50-maas-01-commissioning",
];

/// The Postgres-backed state.
pub struct Store {
    db: Mutex<tokio_postgres::Client>,
}

impl Store {
    pub fn new(client: tokio_postgres::Client) -> Self {
        Store {
            db: Mutex::new(client),
        }
    }

    // ---- tokens -------------------------------------------------------

    pub async fn insert_token(
        &self,
        key: &ApiKey,
        username: &str,
        machine_id: Option<i64>,
    ) -> Result<()> {
        self.db
            .lock()
            .await
            .execute(
                "INSERT INTO tokens (consumer_key, token_key, token_secret, username, machine_id) VALUES ($1, $2, $3, $4, $5)",
                &[&key.consumer_key, &key.token_key, &key.token_secret, &username, &machine_id],
            )
            .await
            .map_err(sql("storing an API token"))?;
        Ok(())
    }

    /// The key a token belongs to, its username and the node's system_id
    /// for node tokens.
    pub async fn lookup_token(
        &self,
        token_key: &str,
    ) -> Result<Option<(ApiKey, String, Option<String>)>> {
        let row = self
            .db
            .lock()
            .await
            .query_opt(
                "SELECT t.consumer_key, t.token_key, t.token_secret, t.username, m.system_id
                 FROM tokens t LEFT JOIN machines m ON m.id = t.machine_id WHERE t.token_key = $1",
                &[&token_key],
            )
            .await
            .map_err(sql("looking up an API token"))?;
        Ok(row.map(|r| {
            (
                ApiKey::new(
                    r.get::<_, String>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                ),
                r.get(3),
                r.get(4),
            )
        }))
    }

    /// The node's own OAuth key (MAAS makes one per node); created on first use.
    pub async fn node_key(&self, system_id: &str) -> Result<ApiKey> {
        let id = self.machine_id(system_id).await?;
        let existing = self
            .db
            .lock()
            .await
            .query_opt("SELECT consumer_key, token_key, token_secret FROM tokens WHERE machine_id = $1 ORDER BY id LIMIT 1", &[&id])
            .await
            .map_err(sql("reading a node key"))?;
        if let Some(r) = existing {
            return Ok(ApiKey::new(
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
            ));
        }
        let key = ApiKey::generate();
        self.insert_token(&key, &format!("node-{system_id}"), Some(id))
            .await?;
        Ok(key)
    }

    // ---- machines -----------------------------------------------------

    async fn machine_id(&self, system_id: &str) -> Result<i64> {
        let row = self
            .db
            .lock()
            .await
            .query_opt(
                "SELECT id FROM machines WHERE system_id = $1",
                &[&system_id],
            )
            .await
            .map_err(sql("looking up a machine"))?;
        row.map(|r| r.get(0)).ok_or_else(|| {
            StoreError::NotFound(format!("No machine matches the given query ({system_id})."))
        })
    }

    /// All machines, in enlistment order (three queries, not one per machine).
    pub async fn machines(&self) -> Result<Vec<Machine>> {
        let db = self.db.lock().await;
        let rows = db
            .query(&format!("{MACHINE_COLUMNS} ORDER BY id"), &[])
            .await
            .map_err(sql("listing machines"))?;
        let ifaces = db
            .query(
                "SELECT id, name, mac_address, is_boot, machine_id FROM interfaces ORDER BY id",
                &[],
            )
            .await
            .map_err(sql("reading interfaces"))?;
        let disks = db
            .query(
                "SELECT id, name, size_bytes, machine_id FROM block_devices ORDER BY name",
                &[],
            )
            .await
            .map_err(sql("reading block devices"))?;
        drop(db);
        let (ifaces, disks) = (by_machine(&ifaces, 4), by_machine(&disks, 3));
        Ok(rows
            .iter()
            .map(|r| {
                let id: i64 = r.get(0);
                machine_from_rows(
                    r,
                    ifaces.get(&id).map_or(&[][..], Vec::as_slice),
                    disks.get(&id).map_or(&[][..], Vec::as_slice),
                )
            })
            .collect())
    }

    /// One machine in MAAS's JSON shape; NotFound when there is none.
    pub async fn machine(&self, system_id: &str) -> Result<Machine> {
        let db = self.db.lock().await;
        let row = db
            .query_opt(
                &format!("{MACHINE_COLUMNS} WHERE system_id = $1"),
                &[&system_id],
            )
            .await
            .map_err(sql("reading a machine"))?
            .ok_or_else(|| {
                StoreError::NotFound(format!("No machine matches the given query ({system_id})."))
            })?;
        let id: i64 = row.get(0);
        let ifaces = db
            .query("SELECT id, name, mac_address, is_boot FROM interfaces WHERE machine_id = $1 ORDER BY id", &[&id])
            .await
            .map_err(sql("reading interfaces"))?;
        let disks = db
            .query("SELECT id, name, size_bytes FROM block_devices WHERE machine_id = $1 ORDER BY name", &[&id])
            .await
            .map_err(sql("reading block devices"))?;
        drop(db);
        let (ifaces, disks): (Vec<&Row>, Vec<&Row>) =
            (ifaces.iter().collect(), disks.iter().collect());
        Ok(machine_from_rows(&row, &ifaces, &disks))
    }

    /// Forget a machine and everything it owns (interfaces, disks, tokens,
    /// events, results cascade); NotFound when there is none.
    pub async fn delete_machine(&self, system_id: &str) -> Result<()> {
        let db = self.db.lock().await;
        let n = db
            .execute("DELETE FROM machines WHERE system_id = $1", &[&system_id])
            .await
            .map_err(sql("deleting a machine"))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "No machine matches the given query ({system_id})."
            )));
        }
        Ok(())
    }

    /// The machine that owns this MAC, if any.
    pub async fn machine_for_mac(&self, mac: &str) -> Result<Option<MachineBootState>> {
        let Some(mac) = normalise_mac(mac) else {
            return Ok(None);
        };
        let row = self
            .db
            .lock()
            .await
            .query_opt(
                "SELECT m.system_id, m.hostname, m.status FROM interfaces i JOIN machines m ON m.id = i.machine_id
                 WHERE i.mac_address = $1",
                &[&mac],
            )
            .await
            .map_err(sql("looking up a MAC"))?;
        Ok(row.map(|r| MachineBootState {
            system_id: r.get(0),
            hostname: r.get(1),
            status: NodeStatus(r.get(2)),
        }))
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
        let system_id = new_system_id();
        let mut db = self.db.lock().await;
        let tx = db
            .transaction()
            .await
            .map_err(sql("opening an enlistment transaction"))?;
        for m in &macs {
            let taken = tx
                .query_opt("SELECT 1 FROM interfaces WHERE mac_address = $1", &[m])
                .await
                .map_err(sql("checking a MAC"))?;
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
        let dup = tx
            .query_opt("SELECT 1 FROM machines WHERE hostname = $1", &[&hostname])
            .await
            .map_err(sql("checking a hostname"))?;
        if dup.is_some() {
            return Err(invalid(
                "hostname",
                format!("Node with hostname \"{hostname}\" already exists."),
            ));
        }
        let params_text = params.to_string();
        let row = tx
            .query_one(
                "INSERT INTO machines (system_id, hostname, architecture, status, power_type, power_parameters)
                 VALUES ($1, $2, $3, 0, $4, $5::text::jsonb) RETURNING id",
                &[&system_id, &hostname, &arch, &form.power_type, &params_text],
            )
            .await
            .map_err(sql("creating a machine"))?;
        let id: i64 = row.get(0);
        for (i, m) in macs.iter().enumerate() {
            tx.execute(
                "INSERT INTO interfaces (machine_id, name, mac_address, is_boot) VALUES ($1, $2, $3, $4)",
                &[&id, &format!("eth{i}"), m, &(i == 0)],
            )
            .await
            .map_err(sql("creating an interface"))?;
        }
        // PXE/TFTP events recorded before the machine existed join it.
        tx.execute(
            "UPDATE events SET machine_id = $1 WHERE machine_id IS NULL AND mac_address = ANY($2)",
            &[&id, &macs],
        )
        .await
        .map_err(sql("attaching boot events"))?;
        tx.commit().await.map_err(sql("committing an enlistment"))?;
        drop(db);
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
        let row = self
            .db
            .lock()
            .await
            .query_opt(
                "UPDATE machines m SET status = $2, status_message = $3, updated = now()
                 FROM machines old WHERE m.id = old.id AND m.system_id = $1 RETURNING old.status",
                &[&system_id, &new.0, &message],
            )
            .await
            .map_err(sql("changing a machine's status"))?
            .ok_or_else(|| {
                StoreError::NotFound(format!("No machine matches the given query ({system_id})."))
            })?;
        let old = NodeStatus(row.get(0));
        if old != new {
            self.record_event(
                Some(system_id),
                None,
                &crate::targets::sim::events::NODE_CHANGED_STATUS,
                &format!("From '{}' to '{}'", old.name(), new.name()),
            )
            .await?;
        }
        Ok(old)
    }

    pub async fn power_settings(&self, system_id: &str) -> Result<PowerSettings> {
        let row = self
            .db
            .lock()
            .await
            .query_opt("SELECT hostname, power_type, power_parameters::text FROM machines WHERE system_id = $1", &[&system_id])
            .await
            .map_err(sql("reading power parameters"))?
            .ok_or_else(|| StoreError::NotFound(format!("No machine matches the given query ({system_id}).")))?;
        let text: String = row.get(2);
        Ok(PowerSettings {
            system_id: system_id.into(),
            hostname: row.get(0),
            power_type: row.get(1),
            power_parameters: serde_json::from_str(&text).unwrap_or_else(|_| json!({})),
        })
    }

    /// Every machine the periodic power query should ask about.
    pub async fn queryable_machines(&self) -> Result<Vec<String>> {
        Ok(self
            .db
            .lock()
            .await
            .query(
                "SELECT system_id FROM machines WHERE power_type = 'ipmi' ORDER BY id",
                &[],
            )
            .await
            .map_err(sql("listing machines to query"))?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    pub async fn set_power(&self, system_id: &str, power_type: &str, params: &Value) -> Result<()> {
        if !KNOWN_POWER_TYPES.contains(&power_type) {
            return Err(invalid(
                "power_type",
                format!("'{power_type}' is not a valid power type."),
            ));
        }
        let n = self
            .db
            .lock()
            .await
            .execute(
                "UPDATE machines SET power_type = $2, power_parameters = $3::text::jsonb, updated = now() WHERE system_id = $1",
                &[&system_id, &power_type, &params.to_string()],
            )
            .await
            .map_err(sql("storing power parameters"))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "No machine matches the given query ({system_id})."
            )));
        }
        Ok(())
    }

    /// Store the power state; returns the previous one.
    pub async fn set_power_state(&self, system_id: &str, state: PowerState) -> Result<PowerState> {
        let row = self
            .db
            .lock()
            .await
            .query_opt(
                "UPDATE machines m SET power_state = $2 FROM machines old
                 WHERE m.id = old.id AND m.system_id = $1 RETURNING old.power_state",
                &[&system_id, &state.as_str()],
            )
            .await
            .map_err(sql("storing a power state"))?;
        Ok(row
            .map(|r| PowerState::parse(r.get::<_, &str>(0)))
            .unwrap_or_default())
    }

    // ---- events -------------------------------------------------------

    /// Record an event about a machine (by system_id) or, for a PXE or TFTP
    /// request from an unknown node, about a MAC.
    pub async fn record_event(
        &self,
        system_id: Option<&str>,
        mac: Option<&str>,
        kind: &crate::targets::sim::events::EventKind,
        description: &str,
    ) -> Result<i64> {
        let row = self
            .db
            .lock()
            .await
            .query_one(
                "INSERT INTO events (machine_id, mac_address, event_type, level, description)
                 VALUES ((SELECT id FROM machines WHERE system_id = $1), $2, $3, $4, $5) RETURNING id",
                &[&system_id, &mac, &kind.description, &kind.level, &description],
            )
            .await
            .map_err(sql("recording an event"))?;
        Ok(row.get(0))
    }

    /// events/?op=query: newest first, filtered by node and minimum level.
    pub async fn events(
        &self,
        system_id: Option<&str>,
        min_level: &str,
        after: Option<i64>,
        limit: i64,
    ) -> Result<EventsPage> {
        let levels = levels_at_or_above(min_level);
        let rows = self
            .db
            .lock()
            .await
            .query(
                &format!(
                    "SELECT e.id, m.system_id, m.hostname, e.level, {}, e.event_type, e.description, e.username
                     FROM events e LEFT JOIN machines m ON m.id = e.machine_id
                     WHERE ($1::text IS NULL OR m.system_id = $1) AND e.level = ANY($2)
                       AND ($3::bigint IS NULL OR e.id > $3)
                     ORDER BY e.id DESC LIMIT $4",
                    maas_time("e.created")
                ),
                &[&system_id, &levels, &after, &limit],
            )
            .await
            .map_err(sql("querying events"))?;
        let events: Vec<Event> = rows
            .iter()
            .map(|r| Event {
                id: r.get(0),
                node: r.get(1),
                hostname: r.get::<_, Option<String>>(2).unwrap_or_default(),
                level: r.get(3),
                created: r.get(4),
                event_type: r.get(5),
                description: r.get(6),
                username: r.get(7),
            })
            .collect();
        Ok(EventsPage {
            count: events.len(),
            events,
            next_uri: String::new(),
            prev_uri: String::new(),
        })
    }

    // ---- commissioning ------------------------------------------------

    /// Start commissioning: status Commissioning, a fresh commissioning
    /// script set with the built-in scripts pending. Returns the old status.
    pub async fn start_commissioning(&self, system_id: &str) -> Result<NodeStatus> {
        let machine = self.machine(system_id).await?;
        let allowed = [
            NodeStatus::NEW,
            NodeStatus::READY,
            NodeStatus::FAILED_COMMISSIONING,
            NodeStatus::FAILED_TESTING,
            NodeStatus::BROKEN,
            NodeStatus::FAILED_DEPLOYMENT,
        ];
        if !allowed.contains(&machine.status) {
            return Err(StoreError::Conflict(format!(
                "Unable to be commissioned because it has the status '{}' ({system_id}).",
                machine.status.name()
            )));
        }
        let id = self.machine_id(system_id).await?;
        {
            let mut db = self.db.lock().await;
            let tx = db
                .transaction()
                .await
                .map_err(sql("opening a commissioning transaction"))?;
            let set: i64 = tx
                .query_one(
                    "INSERT INTO script_sets (machine_id, result_type) VALUES ($1, 0) RETURNING id",
                    &[&id],
                )
                .await
                .map_err(sql("creating a script set"))?
                .get(0);
            for name in COMMISSIONING_SCRIPTS {
                tx.execute(
                    "INSERT INTO script_results (script_set_id, name) VALUES ($1, $2)",
                    &[&set, name],
                )
                .await
                .map_err(sql("creating a script result"))?;
            }
            tx.execute(
                "UPDATE machines SET commissioning_status = 0 WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(sql("resetting commissioning status"))?;
            tx.commit()
                .await
                .map_err(sql("committing commissioning start"))?;
        }
        self.set_status(system_id, NodeStatus::COMMISSIONING, None)
            .await
    }

    async fn current_script_set(&self, machine_id: i64) -> Result<i64> {
        let row = self
            .db
            .lock()
            .await
            .query_opt("SELECT id FROM script_sets WHERE machine_id = $1 AND result_type = 0 ORDER BY id DESC LIMIT 1", &[&machine_id])
            .await
            .map_err(sql("finding the commissioning script set"))?;
        row.map(|r| r.get(0)).ok_or_else(|| {
            StoreError::Conflict("no commissioning script set: commission the machine first".into())
        })
    }

    /// Store one script's result (status Passed on exit 0, else Failed).
    pub async fn store_script_result(
        &self,
        system_id: &str,
        name: &str,
        exit_status: i32,
        output: &[u8],
    ) -> Result<i32> {
        let id = self.machine_id(system_id).await?;
        let set = self.current_script_set(id).await?;
        let status = if exit_status == 0 {
            ScriptStatus::PASSED
        } else {
            ScriptStatus::FAILED
        };
        self.db
            .lock()
            .await
            .execute(
                "INSERT INTO script_results (script_set_id, name, status, exit_status, output, started, ended)
                 VALUES ($1, $2, $3, $4, $5, now(), now())
                 ON CONFLICT (script_set_id, name) DO UPDATE
                 SET status = $3, exit_status = $4, output = $5, started = COALESCE(script_results.started, now()), ended = now()",
                &[&set, &name, &status, &exit_status, &output],
            )
            .await
            .map_err(sql("storing a script result"))?;
        self.ping(system_id).await?;
        Ok(status)
    }

    /// The node's heartbeat (last_ping of its script set).
    pub async fn ping(&self, system_id: &str) -> Result<()> {
        let id = self.machine_id(system_id).await?;
        self.db
            .lock()
            .await
            .execute(
                "UPDATE script_sets SET last_ping = now() WHERE id = (SELECT id FROM script_sets WHERE machine_id = $1 ORDER BY id DESC LIMIT 1)",
                &[&id],
            )
            .await
            .map_err(sql("storing a heartbeat"))?;
        Ok(())
    }

    /// Commissioning machines whose newest script set has not pinged (or,
    /// without a ping, started) within `timeout`.
    pub async fn silent_commissioning(&self, timeout: std::time::Duration) -> Result<Vec<String>> {
        let secs = timeout.as_secs_f64();
        Ok(self
            .db
            .lock()
            .await
            .query(
                "SELECT m.system_id FROM machines m
                 JOIN LATERAL (SELECT started, last_ping FROM script_sets s WHERE s.machine_id = m.id
                               ORDER BY s.id DESC LIMIT 1) s ON TRUE
                 WHERE m.status = 1 AND COALESCE(s.last_ping, s.started) < now() - make_interval(secs => $1)",
                &[&secs],
            )
            .await
            .map_err(sql("finding silent machines"))?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// Whether any script of the current commissioning set failed.
    pub async fn commissioning_failed_scripts(&self, system_id: &str) -> Result<Vec<String>> {
        let id = self.machine_id(system_id).await?;
        let set = self.current_script_set(id).await?;
        Ok(self
            .db
            .lock()
            .await
            .query("SELECT name FROM script_results WHERE script_set_id = $1 AND status IN (3, 4) ORDER BY name", &[&set])
            .await
            .map_err(sql("reading script results"))?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// End the script set: scripts still pending or running are marked
    /// with `leftover_status` (Aborted on failure, Skipped on success).
    pub async fn end_script_set(&self, system_id: &str, leftover_status: i32) -> Result<()> {
        let id = self.machine_id(system_id).await?;
        let set = self.current_script_set(id).await?;
        let db = self.db.lock().await;
        db.execute(
            "UPDATE script_results SET status = $2 WHERE script_set_id = $1 AND status IN (0, 1)",
            &[&set, &leftover_status],
        )
        .await
        .map_err(sql("closing script results"))?;
        db.execute(
            "UPDATE script_sets SET ended = now() WHERE id = $1",
            &[&set],
        )
        .await
        .map_err(sql("closing a script set"))?;
        let failed: bool = db
            .query_one("SELECT EXISTS (SELECT 1 FROM script_results WHERE script_set_id = $1 AND status IN (3, 4, 5))", &[&set])
            .await
            .map_err(sql("reading script results"))?
            .get(0);
        let status = if failed {
            ScriptStatus::FAILED
        } else {
            ScriptStatus::PASSED
        };
        db.execute(
            "UPDATE machines SET commissioning_status = $2 WHERE id = $1",
            &[&id, &status],
        )
        .await
        .map_err(sql("storing commissioning status"))?;
        Ok(())
    }

    /// Replace the machine's interfaces with what commissioning reported
    /// (matched by MAC; MACs no longer present are removed, as MAAS does).
    pub async fn apply_interfaces(
        &self,
        system_id: &str,
        reported: &[ReportedInterface],
    ) -> Result<()> {
        let id = self.machine_id(system_id).await?;
        let mut norm = Vec::new();
        for r in reported {
            let mac = normalise_mac(&r.mac).ok_or_else(|| {
                invalid(
                    "interfaces",
                    format!("'{}' is not a valid MAC address", r.mac),
                )
            })?;
            norm.push((r.name.clone(), mac, r.boot));
        }
        let mut db = self.db.lock().await;
        let tx = db
            .transaction()
            .await
            .map_err(sql("opening an interface update"))?;
        for (_, mac, _) in &norm {
            let other = tx
                .query_opt(
                    "SELECT 1 FROM interfaces WHERE mac_address = $1 AND machine_id <> $2",
                    &[mac, &id],
                )
                .await
                .map_err(sql("checking a MAC"))?;
            if other.is_some() {
                return Err(invalid(
                    "interfaces",
                    format!("MAC address {mac} already in use on another machine."),
                ));
            }
        }
        let macs: Vec<String> = norm.iter().map(|(_, m, _)| m.clone()).collect();
        tx.execute(
            "DELETE FROM interfaces WHERE machine_id = $1 AND NOT (mac_address = ANY($2))",
            &[&id, &macs],
        )
        .await
        .map_err(sql("removing interfaces"))?;
        let any_boot = norm.iter().any(|(_, _, b)| *b);
        for (name, mac, boot) in &norm {
            tx.execute(
                "INSERT INTO interfaces (machine_id, name, mac_address, is_boot) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (mac_address) DO UPDATE SET name = $2, is_boot = CASE WHEN $5 THEN $4 ELSE interfaces.is_boot END",
                &[&id, name, mac, boot, &any_boot],
            )
            .await
            .map_err(sql("storing an interface"))?;
        }
        tx.commit().await.map_err(sql("committing interfaces"))?;
        Ok(())
    }

    pub async fn apply_hardware(&self, system_id: &str, hw: &ReportedHardware) -> Result<()> {
        let id = self.machine_id(system_id).await?;
        let mut db = self.db.lock().await;
        let tx = db
            .transaction()
            .await
            .map_err(sql("opening a hardware update"))?;
        tx.execute(
            "UPDATE machines SET cpu_count = $2, cpu_model = $3, memory_mib = $4, updated = now() WHERE id = $1",
            &[&id, &hw.cpu_count, &hw.cpu_model, &hw.memory_mib],
        )
        .await
        .map_err(sql("storing hardware"))?;
        tx.execute("DELETE FROM block_devices WHERE machine_id = $1", &[&id])
            .await
            .map_err(sql("clearing disks"))?;
        for (name, size) in &hw.disks {
            tx.execute(
                "INSERT INTO block_devices (machine_id, name, size_bytes) VALUES ($1, $2, $3)",
                &[&id, name, size],
            )
            .await
            .map_err(sql("storing a disk"))?;
        }
        tx.commit().await.map_err(sql("committing hardware"))?;
        Ok(())
    }

    /// nodes/{id}/results/?type=commissioning
    pub async fn script_sets(
        &self,
        system_id: &str,
        include_output: bool,
    ) -> Result<Vec<ScriptSet>> {
        let id = self.machine_id(system_id).await?;
        let db = self.db.lock().await;
        let sets = db
            .query(
                &format!(
                    "SELECT id, {}, CASE WHEN ended IS NULL THEN NULL ELSE {} END,
                            CASE WHEN last_ping IS NULL THEN NULL ELSE {} END
                     FROM script_sets WHERE machine_id = $1 AND result_type = 0 ORDER BY id",
                    maas_time("started"),
                    maas_time("ended"),
                    maas_time("last_ping")
                ),
                &[&id],
            )
            .await
            .map_err(sql("reading script sets"))?;
        let mut out = Vec::new();
        for s in sets {
            let set_id: i64 = s.get(0);
            let rows = db
                .query(
                    &format!(
                        "SELECT id, name, status, exit_status, output,
                                CASE WHEN started IS NULL THEN NULL ELSE {} END,
                                CASE WHEN ended IS NULL THEN NULL ELSE {} END
                         FROM script_results WHERE script_set_id = $1 ORDER BY name",
                        maas_time("started"),
                        maas_time("ended")
                    ),
                    &[&set_id],
                )
                .await
                .map_err(sql("reading script results"))?;
            let results: Vec<ScriptResult> = rows
                .iter()
                .map(|r| {
                    let status: i32 = r.get(2);
                    let output: Vec<u8> = r.get(4);
                    ScriptResult {
                        id: r.get(0),
                        name: r.get(1),
                        status,
                        status_name: ScriptStatus::name(status).to_string(),
                        exit_status: r.get(3),
                        started: r.get(5),
                        ended: r.get(6),
                        runtime: String::new(),
                        suppressed: false,
                        output: include_output.then(|| base64_encode(&output)),
                        stdout: include_output.then(|| base64_encode(&output)),
                        stderr: include_output.then(String::new),
                        result: include_output.then(String::new),
                    }
                })
                .collect();
            let status = aggregate_script_status(&results);
            out.push(ScriptSet {
                id: set_id,
                system_id: system_id.to_string(),
                result_type: 0,
                type_name: "commissioning".into(),
                status,
                status_name: ScriptStatus::name(status).into(),
                last_ping: s.get(3),
                started: s.get(1),
                ended: s.get(2),
                runtime: String::new(),
                results,
                resource_uri: format!("{API}/nodes/{system_id}/results/{set_id}/"),
            });
        }
        Ok(out)
    }

    // ---- config -------------------------------------------------------

    pub async fn get_config(&self, name: &str) -> Result<Value> {
        let row = self
            .db
            .lock()
            .await
            .query_opt("SELECT value::text FROM config WHERE name = $1", &[&name])
            .await
            .map_err(sql("reading config"))?
            .ok_or_else(|| invalid("name", format!("{name} is not a valid config setting (valid settings are in the sim's config table).")))?;
        Ok(serde_json::from_str(row.get::<_, &str>(0)).unwrap_or(Value::Null))
    }

    /// set_config: MAAS takes a string and coerces; the sim stores JSON
    /// true/false for "true"/"false", numbers for numbers, else the string.
    pub async fn set_config(&self, name: &str, value: &str) -> Result<()> {
        let v = match value.to_ascii_lowercase().as_str() {
            "true" => json!(true),
            "false" => json!(false),
            _ => value
                .parse::<i64>()
                .map(|n| json!(n))
                .unwrap_or_else(|_| json!(value)),
        };
        self.db
            .lock()
            .await
            .execute(
                "INSERT INTO config (name, value) VALUES ($1, $2::text::jsonb) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[&name, &v.to_string()],
            )
            .await
            .map_err(sql("storing config"))?;
        Ok(())
    }

    // ---- network objects ----------------------------------------------

    async fn vlan_rows(
        &self,
        filter: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Vlan>> {
        let rows = self
            .db
            .lock()
            .await
            .query(
                &format!(
                    "SELECT v.id, v.vid, v.name, f.name, f.id, v.mtu, v.dhcp_on, v.primary_rack
                     FROM vlans v JOIN fabrics f ON f.id = v.fabric_id {filter} ORDER BY v.id"
                ),
                args,
            )
            .await
            .map_err(sql("reading VLANs"))?;
        Ok(rows.iter().map(vlan_from_row).collect())
    }

    pub async fn fabrics(&self) -> Result<Vec<Fabric>> {
        let rows = self
            .db
            .lock()
            .await
            .query("SELECT id, name, class_type FROM fabrics ORDER BY id", &[])
            .await
            .map_err(sql("reading fabrics"))?;
        let mut out = Vec::new();
        for r in rows {
            let id: i64 = r.get(0);
            out.push(Fabric {
                id,
                name: r.get(1),
                class_type: r.get(2),
                vlans: self.vlan_rows("WHERE f.id = $1", &[&id]).await?,
                resource_uri: format!("{API}/fabrics/{id}/"),
            });
        }
        Ok(out)
    }

    pub async fn vlans(&self, fabric_id: i64) -> Result<Vec<Vlan>> {
        self.vlan_rows("WHERE f.id = $1", &[&fabric_id]).await
    }

    /// PUT fabrics/{f}/vlans/{vid}/: dhcp_on and primary_rack.
    pub async fn update_vlan(
        &self,
        fabric_id: i64,
        vid: i32,
        dhcp_on: Option<bool>,
        primary_rack: Option<String>,
    ) -> Result<Vlan> {
        if dhcp_on == Some(true) && primary_rack.is_none() {
            let current = self
                .vlan_rows("WHERE f.id = $1 AND v.vid = $2", &[&fabric_id, &vid])
                .await?;
            if current.first().is_some_and(|v| v.primary_rack.is_none()) {
                return Err(invalid(
                    "dhcp_on",
                    "dhcp can only be turned on when a primary rack controller is set.",
                ));
            }
        }
        if let Some(rack) = &primary_rack {
            let known = self
                .db
                .lock()
                .await
                .query_opt(
                    "SELECT 1 FROM rack_controllers WHERE system_id = $1",
                    &[rack],
                )
                .await
                .map_err(sql("checking a rack"))?;
            if known.is_none() {
                return Err(invalid(
                    "primary_rack",
                    format!("Select a valid choice. {rack} is not one of the available choices."),
                ));
            }
        }
        let n = self
            .db
            .lock()
            .await
            .execute(
                "UPDATE vlans SET dhcp_on = COALESCE($3, dhcp_on), primary_rack = COALESCE($4, primary_rack)
                 WHERE fabric_id = $1 AND vid = $2",
                &[&fabric_id, &vid, &dhcp_on, &primary_rack],
            )
            .await
            .map_err(sql("updating a VLAN"))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "No VLAN matches the given query (fabric {fabric_id}, vid {vid})."
            )));
        }
        Ok(self
            .vlan_rows("WHERE f.id = $1 AND v.vid = $2", &[&fabric_id, &vid])
            .await?
            .remove(0))
    }

    async fn subnet_rows(
        &self,
        filter: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Subnet>> {
        let rows = self
            .db
            .lock()
            .await
            .query(
                &format!(
                    "SELECT s.id, s.name, s.cidr, s.gateway_ip, s.dns_servers::text, s.managed,
                            v.id, v.vid, v.name, f.name, f.id, v.mtu, v.dhcp_on, v.primary_rack
                     FROM subnets s JOIN vlans v ON v.id = s.vlan_id JOIN fabrics f ON f.id = v.fabric_id {filter} ORDER BY s.id"
                ),
                args,
            )
            .await
            .map_err(sql("reading subnets"))?;
        Ok(rows
            .iter()
            .map(|r| {
                let id: i64 = r.get(0);
                Subnet {
                    id,
                    name: r.get(1),
                    cidr: r.get(2),
                    gateway_ip: r.get(3),
                    dns_servers: serde_json::from_str(r.get::<_, &str>(4)).unwrap_or_default(),
                    managed: r.get(5),
                    vlan: vlan_at(r, 6),
                    active_discovery: false,
                    allow_dns: true,
                    allow_proxy: true,
                    rdns_mode: 2,
                    space: Some("undefined".into()),
                    resource_uri: format!("{API}/subnets/{id}/"),
                }
            })
            .collect())
    }

    pub async fn subnets(&self) -> Result<Vec<Subnet>> {
        self.subnet_rows("", &[]).await
    }

    /// POST subnets/: cidr required; fabric/vid default to fabric-0 untagged.
    pub async fn create_subnet(
        &self,
        cidr: &str,
        fabric_id: Option<i64>,
        vid: Option<i32>,
        gateway_ip: Option<&str>,
    ) -> Result<Subnet> {
        let net = parse_cidr(cidr).ok_or_else(|| {
            invalid(
                "cidr",
                format!("Required format: <network>/<prefixlen>, got '{cidr}'."),
            )
        })?;
        let vlan = self
            .db
            .lock()
            .await
            .query_opt(
                "SELECT v.id FROM vlans v JOIN fabrics f ON f.id = v.fabric_id
                 WHERE ($1::bigint IS NULL AND f.name = 'fabric-0' OR f.id = $1) AND v.vid = $2",
                &[&fabric_id, &vid.unwrap_or(0)],
            )
            .await
            .map_err(sql("finding a VLAN"))?
            .ok_or_else(|| invalid("vlan", "no such fabric/VLAN"))?;
        let vlan_id: i64 = vlan.get(0);
        let canonical = format!("{}/{}", std::net::Ipv4Addr::from(net.0), net.1);
        let row = self
            .db
            .lock()
            .await
            .query_one(
                "INSERT INTO subnets (name, cidr, vlan_id, gateway_ip) VALUES ($1, $1, $2, $3)
                 ON CONFLICT (cidr) DO NOTHING RETURNING id",
                &[&canonical, &vlan_id, &gateway_ip],
            )
            .await
            .map_err(|_| {
                invalid(
                    "cidr",
                    format!("Subnet with this Cidr already exists ({canonical})."),
                )
            })?;
        let id: i64 = row.get(0);
        Ok(self.subnet_rows("WHERE s.id = $1", &[&id]).await?.remove(0))
    }

    async fn range_rows(
        &self,
        filter: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<IpRange>> {
        let rows = self
            .db
            .lock()
            .await
            .query(&format!("SELECT id, type, start_ip, end_ip, comment, subnet_id FROM ipranges {filter} ORDER BY id"), args)
            .await
            .map_err(sql("reading IP ranges"))?;
        let mut out = Vec::new();
        for r in rows {
            let id: i64 = r.get(0);
            let subnet_id: i64 = r.get(5);
            let subnet = self
                .subnet_rows("WHERE s.id = $1", &[&subnet_id])
                .await?
                .remove(0);
            out.push(IpRange {
                id,
                range_type: r.get(1),
                start_ip: r.get(2),
                end_ip: r.get(3),
                comment: r.get(4),
                subnet,
                user: json!({"username": "admin", "is_superuser": true, "resource_uri": format!("{API}/users/admin/")}),
                resource_uri: format!("{API}/ipranges/{id}/"),
            });
        }
        Ok(out)
    }

    pub async fn ip_ranges(&self) -> Result<Vec<IpRange>> {
        self.range_rows("", &[]).await
    }

    /// POST ipranges/: the subnet is the one containing both ends.
    pub async fn create_ip_range(
        &self,
        range_type: &str,
        start: &str,
        end: &str,
        comment: &str,
    ) -> Result<IpRange> {
        if range_type != "dynamic" && range_type != "reserved" {
            return Err(invalid(
                "type",
                format!("Select a valid choice. {range_type} is not one of the available choices."),
            ));
        }
        let s: std::net::Ipv4Addr = start
            .parse()
            .map_err(|_| invalid("start_ip", format!("Enter a valid IPv4 address ({start}).")))?;
        let e: std::net::Ipv4Addr = end
            .parse()
            .map_err(|_| invalid("end_ip", format!("Enter a valid IPv4 address ({end}).")))?;
        if u32::from(s) > u32::from(e) {
            return Err(invalid(
                "end_ip",
                "End IP address must not be less than Start IP address.",
            ));
        }
        let subnets = self.subnets().await?;
        let subnet = subnets
            .iter()
            .find(|sn| parse_cidr(&sn.cidr).is_some_and(|net| contains(net, s) && contains(net, e)))
            .ok_or_else(|| {
                invalid(
                    "subnet",
                    format!("No subnet contains {start}-{end}; create the subnet first."),
                )
            })?;
        let row = self
            .db
            .lock()
            .await
            .query_one(
                "INSERT INTO ipranges (type, start_ip, end_ip, subnet_id, comment) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&range_type, &start, &end, &subnet.id, &comment],
            )
            .await
            .map_err(sql("creating an IP range"))?;
        let id: i64 = row.get(0);
        Ok(self.range_rows("WHERE id = $1", &[&id]).await?.remove(0))
    }

    // ---- rack controllers ---------------------------------------------

    /// Register (or find) the rack controller with this hostname.
    pub async fn register_rack(&self, hostname: &str, version: &str) -> Result<String> {
        let row = self
            .db
            .lock()
            .await
            .query_one(
                "INSERT INTO rack_controllers (system_id, hostname, version) VALUES ($1, $2, $3)
                 ON CONFLICT (hostname) DO UPDATE SET version = EXCLUDED.version RETURNING system_id",
                &[&new_system_id(), &hostname, &version],
            )
            .await
            .map_err(sql("registering a rack controller"))?;
        Ok(row.get(0))
    }

    pub async fn rack_controllers(&self) -> Result<Vec<RackController>> {
        let rows = self
            .db
            .lock()
            .await
            .query(
                "SELECT system_id, hostname, version FROM rack_controllers ORDER BY id",
                &[],
            )
            .await
            .map_err(sql("listing rack controllers"))?;
        Ok(rows
            .iter()
            .map(|r| {
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
            })
            .collect())
    }
}

fn vlan_at(r: &Row, i: usize) -> Vlan {
    let id: i64 = r.get(i);
    let vid: i32 = r.get(i + 1);
    let fabric_id: i64 = r.get(i + 4);
    Vlan {
        id,
        vid: vid as u16,
        name: r.get(i + 2),
        fabric: r.get(i + 3),
        fabric_id,
        mtu: r.get::<_, i32>(i + 5) as u32,
        dhcp_on: r.get(i + 6),
        external_dhcp: None,
        primary_rack: r.get(i + 7),
        secondary_rack: None,
        relay_vlan: None,
        space: Some("undefined".into()),
        resource_uri: format!("{API}/vlans/{id}/"),
    }
}

fn vlan_from_row(r: &Row) -> Vlan {
    vlan_at(r, 0)
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
                Interface {
                    id,
                    name: r.get(1),
                    iface_type: "physical".into(),
                    mac_address: r.get(2),
                    enabled: true,
                    vlan: None,
                    links: Vec::new(),
                    tags: Vec::new(),
                    params: Value::String(String::new()),
                    product: None,
                    vendor: None,
                    resource_uri: format!("{API}/nodes/{system_id}/interfaces/{id}/"),
                },
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
    let storage_mb = devices.iter().map(|d| d.size as f64 / 1_000_000.0).sum();
    let commissioning_status: i32 = row.get(10);
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
        cpu_count: row.get::<_, i32>(8) as u32,
        cpu_speed: 0,
        memory: row.get::<_, i64>(9) as u64,
        storage: storage_mb,
        physicalblockdevice_set: devices,
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
        testing_status: -1,
        testing_status_name: "None".into(),
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

fn aggregate_script_status(results: &[ScriptResult]) -> i32 {
    let has = |s: i32| results.iter().any(|r| r.status == s);
    if has(ScriptStatus::FAILED) || has(ScriptStatus::TIMEDOUT) {
        ScriptStatus::FAILED
    } else if has(ScriptStatus::RUNNING) {
        ScriptStatus::RUNNING
    } else if has(ScriptStatus::PENDING) {
        ScriptStatus::PENDING
    } else if has(5) {
        5
    } else {
        ScriptStatus::PASSED
    }
}

/// MAAS event levels, lowest first.
pub const LEVELS: &[&str] = &["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

fn levels_at_or_above(min: &str) -> Vec<String> {
    let min = min.to_ascii_uppercase();
    let start = LEVELS.iter().position(|l| *l == min).unwrap_or(1);
    LEVELS[start..].iter().map(|s| s.to_string()).collect()
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

fn parse_cidr(cidr: &str) -> Option<(u32, u8)> {
    let (ip, len) = cidr.split_once('/')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((u32::from(ip) & mask, len))
}

fn contains(net: (u32, u8), ip: std::net::Ipv4Addr) -> bool {
    let mask = if net.1 == 0 {
        0
    } else {
        u32::MAX << (32 - net.1)
    };
    u32::from(ip) & mask == net.0
}

/// Standard base64 (script output travels base64-encoded, as in MAAS).
pub fn base64_encode(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decode standard base64 (whitespace ignored); None when malformed.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let clean: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let trimmed: Vec<u8> = clean.iter().copied().take_while(|c| *c != b'=').collect();
    if clean[trimmed.len()..].iter().any(|c| *c != b'=') || trimmed.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    for chunk in trimmed.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    Some(out)
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
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "abcd", "hello world\n"] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).unwrap(), s.as_bytes(), "{e}");
        }
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(base64_decode("a"), None);
    }

    #[test]
    fn cidr_containment() {
        let net = parse_cidr("10.9.0.0/24").unwrap();
        assert!(contains(net, "10.9.0.200".parse().unwrap()));
        assert!(!contains(net, "10.9.1.1".parse().unwrap()));
        assert_eq!(parse_cidr("10.9.0.7/24").unwrap(), net);
    }

    #[test]
    fn levels_filter_from_the_minimum() {
        assert_eq!(
            levels_at_or_above("warning"),
            vec!["WARNING", "ERROR", "CRITICAL"]
        );
        assert_eq!(levels_at_or_above("DEBUG").len(), 5);
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
