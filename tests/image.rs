//! Image builder tests: the cache, what goes into the initramfs, and real
//! QEMU (TCG) boots of the marker and the ephemeral image.

#[path = "image/boot.rs"]
mod boot;
#[path = "image/build.rs"]
mod build;
#[path = "image/contract.rs"]
mod contract;
#[path = "image/ipmi_sim.rs"]
mod ipmi_sim;
#[path = "image/own_bmc.rs"]
mod own_bmc;
#[path = "image/qemu.rs"]
mod qemu;
#[path = "image/scripts.rs"]
mod scripts;
