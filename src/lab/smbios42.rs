//! SMBIOS type 42, "Management Controller Host Interface", describing a
//! Redfish service the way DMTF DSP0270 (Redfish Host Interface) lays it
//! out: a network host interface (here the VM's PCI NIC), one "Redfish
//! over IP" protocol record with the host's and the service's static IPv4
//! addresses, the port and a hostname. MAAS 3.x's in-guest BMC detection
//! reads it with `dmidecode -t 42` to find the BMC's Redfish service.
//!
//! Stretch part of issue 13: the bytes are built and checked with the real
//! dmidecode; passing them to a VM (QEMU `-smbios file=`) is not wired yet.

use std::net::Ipv4Addr;

/// SMBIOS 3.x, 7.43: structure type 42.
const TYPE_HOST_INTERFACE: u8 = 42;
/// DSP0270, 6.1: interface type 40h, Network Host Interface.
const NETWORK_HOST_INTERFACE: u8 = 0x40;
/// DSP0270, 6.1: device type 03h, PCI/PCIe network device.
const DEVICE_PCI: u8 = 0x03;
/// SMBIOS 7.43.2 / DSP0270 6.2: protocol 04h, Redfish over IP.
const PROTOCOL_REDFISH_OVER_IP: u8 = 0x04;
/// DSP0270 6.2: assignment/discovery 01h static; address format 01h IPv4.
const STATIC: u8 = 0x01;
const IPV4: u8 = 0x01;

/// What the host interface tells the guest about its BMC's Redfish service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedfishHostInterface {
    /// The PCI ids of the host-side NIC (virtio-net: 1af4:1000, 1af4:0001).
    pub pci: [u16; 4],
    /// Redfish's ServiceRoot UUID, in SMBIOS byte order.
    pub service_uuid: [u8; 16],
    pub host_ip: Ipv4Addr,
    pub host_mask: Ipv4Addr,
    pub service_ip: Ipv4Addr,
    pub service_mask: Ipv4Addr,
    pub service_port: u16,
    pub hostname: String,
}

/// An IPv4 address in a 16-byte field (DSP0270: the first 4 bytes).
fn ip16(ip: Ipv4Addr) -> [u8; 16] {
    let mut f = [0u8; 16];
    f[..4].copy_from_slice(&ip.octets());
    f
}

impl RedfishHostInterface {
    /// The type 42 structure (formatted area and its empty string set).
    pub fn structure(&self, handle: u16) -> Vec<u8> {
        let mut device = vec![DEVICE_PCI];
        for id in self.pci {
            device.extend(id.to_le_bytes());
        }
        let mut record = Vec::new();
        record.extend(self.service_uuid);
        record.extend([STATIC, IPV4]);
        record.extend(ip16(self.host_ip));
        record.extend(ip16(self.host_mask));
        record.extend([STATIC, IPV4]);
        record.extend(ip16(self.service_ip));
        record.extend(ip16(self.service_mask));
        record.extend(self.service_port.to_le_bytes());
        record.extend(0u32.to_le_bytes()); // VLAN id: none
        let name = self.hostname.as_bytes();
        record.push(name.len() as u8);
        record.extend(name);

        let mut s = vec![TYPE_HOST_INTERFACE, 0, 0, 0];
        s[2..4].copy_from_slice(&handle.to_le_bytes());
        s.push(NETWORK_HOST_INTERFACE);
        s.push(device.len() as u8);
        s.extend(device);
        s.push(1); // one protocol record
        s.push(PROTOCOL_REDFISH_OVER_IP);
        s.push(record.len() as u8);
        s.extend(record);
        s[1] = s.len() as u8;
        s.extend([0, 0]); // no strings
        s
    }
}

/// A table of structures behind an SMBIOS 3.x 64-bit entry point, as
/// Test aid: `dmidecode --from-dump -t TYPE` of `structures` in an SMBIOS 3.3
/// dump; its exit status and stdout.
#[cfg(test)]
pub(crate) fn dmidecode_from_dump(structures: &[Vec<u8>], dmi_type: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smbios.bin");
    std::fs::write(&path, smbios3_dump(structures, (3, 3))).unwrap();
    let out = std::process::Command::new("dmidecode")
        .arg("--from-dump")
        .arg(&path)
        .args(["-t", dmi_type])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `dmidecode --dump-bin` writes one (entry point at 0, table at 32), so
/// `dmidecode --from-dump` can decode it. An end-of-table (type 127) is
/// appended.
pub fn smbios3_dump(structures: &[Vec<u8>], version: (u8, u8)) -> Vec<u8> {
    let mut table: Vec<u8> = structures.concat();
    table.extend([127, 4, 0xff, 0xff, 0, 0]);
    let mut ep = Vec::with_capacity(0x18);
    ep.extend(b"_SM3_");
    ep.push(0); // checksum, below
    ep.push(0x18);
    ep.extend([version.0, version.1, 0, 1, 0]);
    ep.extend((table.len() as u32).to_le_bytes());
    ep.extend(32u64.to_le_bytes());
    let sum = ep.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    ep[5] = 0u8.wrapping_sub(sum);
    let mut out = ep;
    out.resize(32, 0);
    out.extend(table);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RedfishHostInterface {
        RedfishHostInterface {
            pci: [0x1af4, 0x1000, 0x1af4, 0x0001],
            service_uuid: [0x11; 16],
            host_ip: Ipv4Addr::new(169, 254, 95, 120),
            host_mask: Ipv4Addr::new(255, 255, 0, 0),
            service_ip: Ipv4Addr::new(169, 254, 95, 118),
            service_mask: Ipv4Addr::new(255, 255, 0, 0),
            service_port: 443,
            hostname: "bmc-node".into(),
        }
    }

    #[test]
    fn the_structure_has_its_length_and_the_record_where_dsp0270_puts_them() {
        let s = sample().structure(0x2a00);
        assert_eq!(s[0], 42);
        assert_eq!(s[1] as usize, s.len() - 2, "formatted length");
        assert_eq!(&s[s.len() - 2..], &[0, 0]);
        // 4 header + 2 + 9 device + 1 count + 2 record header + 91 + name
        assert_eq!(s[1] as usize, 4 + 2 + 9 + 1 + 2 + 91 + 8);
    }

    #[test]
    fn dmidecode_reads_a_redfish_over_ip_host_interface() {
        if !crate::testing::require_program("dmidecode", "dmidecode") {
            return;
        }
        let (ok, text) = dmidecode_from_dump(&[sample().structure(0x2a00)], "42");
        assert!(ok, "{text}");
        // The lines MAAS 3.6's bmc_config.py looks for, then parses.
        for want in [
            "Management Controller Host Interface",
            "Host Interface Type: Network",
            "Device Type: PCI/PCIe",
            "Protocol ID: 04 (Redfish over IP)",
            "Host IP Assignment Type: Static",
            "IPv4 Address: 169.254.95.120",
            "IPv4 Redfish Service Address: 169.254.95.118",
            "Redfish Service Port: 443",
            "Redfish Service Hostname: bmc-node",
        ] {
            assert!(text.contains(want), "no `{want}` in:\n{text}");
        }
    }
}
