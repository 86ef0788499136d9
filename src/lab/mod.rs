//! The lab: a network namespace, bridges, VMs under libvirt, and the lab's
//! DHCP/TFTP/HTTP servers.

pub mod netns;
