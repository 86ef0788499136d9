//! Command handlers: typed (NetFn, Cmd) dispatch over the BMC state, one
//! file per command group. The session layer decodes and authenticates a
//! request, then calls [`dispatch`] with the caller's privilege; session
//! commands (Activate, Set Session Privilege, Close) stay in the session
//! layer, as in pyghmi's split. An unknown command answers 0xC1.

pub mod boot;
pub mod channel;
pub mod chassis;
pub mod device;
pub mod lan;
pub mod sol;
pub mod user;

use super::fault::{Faults, Medium};
use super::power::PowerBackend;
use super::state::{BmcState, privilege};

/// Completion codes (IPMI 2.0 §5.2, table 5-2).
pub mod cc {
    pub const OK: u8 = 0x00;
    pub const NODE_BUSY: u8 = 0xC0;
    pub const INVALID_COMMAND: u8 = 0xC1;
    pub const REQUEST_LENGTH_INVALID: u8 = 0xC7;
    pub const PARAMETER_OUT_OF_RANGE: u8 = 0xC9;
    pub const INVALID_DATA_FIELD: u8 = 0xCC;
    pub const INSUFFICIENT_PRIVILEGE: u8 = 0xD4;
    pub const NOT_SUPPORTED_IN_STATE: u8 = 0xD5;
}

/// Network functions (IPMI 2.0 §5.1, table 5-1).
pub mod netfn {
    pub const CHASSIS: u8 = 0x00;
    pub const APP: u8 = 0x06;
    pub const TRANSPORT: u8 = 0x0C;
}

/// Every command this BMC implements, keyed by (netfn, cmd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    GetChassisStatus,
    ChassisControl,
    ChassisIdentify,
    SetSystemBootOptions,
    GetSystemBootOptions,
    GetDeviceId,
    GetSelfTestResults,
    GetDeviceGuid,
    SetBmcGlobalEnables,
    GetBmcGlobalEnables,
    ClearMessageFlags,
    GetMessageFlags,
    GetMessage,
    ReadEventMessageBuffer,
    GetSystemGuid,
    GetChannelAuthCapabilities,
    GetSessionChallenge,
    ActivateSession,
    SetSessionPrivilege,
    CloseSession,
    SetChannelAccess,
    GetChannelAccess,
    GetChannelInfo,
    SetUserAccess,
    GetUserAccess,
    SetUserName,
    GetUserName,
    SetUserPassword,
    GetChannelPayloadSupport,
    GetChannelCipherSuites,
    ChannelSecurityKeys,
    SetUserPayloadAccess,
    GetUserPayloadAccess,
    SetLanConfig,
    GetLanConfig,
    SetSolConfig,
    GetSolConfig,
    Unknown,
}

impl Command {
    pub fn from_wire(nf: u8, cmd: u8) -> Self {
        use Command::*;
        match (nf, cmd) {
            (netfn::CHASSIS, 0x01) => GetChassisStatus,
            (netfn::CHASSIS, 0x02) => ChassisControl,
            (netfn::CHASSIS, 0x04) => ChassisIdentify,
            (netfn::CHASSIS, 0x08) => SetSystemBootOptions,
            (netfn::CHASSIS, 0x09) => GetSystemBootOptions,
            (netfn::APP, 0x01) => GetDeviceId,
            (netfn::APP, 0x04) => GetSelfTestResults,
            (netfn::APP, 0x08) => GetDeviceGuid,
            (netfn::APP, 0x2E) => SetBmcGlobalEnables,
            (netfn::APP, 0x2F) => GetBmcGlobalEnables,
            (netfn::APP, 0x30) => ClearMessageFlags,
            (netfn::APP, 0x31) => GetMessageFlags,
            (netfn::APP, 0x33) => GetMessage,
            (netfn::APP, 0x35) => ReadEventMessageBuffer,
            (netfn::APP, 0x37) => GetSystemGuid,
            (netfn::APP, 0x38) => GetChannelAuthCapabilities,
            (netfn::APP, 0x39) => GetSessionChallenge,
            (netfn::APP, 0x3A) => ActivateSession,
            (netfn::APP, 0x3B) => SetSessionPrivilege,
            (netfn::APP, 0x3C) => CloseSession,
            (netfn::APP, 0x40) => SetChannelAccess,
            (netfn::APP, 0x41) => GetChannelAccess,
            (netfn::APP, 0x42) => GetChannelInfo,
            (netfn::APP, 0x43) => SetUserAccess,
            (netfn::APP, 0x44) => GetUserAccess,
            (netfn::APP, 0x45) => SetUserName,
            (netfn::APP, 0x46) => GetUserName,
            (netfn::APP, 0x47) => SetUserPassword,
            (netfn::APP, 0x4E) => GetChannelPayloadSupport,
            (netfn::APP, 0x54) => GetChannelCipherSuites,
            (netfn::APP, 0x56) => ChannelSecurityKeys,
            (netfn::APP, 0x4C) => SetUserPayloadAccess,
            (netfn::APP, 0x4D) => GetUserPayloadAccess,
            (netfn::TRANSPORT, 0x01) => SetLanConfig,
            (netfn::TRANSPORT, 0x02) => GetLanConfig,
            (netfn::TRANSPORT, 0x21) => SetSolConfig,
            (netfn::TRANSPORT, 0x22) => GetSolConfig,
            _ => Unknown,
        }
    }

    /// Lowest session privilege that may run the command over LAN
    /// (IPMI 2.0 appendix G). The system interface is not limited.
    pub fn min_privilege(self) -> u8 {
        use Command::*;
        match self {
            GetChannelAuthCapabilities
            | GetSessionChallenge
            | ActivateSession
            | GetSystemGuid
            | GetChannelCipherSuites => 0,
            ChassisControl | ChassisIdentify | SetSystemBootOptions | GetSystemBootOptions
            | GetUserAccess | GetUserName | GetLanConfig | GetSolConfig | GetUserPayloadAccess => {
                privilege::OPERATOR
            }
            SetChannelAccess | SetUserAccess | SetUserName | SetUserPassword | SetLanConfig
            | SetBmcGlobalEnables | SetSolConfig | SetUserPayloadAccess | ChannelSecurityKeys => {
                privilege::ADMIN
            }
            _ => privilege::USER,
        }
    }

    /// Whether a console may send it outside a session.
    pub fn sessionless(self) -> bool {
        self.min_privilege() == 0
    }

    /// Response data that must never reach a transcript.
    pub fn secret_response(self) -> bool {
        matches!(
            self,
            Command::GetSessionChallenge | Command::ChannelSecurityKeys
        )
    }

    /// Request data that must never reach a transcript.
    pub fn secret_request(self) -> bool {
        matches!(
            self,
            Command::SetUserPassword
                | Command::ActivateSession
                | Command::GetSessionChallenge
                | Command::SetLanConfig
                | Command::ChannelSecurityKeys
        )
    }
}

/// Who is asking, through which endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    pub medium: Medium,
    /// Current session privilege (the system interface acts as ADMIN).
    pub privilege: u8,
    /// Sessions active on the LAN channel (Get Channel Info).
    pub active_sessions: u8,
}

impl Ctx {
    /// The channel that 0x0E ("this channel") names.
    pub fn current_channel(&self) -> u8 {
        match self.medium {
            Medium::Lan | Medium::Redfish => super::state::LAN_CHANNEL,
            Medium::Inband => super::state::SYSTEM_CHANNEL,
        }
    }

    pub fn resolve_channel(&self, raw: u8) -> u8 {
        match raw & 0x0F {
            0x0E => self.current_channel(),
            c => c,
        }
    }
}

/// A completion code with its response data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub cc: u8,
    pub data: Vec<u8>,
}

impl Reply {
    pub fn ok(data: impl Into<Vec<u8>>) -> Self {
        Reply {
            cc: cc::OK,
            data: data.into(),
        }
    }

    pub fn cc(code: u8) -> Self {
        Reply {
            cc: code,
            data: Vec::new(),
        }
    }
}

/// What a handler may touch.
pub struct Env<'a> {
    pub state: &'a mut BmcState,
    pub power: &'a dyn PowerBackend,
    pub faults: &'a mut Faults,
    pub ctx: Ctx,
}

/// Run one command: privilege check, injected failures, then the handler.
pub fn dispatch(env: &mut Env<'_>, nf: u8, cmd: u8, data: &[u8]) -> Reply {
    let command = Command::from_wire(nf, cmd);
    if command == Command::Unknown {
        return Reply::cc(cc::INVALID_COMMAND);
    }
    if env.ctx.medium != Medium::Inband && env.ctx.privilege < command.min_privilege() {
        return Reply::cc(cc::INSUFFICIENT_PRIVILEGE);
    }
    if let Some(code) = env.faults.take_failure(nf, cmd, env.ctx.medium) {
        return Reply::cc(code);
    }
    use Command::*;
    match command {
        GetChassisStatus => chassis::get_status(env, data),
        ChassisControl => chassis::control(env, data),
        ChassisIdentify => chassis::identify(env, data),
        SetSystemBootOptions => boot::set(env, data),
        GetSystemBootOptions => boot::get(env, data),
        GetDeviceId => device::get_device_id(env, data),
        GetSelfTestResults => Reply::ok([0x55, 0x00]),
        GetDeviceGuid => Reply::ok(env.state.identity.device_guid),
        GetSystemGuid => Reply::ok(env.state.identity.system_guid),
        SetBmcGlobalEnables => device::set_global_enables(env, data),
        GetBmcGlobalEnables => Reply::ok([env.state.global_enables]),
        ClearMessageFlags => Reply::ok([]),
        GetMessageFlags => Reply::ok([0x00]),
        // Nothing is ever queued: "data not available" (IPMI 2.0 §22.6).
        GetMessage | ReadEventMessageBuffer => Reply::cc(0x80),
        SetChannelAccess => channel::set_access(env, data),
        GetChannelAccess => channel::get_access(env, data),
        GetChannelInfo => channel::get_info(env, data),
        GetChannelPayloadSupport => channel::get_payload_support(env, data),
        GetChannelCipherSuites => channel::get_cipher_suites(env, data),
        ChannelSecurityKeys => channel::security_keys(env, data),
        SetUserAccess => user::set_access(env, data),
        GetUserAccess => user::get_access(env, data),
        SetUserName => user::set_name(env, data),
        GetUserName => user::get_name(env, data),
        SetUserPassword => user::set_password(env, data),
        SetLanConfig => lan::set(env, data),
        GetLanConfig => lan::get(env, data),
        SetSolConfig => sol::set_config(env, data),
        GetSolConfig => sol::get_config(env, data),
        SetUserPayloadAccess => sol::set_user_payload_access(env, data),
        GetUserPayloadAccess => sol::get_user_payload_access(env, data),
        GetChannelAuthCapabilities => channel::auth_capabilities(env.state, &env.ctx, data),
        // Session commands belong to the session layer; in-band they make no sense.
        GetSessionChallenge | ActivateSession | SetSessionPrivilege | CloseSession => {
            Reply::cc(cc::INVALID_COMMAND)
        }
        Unknown => Reply::cc(cc::INVALID_COMMAND),
    }
}
