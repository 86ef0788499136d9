//! The Redfish resources one BMC serves, as pure functions of a
//! [`SystemView`] (snapshot-tested): service root, the Systems, Managers and
//! Chassis collections with their one member each, the Manager's Ethernet
//! interface, SessionService and sessions, `$metadata`, the OData service
//! document and Redfish error bodies. Schema versions are the ones whose
//! CSDL is vendored in tests/bmc/redfish-schemas (the validator reads them).

use serde_json::{Value, json};
use sha2::Digest;

/// The one system, chassis and manager every BMC has.
pub const MEMBER_ID: &str = "1";
pub const ROOT: &str = "/redfish/v1/";
pub const SYSTEM: &str = "/redfish/v1/Systems/1";
pub const RESET_TARGET: &str = "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset";
pub const MANAGER: &str = "/redfish/v1/Managers/1";
pub const CHASSIS: &str = "/redfish/v1/Chassis/1";
pub const SESSIONS: &str = "/redfish/v1/SessionService/Sessions";
/// The Base message registry the error bodies cite.
pub const BASE_REGISTRY: &str = "Base.1.9";

/// Redfish's reset types, all of which this BMC accepts in some state.
pub const RESET_TYPES: [&str; 6] = [
    "On",
    "ForceOff",
    "GracefulShutdown",
    "ForceRestart",
    "PowerCycle",
    "Nmi",
];

/// Boot override targets this BMC maps to IPMI boot devices.
pub const BOOT_TARGETS: [&str; 7] = ["None", "Pxe", "Hdd", "Cd", "BiosSetup", "Diags", "Floppy"];
pub const BOOT_ENABLED: [&str; 3] = ["Disabled", "Once", "Continuous"];
pub const BOOT_MODES: [&str; 2] = ["Legacy", "UEFI"];

/// What the resources show of one BMC and its machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemView {
    pub bmc_name: String,
    /// System GUID as a UUID string.
    pub uuid: String,
    pub power_on: bool,
    pub boot: BootView,
    pub mac: String,
    pub ip: String,
    pub netmask: String,
    pub gateway: String,
}

/// The boot override, in Redfish's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootView {
    pub enabled: &'static str,
    pub target: &'static str,
    pub mode: &'static str,
}

impl BootView {
    /// From IPMI boot flags (parameter 5, IPMI 2.0 table 28-14): byte 1
    /// bit 7 valid, bit 6 persistent, bit 5 EFI; byte 2 bits 5:2 device.
    pub fn from_ipmi(flags: &[u8; 5]) -> Self {
        let valid = flags[0] & 0x80 != 0;
        let enabled = match (valid, flags[0] & 0x40 != 0) {
            (false, _) => "Disabled",
            (true, false) => "Once",
            (true, true) => "Continuous",
        };
        let target = match (flags[1] >> 2) & 0x0F {
            1 => "Pxe",
            2 | 3 | 0xB => "Hdd",
            4 => "Diags",
            5 | 8 => "Cd",
            6 => "BiosSetup",
            0xF | 7 => "Floppy",
            _ => "None",
        };
        BootView {
            enabled,
            target,
            mode: if flags[0] & 0x20 != 0 {
                "UEFI"
            } else {
                "Legacy"
            },
        }
    }

    /// IPMI boot flags for this override; bytes 3-5 (console, BIOS
    /// verbosity, instance) keep their old values.
    pub fn to_ipmi(self, old: &[u8; 5]) -> [u8; 5] {
        let mut f = *old;
        let device: u8 = match self.target {
            "Pxe" => 1,
            "Hdd" => 2,
            "Diags" => 4,
            "Cd" => 5,
            "BiosSetup" => 6,
            "Floppy" => 0xF,
            _ => 0,
        };
        let mut b0 = 0u8;
        if self.enabled != "Disabled" {
            b0 |= 0x80;
        }
        if self.enabled == "Continuous" {
            b0 |= 0x40;
        }
        if self.mode == "UEFI" {
            b0 |= 0x20;
        }
        f[0] = b0;
        f[1] = (f[1] & !0x3C) | (device << 2);
        f
    }
}

fn link(uri: &str) -> Value {
    json!({ "@odata.id": uri })
}

fn collection(uri: &str, kind: &str, name: &str, members: &[String]) -> Value {
    json!({
        "@odata.id": uri,
        "@odata.type": format!("#{kind}.{kind}"),
        "Name": name,
        "Members": members.iter().map(|m| link(m)).collect::<Vec<_>>(),
        "Members@odata.count": members.len(),
    })
}

fn status() -> Value {
    json!({ "State": "Enabled", "Health": "OK" })
}

fn power_state(on: bool) -> &'static str {
    if on { "On" } else { "Off" }
}

pub fn redfish_versions() -> Value {
    json!({ "v1": ROOT })
}

pub fn service_root(v: &SystemView) -> Value {
    json!({
        "@odata.id": ROOT,
        "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
        "Id": "RootService",
        "Name": "Root Service",
        "RedfishVersion": "1.6.0",
        "UUID": v.uuid,
        "Systems": link("/redfish/v1/Systems"),
        "Chassis": link("/redfish/v1/Chassis"),
        "Managers": link("/redfish/v1/Managers"),
        "SessionService": link("/redfish/v1/SessionService"),
        "AccountService": link("/redfish/v1/AccountService"),
        "Links": { "Sessions": link(SESSIONS) },
    })
}

pub fn systems() -> Value {
    collection(
        "/redfish/v1/Systems",
        "ComputerSystemCollection",
        "Computer System Collection",
        &[SYSTEM.into()],
    )
}

/// The system without its etag (the etag is a digest of this).
fn system_body(v: &SystemView) -> Value {
    json!({
        "@odata.id": SYSTEM,
        "@odata.type": "#ComputerSystem.v1_10_0.ComputerSystem",
        "Id": MEMBER_ID,
        "Name": v.bmc_name,
        "SystemType": "Virtual",
        "UUID": v.uuid,
        "PowerState": power_state(v.power_on),
        "Status": status(),
        "Boot": {
            "BootSourceOverrideEnabled": v.boot.enabled,
            "BootSourceOverrideTarget": v.boot.target,
            "BootSourceOverrideTarget@Redfish.AllowableValues": BOOT_TARGETS,
            "BootSourceOverrideMode": v.boot.mode,
        },
        "Actions": {
            "#ComputerSystem.Reset": {
                "target": RESET_TARGET,
                "ResetType@Redfish.AllowableValues": RESET_TYPES,
            }
        },
        "Links": {
            "Chassis": [link(CHASSIS)],
            "ManagedBy": [link(MANAGER)],
        },
    })
}

/// A weak ETag over the system's representation: it changes when power or
/// the boot override change, through either protocol.
pub fn system_etag(v: &SystemView) -> String {
    let digest = sha2::Sha256::digest(system_body(v).to_string().as_bytes());
    format!("W/\"{}\"", hex::encode(&digest[..8]))
}

pub fn system(v: &SystemView) -> Value {
    let mut body = system_body(v);
    body["@odata.etag"] = json!(system_etag(v));
    body
}

pub fn managers() -> Value {
    collection(
        "/redfish/v1/Managers",
        "ManagerCollection",
        "Manager Collection",
        &[MANAGER.into()],
    )
}

pub fn manager(v: &SystemView) -> Value {
    json!({
        "@odata.id": MANAGER,
        "@odata.type": "#Manager.v1_5_0.Manager",
        "Id": MEMBER_ID,
        "Name": format!("BMC of {}", v.bmc_name),
        "ManagerType": "BMC",
        "UUID": v.uuid,
        "FirmwareVersion": concat!("maas-e2e ", env!("CARGO_PKG_VERSION")),
        "Status": status(),
        "EthernetInterfaces": link("/redfish/v1/Managers/1/EthernetInterfaces"),
        "Links": {
            "ManagerForServers": [link(SYSTEM)],
            "ManagerForChassis": [link(CHASSIS)],
        },
    })
}

pub fn ethernet_interfaces() -> Value {
    collection(
        "/redfish/v1/Managers/1/EthernetInterfaces",
        "EthernetInterfaceCollection",
        "Manager Ethernet Interface Collection",
        &["/redfish/v1/Managers/1/EthernetInterfaces/1".into()],
    )
}

pub fn ethernet_interface(v: &SystemView) -> Value {
    json!({
        "@odata.id": "/redfish/v1/Managers/1/EthernetInterfaces/1",
        "@odata.type": "#EthernetInterface.v1_5_1.EthernetInterface",
        "Id": MEMBER_ID,
        "Name": "Manager Ethernet Interface",
        "InterfaceEnabled": true,
        "LinkStatus": "LinkUp",
        "Status": status(),
        "MACAddress": v.mac,
        "PermanentMACAddress": v.mac,
        "IPv4Addresses": [{
            "Address": v.ip,
            "SubnetMask": v.netmask,
            "AddressOrigin": "Static",
            "Gateway": v.gateway,
        }],
    })
}

pub fn chassis_collection() -> Value {
    collection(
        "/redfish/v1/Chassis",
        "ChassisCollection",
        "Chassis Collection",
        &[CHASSIS.into()],
    )
}

pub fn chassis(v: &SystemView) -> Value {
    json!({
        "@odata.id": CHASSIS,
        "@odata.type": "#Chassis.v1_10_0.Chassis",
        "Id": MEMBER_ID,
        "Name": format!("Chassis of {}", v.bmc_name),
        "ChassisType": "RackMount",
        "PowerState": power_state(v.power_on),
        "Status": status(),
        "Links": {
            "ComputerSystems": [link(SYSTEM)],
            "ManagedBy": [link(MANAGER)],
        },
    })
}

pub fn session_service(timeout_secs: u64) -> Value {
    json!({
        "@odata.id": "/redfish/v1/SessionService",
        "@odata.type": "#SessionService.v1_1_8.SessionService",
        "Id": "SessionService",
        "Name": "Session Service",
        "ServiceEnabled": true,
        "SessionTimeout": timeout_secs,
        "Status": status(),
        "Sessions": link(SESSIONS),
    })
}

pub fn sessions(ids: &[String]) -> Value {
    let members: Vec<String> = ids.iter().map(|id| format!("{SESSIONS}/{id}")).collect();
    collection(
        SESSIONS,
        "SessionCollection",
        "Session Collection",
        &members,
    )
}

pub fn session(id: &str, user: &str) -> Value {
    json!({
        "@odata.id": format!("{SESSIONS}/{id}"),
        "@odata.type": "#Session.v1_3_0.Session",
        "Id": id,
        "Name": "User Session",
        "UserName": user,
    })
}

/// Redfish's predefined roles, as the IPMI privilege each stands for
/// (a Redfish caller acts with its IPMI user's privilege).
pub const ROLES: [(&str, &[&str], u8); 3] = [
    (
        "Administrator",
        &[
            "Login",
            "ConfigureManager",
            "ConfigureUsers",
            "ConfigureComponents",
            "ConfigureSelf",
        ],
        4,
    ),
    (
        "Operator",
        &["Login", "ConfigureComponents", "ConfigureSelf"],
        3,
    ),
    ("ReadOnly", &["Login", "ConfigureSelf"], 2),
];

pub fn account_service() -> Value {
    json!({
        "@odata.id": "/redfish/v1/AccountService",
        "@odata.type": "#AccountService.v1_5_0.AccountService",
        "Id": "AccountService",
        "Name": "Account Service",
        "Description": "Users are the BMC's IPMI users; roles map to IPMI privileges.",
        "ServiceEnabled": true,
        "Status": status(),
        "Roles": link("/redfish/v1/AccountService/Roles"),
    })
}

pub fn roles() -> Value {
    let members: Vec<String> = ROLES
        .iter()
        .map(|(id, _, _)| format!("/redfish/v1/AccountService/Roles/{id}"))
        .collect();
    collection(
        "/redfish/v1/AccountService/Roles",
        "RoleCollection",
        "Roles Collection",
        &members,
    )
}

pub fn role(id: &str) -> Option<Value> {
    let (id, privileges, _) = ROLES.iter().find(|(r, _, _)| *r == id)?;
    Some(json!({
        "@odata.id": format!("/redfish/v1/AccountService/Roles/{id}"),
        "@odata.type": "#Role.v1_2_4.Role",
        "Id": id,
        "Name": format!("{id} Role"),
        "RoleId": id,
        "IsPredefined": true,
        "AssignedPrivileges": privileges,
    }))
}

/// The OData service document (`/redfish/v1/odata`).
pub fn odata_service_document() -> Value {
    let entries = [
        ("Service", ROOT),
        ("Systems", "/redfish/v1/Systems"),
        ("Chassis", "/redfish/v1/Chassis"),
        ("Managers", "/redfish/v1/Managers"),
        ("SessionService", "/redfish/v1/SessionService"),
        ("Sessions", SESSIONS),
        ("AccountService", "/redfish/v1/AccountService"),
    ];
    json!({
        "@odata.context": "/redfish/v1/$metadata",
        "value": entries
            .iter()
            .map(|(name, url)| json!({ "name": name, "kind": "Singleton", "url": url }))
            .collect::<Vec<_>>(),
    })
}

/// The JSON schema a resource's representation is described by (the
/// `Link: <...>; rel=describedby` header), from its `@odata.type`:
/// `#ComputerSystem.v1_10_0.ComputerSystem` -> `.../ComputerSystem.v1_10_0.json`.
pub fn described_by(odata_type: &str) -> Option<String> {
    let t = odata_type.strip_prefix('#')?;
    let (ns, _) = t.rsplit_once('.')?;
    Some(format!("http://redfish.dmtf.org/schemas/v1/{ns}.json"))
}

/// The schemas `$metadata` references: (file, namespaces).
const METADATA_REFS: &[(&str, &[&str])] = &[
    ("ServiceRoot_v1", &["ServiceRoot", "ServiceRoot.v1_5_0"]),
    ("ComputerSystemCollection_v1", &["ComputerSystemCollection"]),
    (
        "ComputerSystem_v1",
        &["ComputerSystem", "ComputerSystem.v1_10_0"],
    ),
    ("ManagerCollection_v1", &["ManagerCollection"]),
    ("Manager_v1", &["Manager", "Manager.v1_5_0"]),
    (
        "EthernetInterfaceCollection_v1",
        &["EthernetInterfaceCollection"],
    ),
    (
        "EthernetInterface_v1",
        &["EthernetInterface", "EthernetInterface.v1_5_1"],
    ),
    ("ChassisCollection_v1", &["ChassisCollection"]),
    ("Chassis_v1", &["Chassis", "Chassis.v1_10_0"]),
    (
        "SessionService_v1",
        &["SessionService", "SessionService.v1_1_8"],
    ),
    ("SessionCollection_v1", &["SessionCollection"]),
    ("Session_v1", &["Session", "Session.v1_3_0"]),
    ("Message_v1", &["Message", "Message.v1_1_1"]),
    (
        "AccountService_v1",
        &["AccountService", "AccountService.v1_5_0"],
    ),
    ("RoleCollection_v1", &["RoleCollection"]),
    ("Role_v1", &["Role", "Role.v1_2_4"]),
    ("Resource_v1", &["Resource", "Resource.v1_0_0"]),
    ("RedfishExtensions_v1", &["RedfishExtensions.v1_0_0"]),
];

/// `$metadata`: CSDL that references the DMTF schemas of what we serve.
pub fn metadata_xml() -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <edmx:Edmx xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\" Version=\"4.0\">\n",
    );
    for (file, namespaces) in METADATA_REFS {
        x.push_str(&format!(
            "  <edmx:Reference Uri=\"http://redfish.dmtf.org/schemas/v1/{file}.xml\">\n"
        ));
        for ns in *namespaces {
            let alias = if *ns == "RedfishExtensions.v1_0_0" {
                " Alias=\"Redfish\""
            } else {
                ""
            };
            x.push_str(&format!("    <edmx:Include Namespace=\"{ns}\"{alias}/>\n"));
        }
        x.push_str("  </edmx:Reference>\n");
    }
    x.push_str(
        "  <edmx:DataServices>\n\
         \x20   <Schema xmlns=\"http://docs.oasis-open.org/odata/ns/edm\" Namespace=\"Service\">\n\
         \x20     <EntityContainer Name=\"Service\" Extends=\"ServiceRoot.v1_5_0.ServiceContainer\"/>\n\
         \x20   </Schema>\n\
         \x20 </edmx:DataServices>\n\
         </edmx:Edmx>\n",
    );
    x
}

/// One Base registry message: (key, text with %1.. filled, severity,
/// resolution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub key: &'static str,
    pub args: Vec<String>,
}

impl Message {
    pub fn new(key: &'static str, args: &[&str]) -> Self {
        Message {
            key,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// The registry text for the key, with the arguments filled in.
    fn text(&self) -> (String, &'static str, &'static str) {
        let (template, severity, resolution) = match self.key {
            "PropertyValueNotInList" => (
                "The value '%1' for the property %2 is not in the list of acceptable values.",
                "Warning",
                "Choose a value from the enumeration list and resubmit the request.",
            ),
            "ActionParameterValueNotInList" => (
                "The value '%1' for the parameter %2 in the action %3 is not in the list of acceptable values.",
                "Warning",
                "Choose a value from the enumeration list and resubmit the request.",
            ),
            "ActionParameterMissing" => (
                "The action %1 requires the parameter %2 to be present in the request body.",
                "Critical",
                "Supply the action with the required parameter in the request body.",
            ),
            "PropertyNotWritable" => (
                "The property %1 is a read only property and cannot be assigned a value.",
                "Warning",
                "Remove the property from the request body and resubmit the request.",
            ),
            "PropertyUnknown" => (
                "The property %1 is not in the list of valid properties for the resource.",
                "Warning",
                "Remove the unknown property from the request body and resubmit the request.",
            ),
            "PropertyMissing" => (
                "The property %1 is a required property and must be included in the request.",
                "Warning",
                "Ensure that the property is in the request body and has a valid value and resubmit the request if the operation failed.",
            ),
            "PropertyValueTypeError" => (
                "The value '%1' for the property %2 is not a type that the property can accept.",
                "Warning",
                "Correct the value for the property in the request body and resubmit the request if the operation failed.",
            ),
            "MalformedJSON" => (
                "The request body submitted was malformed JSON and could not be parsed by the receiving service.",
                "Critical",
                "Ensure that the request body is valid JSON and resubmit the request.",
            ),
            "ResourceNotFound" => (
                "The requested resource of type %1 named '%2' was not found.",
                "Critical",
                "Provide a valid resource identifier and resubmit the request.",
            ),
            "NoValidSession" => (
                "There is no valid session established with the implementation.",
                "Critical",
                "Establish a session before attempting any operations.",
            ),
            "InsufficientPrivilege" => (
                "There are insufficient privileges for the account or credentials associated with the current session to perform the requested operation.",
                "Critical",
                "Either abandon the operation or change the associated access rights and resubmit the request if the operation failed.",
            ),
            "PreconditionFailed" => (
                "The ETag supplied did not match the ETag required to change this resource.",
                "Critical",
                "Try the operation again using the appropriate ETag.",
            ),
            "ChassisPowerStateOnRequired" => (
                "The chassis with Id '%1' requires to be powered on to perform this request.",
                "Warning",
                "Power on the chassis and resubmit the request.",
            ),
            "ChassisPowerStateOffRequired" => (
                "The Chassis with Id '%1' requires to be powered off to perform this request.",
                "Warning",
                "Power off the chassis and resubmit the request.",
            ),
            "ServiceTemporarilyUnavailable" => (
                "The service is temporarily unavailable.  Retry in %1 seconds.",
                "Critical",
                "Wait for the indicated retry duration and retry the operation.",
            ),
            "OperationNotAllowed" => (
                "The HTTP method is not allowed on this resource.",
                "Critical",
                "None.",
            ),
            "CreateLimitReachedForResource" => (
                "The create operation failed because the resource has reached the limit of possible resources.",
                "Critical",
                "Either delete resources and resubmit the request if the operation failed or do not resubmit the request.",
            ),
            _ => (
                "A general error has occurred. See ExtendedInfo for more information.",
                "Critical",
                "None.",
            ),
        };
        let mut text = template.to_string();
        for (i, a) in self.args.iter().enumerate().rev() {
            text = text.replace(&format!("%{}", i + 1), a);
        }
        (text, severity, resolution)
    }

    fn extended_info(&self) -> Value {
        let (text, severity, resolution) = self.text();
        json!({
            "@odata.type": "#Message.v1_1_1.Message",
            "MessageId": format!("{BASE_REGISTRY}.{}", self.key),
            "Message": text,
            "MessageArgs": self.args,
            "Severity": severity,
            "MessageSeverity": severity,
            "Resolution": resolution,
        })
    }
}

/// A Redfish error body (DSP0266 §9.6 "Error responses").
pub fn error(message: &Message, detail: Option<&str>) -> Value {
    let (text, _, _) = message.text();
    let mut info = message.extended_info();
    if let Some(d) = detail {
        info["Message"] = json!(format!("{text} {d}"));
    }
    json!({
        "error": {
            "code": format!("{BASE_REGISTRY}.{}", message.key),
            "message": detail.map_or(text.clone(), |d| format!("{text} {d}")),
            "@Message.ExtendedInfo": [info],
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> SystemView {
        SystemView {
            bmc_name: "node-1".into(),
            uuid: "3f2a0d1e-58c4-3b7a-9e01-2b3c4d5e6f70".into(),
            power_on: true,
            boot: BootView::from_ipmi(&[0x80, 0x04, 0, 0, 0]),
            mac: "02:aa:bb:cc:dd:ee".into(),
            ip: "10.20.0.11".into(),
            netmask: "255.255.255.0".into(),
            gateway: "10.20.0.1".into(),
        }
    }

    #[test]
    fn boot_flags_round_trip() {
        for enabled in BOOT_ENABLED {
            for target in BOOT_TARGETS {
                for mode in BOOT_MODES {
                    let b = BootView {
                        enabled,
                        target,
                        mode,
                    };
                    let flags = b.to_ipmi(&[0, 0, 0, 0, 0]);
                    let back = BootView::from_ipmi(&flags);
                    assert_eq!(back.enabled, enabled);
                    assert_eq!(back.mode, mode);
                    assert_eq!(back.target, target);
                }
            }
        }
        // ipmitool chassis bootdev pxe (once, legacy): 0x80 0x04.
        let v = BootView::from_ipmi(&[0x80, 0x04, 0, 0, 0]);
        assert_eq!((v.enabled, v.target, v.mode), ("Once", "Pxe", "Legacy"));
        // options=persistent,efiboot: 0xE0.
        let v = BootView::from_ipmi(&[0xE0, 0x08, 0, 0, 0]);
        assert_eq!((v.enabled, v.target, v.mode), ("Continuous", "Hdd", "UEFI"));
        assert_eq!(BootView::from_ipmi(&[0; 5]).enabled, "Disabled");
    }

    #[test]
    fn etag_follows_power_and_boot() {
        let a = view();
        let mut b = view();
        assert_eq!(system_etag(&a), system_etag(&b));
        b.power_on = false;
        assert_ne!(system_etag(&a), system_etag(&b));
        let mut c = view();
        c.boot.target = "Hdd";
        assert_ne!(system_etag(&a), system_etag(&c));
    }

    #[test]
    fn resources_snapshot() {
        let v = view();
        insta::assert_json_snapshot!("service_root", service_root(&v));
        insta::assert_json_snapshot!("system", system(&v));
        insta::assert_json_snapshot!("manager", manager(&v));
        insta::assert_json_snapshot!("ethernet_interface", ethernet_interface(&v));
        insta::assert_json_snapshot!("chassis", chassis(&v));
        insta::assert_json_snapshot!("sessions", sessions(&["a1".into()]));
        insta::assert_snapshot!("metadata", metadata_xml());
    }

    #[test]
    fn error_body_carries_extended_info() {
        let e = error(
            &Message::new(
                "ActionParameterValueNotInList",
                &["Bogus", "ResetType", "ComputerSystem.Reset"],
            ),
            None,
        );
        insta::assert_json_snapshot!("error_reset_type", e);
        let e = error(&Message::new("ChassisPowerStateOnRequired", &["1"]), None);
        assert_eq!(
            e["error"]["@Message.ExtendedInfo"][0]["MessageId"],
            "Base.1.9.ChassisPowerStateOnRequired"
        );
    }
}
