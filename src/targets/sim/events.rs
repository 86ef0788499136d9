//! The event types the sim records, with MAAS 2.8's descriptions and levels
//! (provisioningserver/events.py). `events/?op=query` shows the description
//! as `type`; the per-event text goes into `description`.

/// One event type: what MAAS shows as the event's `type`, and its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKind {
    pub description: &'static str,
    pub level: &'static str,
}

const fn kind(description: &'static str, level: &'static str) -> EventKind {
    EventKind { description, level }
}

pub const PXE_REQUEST: EventKind = kind("PXE Request", "INFO");
pub const TFTP_REQUEST: EventKind = kind("TFTP Request", "DEBUG");
pub const HTTP_REQUEST: EventKind = kind("HTTP Request", "DEBUG");
pub const PERFORMING_PXE_BOOT: EventKind = kind("Performing PXE boot", "INFO");
pub const LOADING_EPHEMERAL: EventKind = kind("Loading ephemeral", "INFO");
pub const POWERING_ON: EventKind = kind("Powering on", "INFO");
pub const POWERING_OFF: EventKind = kind("Powering off", "INFO");
pub const POWER_CYCLING: EventKind = kind("Power cycling", "INFO");
pub const POWERED_ON: EventKind = kind("Node powered on", "DEBUG");
pub const POWERED_OFF: EventKind = kind("Node powered off", "DEBUG");
pub const POWER_ON_FAILED: EventKind = kind("Failed to power on node", "ERROR");
pub const POWER_OFF_FAILED: EventKind = kind("Failed to power off node", "ERROR");
pub const POWER_CYCLE_FAILED: EventKind = kind("Failed to power cycle node", "ERROR");
pub const POWER_QUERY_FAILED: EventKind = kind("Failed to query node's BMC", "WARNING");
pub const POWER_QUERIED: EventKind = kind("Queried node's BMC", "DEBUG");
pub const NODE_CHANGED_STATUS: EventKind = kind("Node changed status", "DEBUG");
pub const COMMISSIONING: EventKind = kind("Commissioning", "INFO");
pub const FAILED_COMMISSIONING: EventKind = kind("Failed commissioning", "INFO");
pub const TESTING: EventKind = kind("Testing", "INFO");
pub const FAILED_TESTING: EventKind = kind("Failed testing", "INFO");
pub const READY: EventKind = kind("Ready", "INFO");
/// REQUEST_NODE_MARK_FAILED_SYSTEM: the system marked the node failed.
pub const MARKING_FAILED: EventKind = kind("Marking node failed", "ERROR");
pub const GATHERING_INFO: EventKind = kind("Gathering information", "INFO");
pub const SCRIPT_RESULT: EventKind = kind("Script result", "DEBUG");
pub const NODE_STATUS_EVENT: EventKind = kind("Node status event", "DEBUG");
pub const USER_COMMISSIONING: EventKind = kind("User starting node commissioning", "DEBUG");
