//! The lab: a network namespace, bridges, VMs under libvirt, and the lab's
//! DHCP/TFTP/HTTP servers (written once here, reused by the sim target's
//! rack). See docs/lab.md.

pub mod capture;
pub mod dhcp;
pub mod events;
pub mod http;
pub mod net;
pub mod netns;
pub mod ra;
pub mod servers;
pub mod smbios0;
pub mod smbios42;
pub mod tftp;
pub mod vm;
