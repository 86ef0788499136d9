//! Commissioning and testing: script sets and results, the node's
//! heartbeat, and what the scripts report (interfaces, hardware).

use super::{Result, Store, StoreError, invalid, maas_time, normalise_mac, sql};
use crate::maas::types::{NodeStatus, ScriptResult, ScriptSet, ScriptStatus};
use crate::targets::sim::b64;

/// Commissioning scripts the sim expects (MAAS 2.8 built-ins it implements).
pub const COMMISSIONING_SCRIPTS: &[&str] = &[
    "00-maas-00-support-info",
    "40-maas-01-network-interfaces",
    "50-maas-01-commissioning",
];

/// Testing scripts run after commissioning (2.8's default: the testing
/// scripts tagged `commissioning`, i.e. smartctl-validate).
pub const TESTING_SCRIPTS: &[&str] = &["smartctl-validate"];

/// Which script set a result belongs to (MAAS's RESULT_TYPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Commissioning,
    Testing,
}

impl Phase {
    /// MAAS's result_type number.
    pub fn result_type(self) -> i32 {
        match self {
            Phase::Commissioning => 0,
            Phase::Testing => 2,
        }
    }

    /// The phase a machine in `status` sends results for.
    pub fn of(status: NodeStatus) -> Phase {
        if status == NodeStatus::TESTING {
            Phase::Testing
        } else {
            Phase::Commissioning
        }
    }
}

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

impl Store {
    /// Whether `machine` may be commissioned from its status (409 otherwise).
    pub fn check_commissionable(&self, machine: &crate::maas::types::Machine) -> Result<()> {
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
                "Unable to be commissioned because it has the status '{}' ({}).",
                machine.status.name(),
                machine.system_id
            )));
        }
        Ok(())
    }

    /// Start commissioning: status Commissioning, fresh commissioning and
    /// testing script sets with the built-in scripts pending. Returns the
    /// old status.
    pub async fn start_commissioning(&self, system_id: &str) -> Result<NodeStatus> {
        let machine = self.machine(system_id).await?;
        self.check_commissionable(&machine)?;
        let id = self.machine_id(system_id).await?;
        {
            let mut db = self.db.lock().await;
            let tx = sql::begin(&mut db, "opening a commissioning transaction").await?;
            for (phase, names) in [
                (Phase::Commissioning, COMMISSIONING_SCRIPTS),
                (Phase::Testing, TESTING_SCRIPTS),
            ] {
                let set: i64 = sql::one(
                    &tx,
                    "creating a script set",
                    "INSERT INTO script_sets (machine_id, result_type) VALUES ($1, $2) RETURNING id",
                    &[&id, &phase.result_type()],
                    |r| r.get(0),
                )
                .await?;
                for name in names {
                    sql::exec(
                        &tx,
                        "creating a script result",
                        "INSERT INTO script_results (script_set_id, name) VALUES ($1, $2)",
                        &[&set, name],
                    )
                    .await?;
                }
                // Every uploaded commissioning script too (2.8
                // create_commissioning_script_set with none named).
                if phase == Phase::Commissioning {
                    sql::exec(
                        &tx,
                        "adding the user's commissioning scripts",
                        "INSERT INTO script_results (script_set_id, name)
                         SELECT $1, name FROM user_scripts WHERE script_type = 0 ORDER BY name",
                        &[&set],
                    )
                    .await?;
                }
            }
            sql::exec(
                &tx,
                "resetting commissioning status",
                "UPDATE machines SET commissioning_status = 0, testing_status = 0 WHERE id = $1",
                &[&id],
            )
            .await?;
            sql::commit(tx, "committing commissioning start").await?;
        }
        self.set_status(system_id, NodeStatus::COMMISSIONING, None)
            .await
    }

    async fn current_script_set(&self, machine_id: i64, phase: Phase) -> Result<i64> {
        self.opt(
            "finding the current script set",
            "SELECT id FROM script_sets WHERE machine_id = $1 AND result_type = $2 ORDER BY id DESC LIMIT 1",
            &[&machine_id, &phase.result_type()],
            |r| r.get(0),
        )
        .await?
        .ok_or_else(|| {
            StoreError::Conflict("no script set for this phase: commission the machine first".into())
        })
    }

    /// Store one script's result (status Passed on exit 0, else Failed).
    pub async fn store_script_result(
        &self,
        system_id: &str,
        phase: Phase,
        name: &str,
        exit_status: i32,
        output: &[u8],
    ) -> Result<i32> {
        let id = self.machine_id(system_id).await?;
        let set = self.current_script_set(id, phase).await?;
        let status = if exit_status == 0 {
            ScriptStatus::PASSED
        } else {
            ScriptStatus::FAILED
        };
        self.exec(
            "storing a script result",
            "INSERT INTO script_results (script_set_id, name, status, exit_status, output, started, ended)
             VALUES ($1, $2, $3, $4, $5, now(), now())
             ON CONFLICT (script_set_id, name) DO UPDATE
             SET status = $3, exit_status = $4, output = $5, started = COALESCE(script_results.started, now()), ended = now()",
            &[&set, &name, &status, &exit_status, &output],
        )
        .await?;
        self.ping(system_id).await?;
        Ok(status)
    }

    /// The node's heartbeat (last_ping of its script set).
    pub async fn ping(&self, system_id: &str) -> Result<()> {
        let id = self.machine_id(system_id).await?;
        self.exec(
            "storing a heartbeat",
            "UPDATE script_sets SET last_ping = now() WHERE id = (SELECT id FROM script_sets WHERE machine_id = $1 ORDER BY id DESC LIMIT 1)",
            &[&id],
        )
        .await?;
        Ok(())
    }

    /// Commissioning or Testing machines silent for `timeout`: (system_id,
    /// whether the node ever signalled). Never signalled counts from the
    /// start of commissioning (MAAS's status_expires), else from the last
    /// signal (its script heartbeat).
    pub async fn silent_machines(
        &self,
        timeout: std::time::Duration,
    ) -> Result<Vec<(String, bool)>> {
        let secs = timeout.as_secs_f64();
        self.rows(
            "finding silent machines",
            "SELECT m.system_id, s.last_ping IS NOT NULL FROM machines m
             JOIN LATERAL (SELECT started, last_ping FROM script_sets s WHERE s.machine_id = m.id
                           ORDER BY s.id DESC LIMIT 1) s ON TRUE
             WHERE m.status IN (1, 21) AND COALESCE(s.last_ping, s.started) < now() - make_interval(secs => $1)",
            &[&secs],
            |r| (r.get(0), r.get(1)),
        )
        .await
    }

    /// The scripts of the current set of `phase` that failed (or timed out).
    pub async fn failed_scripts(&self, system_id: &str, phase: Phase) -> Result<Vec<String>> {
        let id = self.machine_id(system_id).await?;
        let set = self.current_script_set(id, phase).await?;
        self.rows(
            "reading script results",
            "SELECT name FROM script_results WHERE script_set_id = $1 AND status IN (3, 4) ORDER BY name",
            &[&set],
            |r| r.get(0),
        )
        .await
    }

    /// End the script set of `phase`: scripts still pending or running are
    /// marked with `leftover_status` (Aborted on failure, Skipped on success).
    pub async fn end_script_set(
        &self,
        system_id: &str,
        phase: Phase,
        leftover_status: i32,
    ) -> Result<()> {
        let id = self.machine_id(system_id).await?;
        let set = self.current_script_set(id, phase).await?;
        let db = self.db.lock().await;
        sql::exec(
            &*db,
            "closing script results",
            "UPDATE script_results SET status = $2 WHERE script_set_id = $1 AND status IN (0, 1)",
            &[&set, &leftover_status],
        )
        .await?;
        sql::exec(
            &*db,
            "closing a script set",
            "UPDATE script_sets SET ended = now() WHERE id = $1",
            &[&set],
        )
        .await?;
        let failed: bool = sql::one(
            &*db,
            "reading script results",
            "SELECT EXISTS (SELECT 1 FROM script_results WHERE script_set_id = $1 AND status IN (3, 4, 5))",
            &[&set],
            |r| r.get(0),
        )
        .await?;
        let status = if failed {
            ScriptStatus::FAILED
        } else {
            ScriptStatus::PASSED
        };
        let column = match phase {
            Phase::Commissioning => "commissioning_status",
            Phase::Testing => "testing_status",
        };
        sql::exec(
            &*db,
            "storing the script set's status",
            &format!("UPDATE machines SET {column} = $2 WHERE id = $1"),
            &[&id, &status],
        )
        .await?;
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
        let tx = sql::begin(&mut db, "opening an interface update").await?;
        for (_, mac, _) in &norm {
            let other = sql::opt(
                &tx,
                "checking a MAC",
                "SELECT 1 FROM interfaces WHERE mac_address = $1 AND machine_id <> $2",
                &[mac, &id],
                |_| (),
            )
            .await?;
            if other.is_some() {
                return Err(invalid(
                    "interfaces",
                    format!("MAC address {mac} already in use on another machine."),
                ));
            }
        }
        let macs: Vec<String> = norm.iter().map(|(_, m, _)| m.clone()).collect();
        sql::exec(
            &tx,
            "removing interfaces",
            "DELETE FROM interfaces WHERE machine_id = $1 AND NOT (mac_address = ANY($2))",
            &[&id, &macs],
        )
        .await?;
        let any_boot = norm.iter().any(|(_, _, b)| *b);
        for (name, mac, boot) in &norm {
            sql::exec(
                &tx,
                "storing an interface",
                "INSERT INTO interfaces (machine_id, name, mac_address, is_boot) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (mac_address) DO UPDATE SET name = $2, is_boot = CASE WHEN $5 THEN $4 ELSE interfaces.is_boot END",
                &[&id, name, mac, boot, &any_boot],
            )
            .await?;
        }
        sql::commit(tx, "committing interfaces").await
    }

    pub async fn apply_hardware(&self, system_id: &str, hw: &ReportedHardware) -> Result<()> {
        let id = self.machine_id(system_id).await?;
        let mut db = self.db.lock().await;
        let tx = sql::begin(&mut db, "opening a hardware update").await?;
        sql::exec(
            &tx,
            "storing hardware",
            "UPDATE machines SET cpu_count = $2, cpu_model = $3, memory_mib = $4, updated = now() WHERE id = $1",
            &[&id, &hw.cpu_count, &hw.cpu_model, &hw.memory_mib],
        )
        .await?;
        sql::exec(
            &tx,
            "clearing disks",
            "DELETE FROM block_devices WHERE machine_id = $1",
            &[&id],
        )
        .await?;
        for (name, size) in &hw.disks {
            sql::exec(
                &tx,
                "storing a disk",
                "INSERT INTO block_devices (machine_id, name, size_bytes) VALUES ($1, $2, $3)",
                &[&id, name, size],
            )
            .await?;
        }
        sql::commit(tx, "committing hardware").await
    }

    /// nodes/{id}/results/?type=commissioning|testing
    pub async fn script_sets(
        &self,
        system_id: &str,
        phase: Phase,
        include_output: bool,
    ) -> Result<Vec<ScriptSet>> {
        let id = self.machine_id(system_id).await?;
        let db = self.db.lock().await;
        let sets = sql::raw(
            &*db,
            "reading script sets",
            &format!(
                "SELECT id, {}, CASE WHEN ended IS NULL THEN NULL ELSE {} END,
                        CASE WHEN last_ping IS NULL THEN NULL ELSE {} END
                 FROM script_sets WHERE machine_id = $1 AND result_type = $2 ORDER BY id",
                maas_time("started"),
                maas_time("ended"),
                maas_time("last_ping")
            ),
            &[&id, &phase.result_type()],
        )
        .await?;
        let mut out = Vec::new();
        for s in sets {
            let set_id: i64 = s.get(0);
            let results: Vec<ScriptResult> = sql::rows(
                &*db,
                "reading script results",
                &format!(
                    "SELECT id, name, status, exit_status, output,
                            CASE WHEN started IS NULL THEN NULL ELSE {} END,
                            CASE WHEN ended IS NULL THEN NULL ELSE {} END
                     FROM script_results WHERE script_set_id = $1 ORDER BY name",
                    maas_time("started"),
                    maas_time("ended")
                ),
                &[&set_id],
                |r| {
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
                        output: include_output.then(|| b64::encode(&output)),
                        stdout: include_output.then(|| b64::encode(&output)),
                        stderr: include_output.then(String::new),
                        result: include_output.then(String::new),
                    }
                },
            )
            .await?;
            let status = aggregate_script_status(&results);
            out.push(ScriptSet {
                id: set_id,
                system_id: system_id.to_string(),
                result_type: phase.result_type(),
                type_name: match phase {
                    Phase::Commissioning => "commissioning",
                    Phase::Testing => "testing",
                }
                .into(),
                status,
                status_name: ScriptStatus::name(status).into(),
                last_ping: s.get(3),
                started: s.get(1),
                ended: s.get(2),
                runtime: String::new(),
                results,
                resource_uri: format!("{}/nodes/{system_id}/results/{set_id}/", super::API),
            });
        }
        Ok(out)
    }
}
