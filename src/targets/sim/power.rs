//! The sim rack's IPMI power driver, run exactly as MAAS 2.8 runs FreeIPMI
//! (provisioningserver/drivers/power/ipmi.py with the chart's ipmi_error
//! patch), inside the lab network namespace.
//!
//! Pure parts (argv, chassis config text, error classification) are
//! separate from execution so they can be snapshot-tested.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use crate::cmd::{Cmd, CmdError};
use crate::maas::types::PowerState;

pub use super::profile::IpmiArgv;
use super::profile::maas36;

/// The ipmi power parameters MAAS stores for a machine.
#[derive(Clone, PartialEq, Eq)]
pub struct IpmiParams {
    pub power_address: String,
    pub power_user: String,
    pub power_pass: String,
    /// LAN_2_0 or LAN (IPMI 1.5); empty: not set, and `--driver-type` is
    /// left out as MAAS leaves it out (FreeIPMI's default then applies).
    pub power_driver: String,
    /// auto, legacy or efi.
    pub power_boot_type: String,
    /// hard or soft.
    pub power_off_mode: String,
    /// 3.x settings (drivers/power/ipmi.py at 3.6.4); the 2.8 argv ignores
    /// them as 2.8 does. Empty: not set.
    pub k_g: String,
    pub cipher_suite_id: String,
    /// USER, OPERATOR or ADMIN; empty: OPERATOR (3.6's LP:1889788 default).
    pub privilege_level: String,
    /// None: not among the parameters, the driver's default (opensesspriv)
    /// applies; Some(empty): no `-W` at all.
    pub workaround_flags: Option<Vec<String>>,
}

impl std::fmt::Debug for IpmiParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpmiParams")
            .field("power_address", &self.power_address)
            .field("power_user", &self.power_user)
            .field("power_pass", &"<redacted>")
            .field("power_driver", &self.power_driver)
            .field("power_boot_type", &self.power_boot_type)
            .field("power_off_mode", &self.power_off_mode)
            .field(
                "k_g",
                &if self.k_g.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("cipher_suite_id", &self.cipher_suite_id)
            .field("privilege_level", &self.privilege_level)
            .field("workaround_flags", &self.workaround_flags)
            .finish()
    }
}

impl IpmiParams {
    /// From a machine's power_parameters JSON; power_address is required.
    pub fn from_json(v: &Value) -> Result<IpmiParams, PowerError> {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let p = IpmiParams {
            power_address: s("power_address"),
            power_user: s("power_user"),
            power_pass: v
                .get("power_pass")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            power_driver: s("power_driver"),
            power_boot_type: match s("power_boot_type").as_str() {
                "" => "auto".into(),
                b => b.into(),
            },
            power_off_mode: match s("power_off_mode").as_str() {
                "" => "hard".into(),
                m => m.into(),
            },
            k_g: v
                .get("k_g")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            cipher_suite_id: s("cipher_suite_id"),
            privilege_level: s("privilege_level"),
            workaround_flags: workaround_flags(v.get("workaround_flags"))?,
        };
        if p.power_address.is_empty() {
            return Err(PowerError::Settings(
                "power_address is not set; the BMC's address is needed".into(),
            ));
        }
        if !matches!(p.power_driver.as_str(), "" | "LAN_2_0" | "LAN") {
            return Err(PowerError::Settings(format!(
                "power_driver {:?} is not LAN_2_0 or LAN",
                p.power_driver
            )));
        }
        if !matches!(p.power_boot_type.as_str(), "auto" | "legacy" | "efi") {
            return Err(PowerError::Settings(format!(
                "power_boot_type {:?} is not auto, legacy or efi",
                p.power_boot_type
            )));
        }
        if !matches!(p.cipher_suite_id.as_str(), "" | "3" | "8" | "12" | "17") {
            return Err(PowerError::Settings(format!(
                "cipher_suite_id {:?} is not one of 3, 8, 12, 17 or empty",
                p.cipher_suite_id
            )));
        }
        if !matches!(
            p.privilege_level.as_str(),
            "" | "USER" | "OPERATOR" | "ADMIN"
        ) {
            return Err(PowerError::Settings(format!(
                "privilege_level {:?} is not USER, OPERATOR or ADMIN",
                p.privilege_level
            )));
        }
        Ok(p)
    }
}

/// workaround_flags as MAAS stores a multiple choice: a list of names (a
/// single name or a comma-separated string is read as the list it means).
fn workaround_flags(v: Option<&Value>) -> Result<Option<Vec<String>>, PowerError> {
    let names: Vec<String> = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(String::from)
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|f| {
                f.as_str().map(str::to_string).ok_or_else(|| {
                    PowerError::Settings(format!("workaround_flags entry {f} is not a string"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|f| !f.is_empty())
            .collect(),
        Some(other) => {
            return Err(PowerError::Settings(format!(
                "workaround_flags {other} is not a list of flag names"
            )));
        }
    };
    Ok(Some(names))
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerAction {
    On,
    Off,
    Query,
}

/// A power command that failed, classified as MAAS classifies it
/// (provisioningserver/drivers/power/__init__.py: PowerAuthError and
/// PowerSettingError are PowerFatalErrors, never retried; PowerConnError and
/// a plain PowerError are retried).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PowerError {
    /// PowerSettingError: fatal.
    #[error("{0}")]
    Settings(String),
    /// PowerAuthError: fatal.
    #[error("{0}")]
    Auth(String),
    /// PowerConnError: retried (connection/session timeout, BMC busy, BMC error).
    #[error("{0}")]
    Conn(String),
    /// PowerFatalError: not retried.
    #[error("{0}")]
    Fatal(String),
    /// A plain PowerError (non-zero exit without a known message): retried.
    #[error("{0}")]
    Failed(String),
    #[error("Failed to power {system_id}. BMC never transitioned from {from} to {to}.")]
    NeverTransitioned {
        system_id: String,
        from: String,
        to: String,
    },
}

impl PowerError {
    /// Whether MAAS gives up at once (a PowerFatalError or subclass).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            PowerError::Settings(_) | PowerError::Auth(_) | PowerError::Fatal(_)
        )
    }

    /// MAAS's get_error_message: the text a power change failure carries
    /// ("Power on for the node failed: <this>").
    pub fn maas_message(&self) -> String {
        match self {
            PowerError::Auth(m) => format!("Could not authenticate to node's BMC: {m}"),
            PowerError::Conn(m) => format!("Could not contact node's BMC: {m}"),
            PowerError::Settings(m) => format!("Missing or invalid power setting: {m}"),
            other => format!("Failed talking to node's BMC: {other}"),
        }
    }
}

/// The ipmipower errors MAAS 2.8.7 recognises in output (ipmi.py
/// IPMI_ERRORS, in its order: the first match wins), with the ipmi_error
/// patch's "BMC error" after "BMC busy".
/// (text in the output, error kind, MAAS's message)
type IpmiErrorEntry = (&'static str, fn(String) -> PowerError, &'static str);

const IPMI_ERRORS: &[IpmiErrorEntry] = &[
    (
        "username invalid",
        PowerError::Auth,
        "Incorrect username.  Check BMC configuration and try again.",
    ),
    (
        "password invalid",
        PowerError::Auth,
        "Incorrect password.  Check BMC configuration and try again.",
    ),
    (
        "password verification timeout",
        PowerError::Auth,
        "Authentication timeout.  Check BMC configuration and try again.",
    ),
    (
        "k_g invalid",
        PowerError::Auth,
        "Incorrect K_g key.  Check BMC configuration and try again.",
    ),
    (
        "privilege level insufficient",
        PowerError::Auth,
        "Access denied while performing power action.  Check BMC configuration and try again.",
    ),
    (
        "privilege level cannot be obtained for this user",
        PowerError::Auth,
        "Access denied while performing power action.  Check BMC configuration and try again.",
    ),
    (
        "authentication type unavailable for attempted privilege level",
        PowerError::Settings,
        "Access denied while performing power action.  Check BMC configuration and try again.",
    ),
    (
        "cipher suite id unavailable",
        PowerError::Settings,
        "Access denied while performing power action: cipher suite unavailable.  Check BMC configuration and try again.",
    ),
    (
        "ipmi 2.0 unavailable",
        PowerError::Settings,
        "IPMI 2.0 was not discovered on the BMC.  Please try to use IPMI 1.5 instead.",
    ),
    (
        "connection timeout",
        PowerError::Conn,
        "Connection timed out while performing power action.  Check BMC configuration and connectivity and try again.",
    ),
    (
        "session timeout",
        PowerError::Conn,
        "The IPMI session has timed out. MAAS performed several retries.  Check BMC configuration and connectivity and try again.",
    ),
    (
        "internal IPMI error",
        PowerError::Fatal,
        "An IPMI error has occurred that FreeIPMI does not know how to handle.  Please try the power action manually, and file a bug if appropriate.",
    ),
    (
        "device not found",
        PowerError::Settings,
        "Error locating IPMI device.  Check BMC configuration and try again.",
    ),
    (
        "driver timeout",
        PowerError::Conn,
        "Device communication timeout while performing power action.  MAAS performed several retries.  Check BMC configuration and connectivity and try again.",
    ),
    (
        "message timeout",
        PowerError::Conn,
        "Device communication timeout while performing power action.  MAAS performed several retries.  Check BMC configuration and connectivity and try again.",
    ),
    (
        "BMC busy",
        PowerError::Conn,
        "Device busy while performing power action.  MAAS performed several retries.  Please wait and try again.",
    ),
    (
        "BMC error",
        PowerError::Conn,
        "Device not responding correctly while performing power action.  MAAS performed several retries.  Please wait and try again.",
    ),
    (
        "could not find inband device",
        PowerError::Settings,
        "An inband device could not be found.  Check BMC configuration and try again.",
    ),
];

/// Classify ipmipower output: a recognised error, else Ok.
pub fn classify_output(output: &str) -> Result<(), PowerError> {
    for (needle, make, message) in IPMI_ERRORS {
        if output.contains(needle) {
            return Err(make(message.to_string()));
        }
    }
    Ok(())
}

/// The state in `--stat` output (`10.0.0.5: on`).
pub fn parse_state(output: &str) -> PowerState {
    for line in output.lines() {
        if let Some((_, rest)) = line.rsplit_once(':') {
            match rest.trim() {
                "on" => return PowerState::On,
                "off" => return PowerState::Off,
                _ => {}
            }
        }
    }
    PowerState::Unknown
}

/// Arguments ipmipower and ipmi-chassis-config share, in the order the
/// profile's MAAS puts them.
fn common_args(cmd: Cmd, p: &IpmiParams, argv: IpmiArgv) -> Cmd {
    match argv {
        IpmiArgv::Maas28 => connection_args(cmd.args(["-W", "opensesspriv", "-l", "OPERATOR"]), p),
        IpmiArgv::Maas36 => {
            let flags: Vec<String> = match &p.workaround_flags {
                Some(f) => f.clone(),
                None => maas36::WORKAROUND_FLAGS
                    .iter()
                    .map(|f| f.to_string())
                    .collect(),
            };
            let cmd = if flags.is_empty() {
                cmd
            } else {
                cmd.args(["-W".to_string(), flags.join(",")])
            };
            let cmd = connection_args(cmd, p);
            let cmd = if p.k_g.is_empty() {
                cmd
            } else {
                cmd.arg("-k").secret_arg(p.k_g.clone())
            };
            let cmd = if p.cipher_suite_id.is_empty() {
                cmd
            } else {
                cmd.args(["-I", p.cipher_suite_id.as_str()])
            };
            let level = if p.privilege_level.is_empty() {
                maas36::UNSET_PRIVILEGE_LEVEL
            } else {
                p.privilege_level.as_str()
            };
            cmd.args(["-l", level])
        }
    }
}

/// Driver type, host, user and password (both versions, this order).
fn connection_args(cmd: Cmd, p: &IpmiParams) -> Cmd {
    let cmd = if p.power_driver.is_empty() {
        cmd
    } else {
        cmd.args(["--driver-type", p.power_driver.as_str()])
    };
    let cmd = cmd.args(["-h", p.power_address.as_str()]);
    let cmd = if p.power_user.is_empty() {
        cmd
    } else {
        cmd.args(["-u", p.power_user.as_str()])
    };
    cmd.arg("-p").secret_arg(p.power_pass.clone())
}

/// The ipmipower command for `action` (power on is `--cycle --on-if-off`).
pub fn power_command(p: &IpmiParams, action: PowerAction, argv: IpmiArgv) -> Cmd {
    let cmd = common_args(Cmd::new("ipmipower"), p, argv);
    match action {
        PowerAction::On => cmd.args(["--cycle", "--on-if-off"]),
        PowerAction::Off if p.power_off_mode == "soft" => cmd.arg("--soft"),
        PowerAction::Off => cmd.arg("--off"),
        PowerAction::Query => cmd.arg("--stat"),
    }
}

/// The chassis config committed before power on: boot from PXE, once.
pub fn chassis_config_text(power_boot_type: &str) -> String {
    let boot_type = match power_boot_type {
        "efi" => Some("EFI"),
        "legacy" => Some("PC-COMPATIBLE"),
        _ => None,
    };
    let mut s = String::from(
        "Section Chassis_Boot_Flags\n        Boot_Flags_Persistent                         No\n",
    );
    if let Some(t) = boot_type {
        s.push_str(&format!(
            "        BIOS_Boot_Type                                {t}\n"
        ));
    }
    s.push_str("        Boot_Device                                   PXE\nEndSection\n");
    s
}

/// `ipmi-chassis-config ... --commit --filename FILE`.
pub fn chassis_config_command(p: &IpmiParams, file: &Path, argv: IpmiArgv) -> Cmd {
    common_args(Cmd::new("ipmi-chassis-config"), p, argv)
        .args(["--commit", "--filename"])
        .arg(file.display().to_string())
}

/// How the driver runs.
#[derive(Debug, Clone)]
pub struct PowerDriverConfig {
    /// Run FreeIPMI inside this network namespace (the lab's).
    pub netns: Option<String>,
    /// Waits between attempts, in units (the ipmi_error patch: 4,4,8,8,16,16,32,32).
    pub wait_time: Vec<u32>,
    /// One unit of wait: 1 s as MAAS; tests scale it down.
    pub wait_unit: Duration,
    /// Kill one FreeIPMI run after this long.
    pub command_timeout: Duration,
    /// A whole power change (retries and queries included) is given up
    /// after this long, "Timed out" (2.8: rpc/power.py
    /// CHANGE_POWER_STATE_TIMEOUT, 5 minutes).
    pub change_timeout: Duration,
    /// A directory searched first for ipmipower and ipmi-chassis-config
    /// (a lab may pin a FreeIPMI build).
    pub path_prepend: Option<PathBuf>,
    /// Whose argv: MAAS 2.8's or 3.6's (the sim profile).
    pub argv: IpmiArgv,
}

impl Default for PowerDriverConfig {
    fn default() -> Self {
        PowerDriverConfig {
            netns: None,
            wait_time: vec![4, 4, 8, 8, 16, 16, 32, 32],
            wait_unit: Duration::from_secs(1),
            command_timeout: Duration::from_secs(60),
            change_timeout: Duration::from_secs(5 * 60),
            path_prepend: None,
            argv: IpmiArgv::default(),
        }
    }
}

/// Runs FreeIPMI for the sim rack.
#[derive(Debug, Clone, Default)]
pub struct IpmiPowerDriver {
    pub config: PowerDriverConfig,
}

impl IpmiPowerDriver {
    pub fn new(config: PowerDriverConfig) -> Self {
        IpmiPowerDriver { config }
    }

    fn place(&self, cmd: Cmd) -> Cmd {
        let mut cmd = cmd.timeout(self.config.command_timeout);
        if let Some(dir) = &self.config.path_prepend {
            let path =
                std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
            cmd = cmd.env("PATH", format!("{}:{path}", dir.display()));
        }
        match &self.config.netns {
            Some(ns) => cmd.in_netns(ns.clone()),
            None => cmd,
        }
    }

    /// One attempt of `action`, as MAAS's _issue_ipmi_command.
    pub async fn issue(
        &self,
        p: &IpmiParams,
        action: PowerAction,
    ) -> Result<PowerState, PowerError> {
        if action == PowerAction::On {
            self.set_pxe_boot(p).await?;
        }
        let cmd = self.place(power_command(p, action, self.config.argv));
        let out = cmd.output().await.map_err(cmd_error)?;
        // ipmipower prints its errors on stdout, the only stream MAAS reads.
        classify_output(&out.stdout)?;
        if !out.status.success() {
            let verb = match action {
                PowerAction::On => "on",
                PowerAction::Off => "off",
                PowerAction::Query => "query",
            };
            return Err(PowerError::Failed(format!(
                "Failed to power {verb} {}: {}",
                p.power_address,
                out.stdout.trim()
            )));
        }
        Ok(match action {
            PowerAction::Query => parse_state(&out.stdout),
            PowerAction::On => PowerState::On,
            PowerAction::Off => PowerState::Off,
        })
    }

    /// ipmi-chassis-config with a temporary file: auth errors fail, anything
    /// else is only logged (MAAS bug 1516065: some BMCs time out here).
    async fn set_pxe_boot(&self, p: &IpmiParams) -> Result<(), PowerError> {
        let file = temp_config_path();
        std::fs::write(&file, chassis_config_text(&p.power_boot_type))
            .map_err(|e| PowerError::Fatal(format!("writing {}: {e}", file.display())))?;
        let result = self
            .place(chassis_config_command(p, &file, self.config.argv))
            .output()
            .await;
        let _ = std::fs::remove_file(&file);
        let out = result.map_err(cmd_error)?;
        if let Err(e @ PowerError::Auth(_)) = classify_output(&out.stderr) {
            return Err(e);
        }
        if !out.status.success() {
            tracing::warn!(bmc = %p.power_address, stderr = %out.stderr.trim(), "Failed to change the boot order to PXE");
        }
        Ok(())
    }

    /// MAAS's PowerDriver.query: one attempt per wait; a failure that is
    /// not fatal waits and tries again; the last error is raised.
    pub async fn query(&self, p: &IpmiParams) -> Result<PowerState, PowerError> {
        self.query_reporting(p, |_, _, _| {}).await
    }

    /// `query`, with `on_retry` seeing every failed attempt (attempt number,
    /// error, the wait before the next try).
    pub async fn query_reporting(
        &self,
        p: &IpmiParams,
        on_retry: impl FnMut(usize, &PowerError, Duration),
    ) -> Result<PowerState, PowerError> {
        query_with_retries(&self.config, &IpmiAttempt { driver: self, p }, on_retry).await
    }

    /// MAAS's perform_power around one IPMI change (`perform_with_retries`).
    pub async fn perform(
        &self,
        system_id: &str,
        p: &IpmiParams,
        action: PowerAction,
        on_retry: impl FnMut(usize, &PowerError, Duration),
    ) -> Result<(), PowerError> {
        let attempt = IpmiAttempt { driver: self, p };
        perform_with_retries(&self.config, system_id, &attempt, action, on_retry).await
    }
}

/// One try of a driver's change or query, without retries: what differs
/// between MAAS's power drivers. The retries around it are the base
/// PowerDriver's, the same for every driver.
pub trait PowerAttempt {
    /// A query answers the state; a change answers `Unknown`.
    fn attempt(
        &self,
        action: PowerAction,
    ) -> impl std::future::Future<Output = Result<PowerState, PowerError>> + Send;
}

struct IpmiAttempt<'a> {
    driver: &'a IpmiPowerDriver,
    p: &'a IpmiParams,
}

impl PowerAttempt for IpmiAttempt<'_> {
    async fn attempt(&self, action: PowerAction) -> Result<PowerState, PowerError> {
        self.driver.issue(self.p, action).await
    }
}

/// MAAS's PowerDriver.query: one attempt per wait; a failure that is not
/// fatal waits and tries again; the last error is raised. `on_retry` sees
/// every failed attempt (attempt number, error, the wait before the next).
pub async fn query_with_retries(
    config: &PowerDriverConfig,
    driver: &impl PowerAttempt,
    mut on_retry: impl FnMut(usize, &PowerError, Duration),
) -> Result<PowerState, PowerError> {
    let mut last_error = None;
    for (i, units) in config.wait_time.iter().enumerate() {
        match driver.attempt(PowerAction::Query).await {
            Ok(state) => return Ok(state),
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                let wait = config.wait_unit * *units;
                on_retry(i + 1, &e, wait);
                last_error = Some(e);
                tokio::time::sleep(wait).await;
            }
        }
    }
    Err(last_error
        .unwrap_or_else(|| PowerError::Failed("no attempt made (wait_time is empty)".into())))
}

/// MAAS's perform_power: for each wait, try the change (a failure that is
/// not fatal waits and retries); after a success wait, then one query
/// attempt; done when the BMC reports the wanted state.
pub async fn perform_with_retries(
    config: &PowerDriverConfig,
    system_id: &str,
    driver: &impl PowerAttempt,
    action: PowerAction,
    mut on_retry: impl FnMut(usize, &PowerError, Duration),
) -> Result<(), PowerError> {
    let desired = match action {
        PowerAction::On => PowerState::On,
        PowerAction::Off => PowerState::Off,
        PowerAction::Query => {
            return query_with_retries(config, driver, on_retry)
                .await
                .map(|_| ());
        }
    };
    let mut last_error: Option<PowerError> = None;
    let mut last_state = PowerState::Unknown;
    for (i, units) in config.wait_time.iter().enumerate() {
        let wait = config.wait_unit * *units;
        match driver.attempt(action).await {
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                on_retry(i + 1, &e, wait);
                last_error = Some(e);
                tokio::time::sleep(wait).await;
                continue;
            }
            Ok(_) => {}
        }
        tokio::time::sleep(wait).await;
        match driver.attempt(PowerAction::Query).await {
            Ok(state) if state == desired => return Ok(()),
            Ok(state) => last_state = state,
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => last_error = Some(e),
        }
    }
    Err(match last_error {
        Some(e) => e,
        None => PowerError::NeverTransitioned {
            system_id: system_id.into(),
            from: last_state.as_str().into(),
            to: desired.as_str().into(),
        },
    })
}

fn cmd_error(e: CmdError) -> PowerError {
    match e {
        CmdError::Timeout { .. } => PowerError::Conn(format!(
            "Connection timed out while performing power action: {e}"
        )),
        other => PowerError::Failed(other.to_string()),
    }
}

fn temp_config_path() -> PathBuf {
    std::env::temp_dir().join(format!(
        "maas-e2e-chassis-{}.cfg",
        uuid::Uuid::new_v4().simple()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(boot: &str, off: &str) -> IpmiParams {
        IpmiParams::from_json(&json!({
            "power_address": "10.9.0.11", "power_user": "maas", "power_pass": "s3cr3tpw",
            "power_driver": "LAN_2_0", "power_boot_type": boot, "power_off_mode": off
        }))
        .unwrap()
    }

    #[test]
    fn argv_per_action_redacts_the_password() {
        let p = params("auto", "hard");
        let shown: Vec<(String, String)> = [PowerAction::On, PowerAction::Off, PowerAction::Query]
            .iter()
            .map(|a| {
                (
                    format!("{a:?}"),
                    power_command(&p, *a, IpmiArgv::Maas28)
                        .in_netns("lab0")
                        .display(),
                )
            })
            .chain([
                (
                    "Soft".to_string(),
                    power_command(&params("auto", "soft"), PowerAction::Off, IpmiArgv::Maas28)
                        .display(),
                ),
                (
                    "Chassis".to_string(),
                    chassis_config_command(&p, Path::new("/tmp/F"), IpmiArgv::Maas28).display(),
                ),
            ])
            .collect();
        for (_, s) in &shown {
            assert!(!s.contains("s3cr3tpw"), "{s}");
        }
        insta::assert_yaml_snapshot!(shown);
        // The real argv carries the password.
        assert!(
            power_command(&p, PowerAction::Query, IpmiArgv::Maas28)
                .argv()
                .contains(&"s3cr3tpw".to_string())
        );
    }

    /// What MAAS 3.6.4's bmc_config.py reports for our BMC (with k_g set
    /// here to show it is passed and hidden).
    fn params36(extra: serde_json::Value) -> IpmiParams {
        let mut v = json!({
            "power_address": "10.9.0.11", "power_user": "maas", "power_pass": "s3cr3tpw",
            "power_driver": "LAN_2_0", "power_boot_type": "auto", "k_g": "",
            "cipher_suite_id": "3", "privilege_level": "ADMIN", "mac_address": "52:54:00:aa:bb:cc"
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        IpmiParams::from_json(&v).unwrap()
    }

    #[test]
    fn argv_of_maas_3_6_per_parameter() {
        let a = IpmiArgv::Maas36;
        let shown: Vec<(String, String)> = [
            ("reported", json!({})),
            ("k_g set", json!({"k_g": "kgsecretkgsecretkgse"})),
            ("no workarounds", json!({"workaround_flags": []})),
            (
                "two workarounds",
                json!({"workaround_flags": ["opensesspriv", "authcap"]}),
            ),
            (
                "unset level and suite",
                json!({"privilege_level": "", "cipher_suite_id": ""}),
            ),
        ]
        .into_iter()
        .map(|(name, extra)| {
            let p = params36(extra);
            (
                name.to_string(),
                power_command(&p, PowerAction::Query, a).display(),
            )
        })
        .chain([(
            "chassis".to_string(),
            chassis_config_command(&params36(json!({})), Path::new("/tmp/F"), a).display(),
        )])
        .collect();
        for (_, s) in &shown {
            assert!(!s.contains("s3cr3tpw") && !s.contains("kgsecret"), "{s}");
        }
        insta::assert_yaml_snapshot!(shown);
        let argv = power_command(
            &params36(json!({"k_g": "kgsecretkgsecretkgse"})),
            PowerAction::On,
            a,
        )
        .argv();
        assert!(argv.contains(&"kgsecretkgsecretkgse".to_string()));
        // 2.8's argv ignores the 3.x settings, as 2.8 does.
        let old = power_command(&params36(json!({})), PowerAction::Query, IpmiArgv::Maas28).argv();
        assert!(!old.contains(&"-I".to_string()) && old.contains(&"OPERATOR".to_string()));
    }

    #[test]
    fn maas_3_6_settings_outside_its_choices_are_setting_errors() {
        for bad in [
            json!({"cipher_suite_id": "0"}),
            json!({"privilege_level": "root"}),
            json!({"workaround_flags": 7}),
        ] {
            let mut v = json!({"power_address": "1.2.3.4"});
            for (k, x) in bad.as_object().unwrap() {
                v[k] = x.clone();
            }
            let e = IpmiParams::from_json(&v).unwrap_err();
            assert!(matches!(e, PowerError::Settings(_)), "{bad}: {e:?}");
        }
        let p = IpmiParams::from_json(
            &json!({"power_address": "1.2.3.4", "workaround_flags": "opensesspriv,idzero"}),
        )
        .unwrap();
        assert_eq!(
            p.workaround_flags,
            Some(vec!["opensesspriv".to_string(), "idzero".to_string()])
        );
    }

    #[test]
    fn chassis_config_per_boot_type() {
        let texts: Vec<(String, String)> = ["auto", "legacy", "efi"]
            .iter()
            .map(|b| (b.to_string(), chassis_config_text(b)))
            .collect();
        insta::assert_yaml_snapshot!(texts);
    }

    #[test]
    fn output_classification() {
        assert!(matches!(
            classify_output("10.9.0.11: BMC error"),
            Err(PowerError::Conn(_))
        ));
        assert!(matches!(
            classify_output("10.9.0.11: password invalid"),
            Err(PowerError::Auth(_))
        ));
        assert!(matches!(
            classify_output("10.9.0.11: internal IPMI error"),
            Err(PowerError::Fatal(_))
        ));
        // 2.8.7's table, with the kinds MAAS gives them.
        for (out, kind) in [
            ("password verification timeout", "auth"),
            (
                "authentication type unavailable for attempted privilege level",
                "settings",
            ),
            ("device not found", "settings"),
            ("could not find inband device", "settings"),
            ("driver timeout", "conn"),
            ("message timeout", "conn"),
            ("BMC busy", "conn"),
        ] {
            let got = match classify_output(&format!("10.9.0.11: {out}")) {
                Err(PowerError::Auth(_)) => "auth",
                Err(PowerError::Settings(_)) => "settings",
                Err(PowerError::Conn(_)) => "conn",
                other => panic!("{out}: {other:?}"),
            };
            assert_eq!(got, kind, "{out}");
        }
        assert_eq!(
            classify_output("10.9.0.11: BMC error")
                .unwrap_err()
                .maas_message(),
            "Could not contact node's BMC: Device not responding correctly while performing power action.  MAAS performed several retries.  Please wait and try again."
        );
        assert_eq!(classify_output("10.9.0.11: on"), Ok(()));
        assert_eq!(parse_state("10.9.0.11: off\n"), PowerState::Off);
        assert_eq!(parse_state("10.9.0.11: on"), PowerState::On);
        assert_eq!(parse_state("garbage"), PowerState::Unknown);
    }

    #[test]
    fn params_need_an_address_and_debug_hides_the_password() {
        assert!(IpmiParams::from_json(&json!({"power_user": "maas"})).is_err());
        let p = params("efi", "hard");
        assert!(!format!("{p:?}").contains("s3cr3tpw"));
        // power_driver unset: MAAS leaves --driver-type out.
        let unset = IpmiParams::from_json(&json!({"power_address": "1.2.3.4"})).unwrap();
        assert_eq!(unset.power_driver, "");
        assert!(
            !power_command(&unset, PowerAction::Query, IpmiArgv::Maas28)
                .argv()
                .contains(&"--driver-type".to_string())
        );
    }
}
