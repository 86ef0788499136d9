//! What a PXE-booting machine gets, decided from the region's state: a pure
//! function the rack calls for every boot request.
//!
//! As MAAS 2.8 (maasserver/rpc/boot.py, Node.get_boot_purpose): an unknown
//! MAC enlists; a machine in Commissioning boots the ephemeral environment to
//! commission; a Deployed machine boots locally; anything else powers off,
//! which 2.8 does by booting the commissioning environment with the node's
//! preseed (get_final_boot_purpose: "poweroff" -> "commissioning"), whose
//! user data only powers it off.

use serde::Serialize;

use super::store::MachineBootState;
use crate::maas::types::NodeStatus;

/// The firmware that asked (from DHCP option 93, client architecture).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Firmware {
    Bios,
    Uefi,
}

/// Why the machine boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BootPurpose {
    /// Unknown MAC: boot the ephemeral environment in enlist mode.
    Enlist,
    /// Status Commissioning: boot the ephemeral environment to commission.
    Commission,
    /// Deployed: boot from the local disk (pxelinux `LOCALBOOT 0`, iPXE `exit`).
    Local,
    /// Anything else (New, Ready, Failed ...): boot the ephemeral
    /// environment with the node's preseed, which says `poweroff`.
    Poweroff,
}

/// Where the rack and the region are reachable from the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootContext {
    /// The region as the guest reaches it: http://ADDR:PORT/MAAS
    pub maas_url: String,
    /// Base URL of the boot resources the rack serves over HTTP
    /// (kernel and initrd are `{boot_http}/ephemeral/{kernel,initrd}`).
    pub boot_http: String,
}

/// The boot the rack hands out. URLs and cmdline are None for Local.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootConfig {
    pub purpose: BootPurpose,
    pub firmware: Firmware,
    pub system_id: Option<String>,
    pub kernel_url: Option<String>,
    pub initrd_url: Option<String>,
    pub cmdline: Option<String>,
}

/// The enlistment preseed URL (served by the metadata service).
pub fn enlist_preseed_url(maas_url: &str) -> String {
    format!(
        "{}/metadata/latest/enlist-preseed/?op=get_enlist_preseed",
        maas_url.trim_end_matches('/')
    )
}

/// The commissioning preseed URL of one machine.
pub fn commission_preseed_url(maas_url: &str, system_id: &str) -> String {
    format!(
        "{}/metadata/latest/by-id/{system_id}/?op=get_preseed",
        maas_url.trim_end_matches('/')
    )
}

/// PXELINUX's BOOTIF form of a MAC: `01-aa-bb-cc-dd-ee-ff` (01 = Ethernet).
pub fn bootif(mac: &str) -> String {
    format!("01-{}", mac.to_ascii_lowercase().replace(':', "-"))
}

/// Decide the boot of the machine with `mac`, `machine` being what the
/// region knows about that MAC (None: unknown).
pub fn boot_config(
    ctx: &BootContext,
    machine: Option<&MachineBootState>,
    mac: &str,
    firmware: Firmware,
) -> BootConfig {
    let (purpose, system_id) = match machine {
        None => (BootPurpose::Enlist, None),
        Some(m) if m.status == NodeStatus::COMMISSIONING || m.status == NodeStatus::TESTING => {
            (BootPurpose::Commission, Some(m.system_id.clone()))
        }
        Some(m) if m.status == NodeStatus::DEPLOYED => {
            (BootPurpose::Local, Some(m.system_id.clone()))
        }
        Some(m) => (BootPurpose::Poweroff, Some(m.system_id.clone())),
    };
    let preseed = match (purpose, &system_id) {
        (BootPurpose::Enlist, _) => Some(enlist_preseed_url(&ctx.maas_url)),
        (BootPurpose::Commission | BootPurpose::Poweroff, Some(id)) => {
            Some(commission_preseed_url(&ctx.maas_url, id))
        }
        _ => None,
    };
    let boot_http = ctx.boot_http.trim_end_matches('/');
    match preseed {
        Some(url) => BootConfig {
            purpose,
            firmware,
            system_id,
            kernel_url: Some(format!("{boot_http}/ephemeral/kernel")),
            initrd_url: Some(format!("{boot_http}/ephemeral/initrd")),
            // no_timer_check: a TCG guest starved of CPU (several guests
            // on two cores) can fail the kernel's IO-APIC timer check and
            // panic at boot; the check proves nothing about a virtual timer.
            cmdline: Some(format!(
                "console=ttyS0 no_timer_check BOOTIF={} cloud-config-url={url}",
                bootif(mac)
            )),
        },
        None => BootConfig {
            purpose,
            firmware,
            system_id,
            kernel_url: None,
            initrd_url: None,
            cmdline: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> BootContext {
        BootContext {
            maas_url: "http://10.9.0.1:5240/MAAS".into(),
            boot_http: "http://10.9.0.1:5248/boot".into(),
        }
    }

    fn state(status: NodeStatus) -> MachineBootState {
        MachineBootState {
            system_id: "abc123".into(),
            hostname: "node1".into(),
            status,
        }
    }

    #[test]
    fn decisions_by_status() {
        let mac = "52:54:00:AA:BB:01";
        let cases: Vec<(&str, BootConfig)> = vec![
            (
                "unknown_bios",
                boot_config(&ctx(), None, mac, Firmware::Bios),
            ),
            (
                "unknown_uefi",
                boot_config(&ctx(), None, mac, Firmware::Uefi),
            ),
            (
                "commissioning",
                boot_config(
                    &ctx(),
                    Some(&state(NodeStatus::COMMISSIONING)),
                    mac,
                    Firmware::Bios,
                ),
            ),
            (
                "new",
                boot_config(&ctx(), Some(&state(NodeStatus::NEW)), mac, Firmware::Bios),
            ),
            (
                "ready",
                boot_config(&ctx(), Some(&state(NodeStatus::READY)), mac, Firmware::Uefi),
            ),
            (
                "deployed",
                boot_config(
                    &ctx(),
                    Some(&state(NodeStatus::DEPLOYED)),
                    mac,
                    Firmware::Bios,
                ),
            ),
        ];
        insta::assert_yaml_snapshot!(cases);
    }
}
