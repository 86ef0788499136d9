//! The reference MAAS-compatible region and rack (never claims to be MAAS):
//! REST API 2.0 and metadata service backed by Postgres, boot decisions for
//! the rack, and the IPMI power driver run as MAAS 2.8 (or, with the 3.6 profile, 3.6)
//! runs FreeIPMI.
//! See docs/sim.md.

pub mod api;
pub mod b64;
pub mod boot;
pub mod events;
pub mod http;
pub mod metadata;
pub mod postgres;
pub mod power;
pub mod power_redfish;
pub mod profile;
pub mod rack;
pub mod region;
pub mod state;
pub mod store;

pub use boot::{BootConfig, BootContext, BootPurpose, Firmware, boot_config};
pub use postgres::{LocalPostgres, LocalPostgresOptions, PgListen, PostgresMode, SimDatabase};
pub use power::{
    IpmiParams, IpmiPowerDriver, PowerAction, PowerDriverConfig, PowerError, power_command,
};
pub use profile::SimProfile;
pub use region::{DhcpSubnet, RackHandle, SimError, SimRegion, SimRegionConfig};
