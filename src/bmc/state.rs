//! The state one BMC shares between its LAN and in-band endpoints: users,
//! channel access, LAN configuration parameters, system boot options, the
//! device identity and GUIDs. Power state lives in the power backend.
//!
//! What the guest writes in-band (MAAS's autodetect creating user `maas`)
//! is what a LAN session then authenticates against.

use std::net::Ipv4Addr;

/// Channel numbers (IPMI 2.0 §6.3): the LAN channel and the system interface.
pub const LAN_CHANNEL: u8 = 1;
pub const SYSTEM_CHANNEL: u8 = 0x0F;
/// Number of user IDs (1..=MAX_USERS); user 1 is the null user.
pub const MAX_USERS: u8 = 16;

/// Privilege levels (IPMI 2.0 §6.8, table 6-4).
pub mod privilege {
    pub const CALLBACK: u8 = 1;
    pub const USER: u8 = 2;
    pub const OPERATOR: u8 = 3;
    pub const ADMIN: u8 = 4;
    pub const OEM: u8 = 5;
    pub const NO_ACCESS: u8 = 0x0F;

    pub fn name(level: u8) -> &'static str {
        match level {
            CALLBACK => "CALLBACK",
            USER => "USER",
            OPERATOR => "OPERATOR",
            ADMIN => "ADMINISTRATOR",
            OEM => "OEM",
            NO_ACCESS => "NO ACCESS",
            _ => "INVALID",
        }
    }
}

/// A user's access on one channel (Set/Get User Access, IPMI 2.0 §22.26-27).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserChannelAccess {
    pub privilege: u8,
    pub ipmi_messaging: bool,
    pub link_auth: bool,
    pub callback_only: bool,
}

impl UserChannelAccess {
    pub const NONE: Self = UserChannelAccess {
        privilege: privilege::NO_ACCESS,
        ipmi_messaging: false,
        link_auth: false,
        callback_only: false,
    };
}

/// One user slot.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// 16 bytes, NUL padded; empty for the null user.
    pub name: [u8; 16],
    /// Password zero padded to 20 bytes.
    pub password: [u8; 20],
    pub enabled: bool,
    /// Access on the LAN channel (the system interface has no user limits).
    pub lan: UserChannelAccess,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name_str())
            .field("enabled", &self.enabled)
            .field("lan", &self.lan)
            .finish_non_exhaustive()
    }
}

impl User {
    pub fn empty() -> Self {
        User {
            name: [0; 16],
            password: [0; 20],
            enabled: false,
            lan: UserChannelAccess::NONE,
        }
    }

    pub fn name_str(&self) -> String {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(16);
        String::from_utf8_lossy(&self.name[..end]).into_owned()
    }

    /// The name exactly as RAKP1 / Get Session Challenge carry it.
    pub fn name_matches(&self, wanted: &[u8]) -> bool {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(16);
        let w_end = wanted.iter().position(|&b| b == 0).unwrap_or(wanted.len());
        self.name[..end] == wanted[..w_end]
    }

    /// Key for RAKP HMACs: the password; trailing zero padding does not
    /// change an HMAC, so the padded form is used.
    pub fn key(&self) -> &[u8] {
        &self.password
    }

    pub fn password16(&self) -> [u8; 16] {
        self.password[..16].try_into().expect("16 bytes")
    }
}

/// Channel access settings (Set/Get Channel Access, IPMI 2.0 §22.22-23).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelAccess {
    /// 0 disabled, 1 pre-boot only, 2 always available, 3 shared.
    pub access_mode: u8,
    pub user_level_auth_disabled: bool,
    pub per_message_auth_disabled: bool,
    pub pef_alerting_disabled: bool,
    pub privilege_limit: u8,
}

impl ChannelAccess {
    pub fn byte1(&self) -> u8 {
        (self.pef_alerting_disabled as u8) << 5
            | (self.per_message_auth_disabled as u8) << 4
            | (self.user_level_auth_disabled as u8) << 3
            | (self.access_mode & 7)
    }
}

/// LAN configuration parameters (IPMI 2.0 §23.2, table 23-4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanConfig {
    pub set_in_progress: u8,
    /// Auth type enables per privilege: callback, user, operator, admin, OEM.
    pub auth_enables: [u8; 5],
    pub ip: Ipv4Addr,
    pub ip_source: u8,
    pub mac: [u8; 6],
    pub netmask: Ipv4Addr,
    pub ipv4_header: [u8; 3],
    pub arp_control: u8,
    pub garp_interval: u8,
    pub gateway_ip: Ipv4Addr,
    pub gateway_mac: [u8; 6],
    pub backup_gateway_ip: Ipv4Addr,
    pub backup_gateway_mac: [u8; 6],
    pub community: [u8; 18],
    pub vlan_id: [u8; 2],
    pub vlan_priority: u8,
    /// Maximum privilege per entry of parameter 23 (same order).
    pub cipher_privileges: [u8; 16],
    pub bad_password_threshold: [u8; 6],
}

/// System boot options (IPMI 2.0 §28.12-28.13, table 28-14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootOptions {
    pub set_in_progress: u8,
    /// Parameter 3: "don't clear the valid bit" mask.
    pub valid_bit_clearing: u8,
    /// Parameter 4: write mask is applied on set; stored data bits.
    pub info_ack: [u8; 2],
    /// Parameter 5: boot flags.
    pub flags: [u8; 5],
}

/// The boot device selected by parameter 5 byte 2 bits 5:2.
pub fn boot_device_name(flags: &[u8; 5]) -> &'static str {
    match (flags[1] >> 2) & 0x0F {
        0 => "none",
        1 => "pxe",
        2 => "disk",
        3 => "disk-safe",
        4 => "diag",
        5 => "cdrom",
        6 => "bios",
        7 => "floppy-remote",
        8 => "cdrom-remote",
        9 => "primary-remote",
        0xB => "disk-remote",
        0xF => "floppy",
        _ => "reserved",
    }
}

/// Identity answered by Get Device ID and the GUID commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceIdentity {
    pub device_id: u8,
    pub device_revision: u8,
    pub firmware_major: u8,
    /// BCD.
    pub firmware_minor: u8,
    /// 20-bit IANA number. 0xA4A5 is not assigned to any vendor that
    /// FreeIPMI special-cases (Intel 0x157 is avoided on purpose).
    pub manufacturer_id: u32,
    pub product_id: u16,
    pub device_guid: [u8; 16],
    pub system_guid: [u8; 16],
}

/// Everything one BMC remembers.
#[derive(Debug, Clone)]
pub struct BmcState {
    /// Index 0 is user ID 1.
    pub users: Vec<User>,
    pub lan_access_nonvolatile: ChannelAccess,
    pub lan_access_volatile: ChannelAccess,
    pub lan: LanConfig,
    pub boot: BootOptions,
    pub identity: DeviceIdentity,
    /// Cipher suite IDs offered on the LAN channel, in parameter 23 order.
    pub cipher_suites: Vec<u8>,
    /// Auth types the 1.5 session layer implements (LAN parameter 1 bits).
    pub auth_type_support: u8,
    /// BMC Global Enables (App 0x2E/0x2F), used by the in-band driver.
    pub global_enables: u8,
    /// K_G, the BMC key; all zero = unset (then the password keys the SIK).
    pub kg: [u8; 20],
    /// Session types the LAN channel offers (configured per BMC).
    pub v15_sessions: bool,
    pub v20_sessions: bool,
}

impl BmcState {
    pub fn user(&self, id: u8) -> Option<&User> {
        self.users.get((id as usize).checked_sub(1)?)
    }

    pub fn user_mut(&mut self, id: u8) -> Option<&mut User> {
        self.users.get_mut((id as usize).checked_sub(1)?)
    }

    /// Look up an enabled user by name for session establishment.
    pub fn find_user(&self, name: &[u8]) -> Option<(u8, &User)> {
        self.users
            .iter()
            .enumerate()
            .find(|(i, u)| {
                // The null user (ID 1) matches only the empty name.
                u.name_matches(name) && (*i != 0 || name.iter().all(|&b| b == 0))
            })
            .map(|(i, u)| (i as u8 + 1, u))
    }

    pub fn kg_set(&self) -> bool {
        self.kg.iter().any(|&b| b != 0)
    }

    /// Highest privilege the LAN channel allows now.
    pub fn lan_privilege_limit(&self) -> u8 {
        self.lan_access_volatile.privilege_limit
    }

    /// Maximum privilege configured for cipher suite `id` (parameter 24).
    pub fn cipher_privilege(&self, id: u8) -> u8 {
        self.cipher_suites
            .iter()
            .position(|&s| s == id)
            .map_or(0, |i| self.lan.cipher_privileges[i])
    }
}
