//! SMBIOS type 0, "BIOS Information" (DMTF DSP0134 3.x, 7.1), for a lab VM
//! that must not say it is one.
//!
//! QEMU builds no type 0 by default, so the firmware adds its own: OVMF
//! (2022.11) with bit 4 of "BIOS Characteristics Extension Byte 2" set,
//! "this is a virtual machine" (byte 0x13 = 0x1c in the guest), SeaBIOS
//! (1.16.3) without it (0x04). systemd-detect-virt reads that byte from
//! /sys/firmware/dmi/entries/0-0/raw, and MAAS 3.6's bmc_config.py skips
//! BMC setup on a VM. QEMU takes a structure given as a binary (`-smbios
//! file=`) as it is, and a firmware that finds a type 0 adds none: this
//! module builds that structure, with the bit clear, for either firmware.

/// SMBIOS 7.1: structure type 0.
const TYPE_BIOS_INFORMATION: u8 = 0;
/// Formatted length of an SMBIOS 3.1+ type 0 (with "Extended BIOS ROM Size").
const LENGTH_3_1: u8 = 0x1a;
/// Offset of "BIOS Characteristics Extension Byte 2" (what systemd reads).
pub const EXTENSION_BYTE_2_OFFSET: usize = 0x13;
/// Extension byte 2, bit 4: "SMBIOS table describes a virtual machine".
pub const VIRTUAL_MACHINE_BIT: u8 = 1 << 4;

/// 7.1.1 BIOS Characteristics: PCI (bit 7), BIOS upgradeable (11),
/// selectable boot (16), EDD (19): what a plain x86 server board says.
const CHARACTERISTICS: u64 = (1 << 7) | (1 << 11) | (1 << 16) | (1 << 19);
/// 7.1.2.1 Extension Byte 1: ACPI supported (bit 0).
const EXTENSION_1: u8 = 1 << 0;
/// 7.1.2.2 Extension Byte 2: BIOS Boot Specification (bit 0), network boot
/// by function key (bit 1), targeted content distribution (bit 2).
const EXTENSION_2_BASE: u8 = (1 << 0) | (1 << 1) | (1 << 2);
/// Extension Byte 2, bit 3: UEFI Specification supported.
const EXTENSION_2_UEFI: u8 = 1 << 3;

/// What the type 0 structure says about the machine's firmware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiosInformation {
    pub vendor: String,
    pub version: String,
    /// mm/dd/yyyy, as SMBIOS asks.
    pub release_date: String,
    pub release: (u8, u8),
    /// OVMF: the firmware supports UEFI (Extension Byte 2, bit 3).
    pub uefi: bool,
}

/// A string of the string set: printable ASCII without NUL (an SMBIOS
/// string ends at the first NUL).
fn string_bytes(s: &str) -> impl Iterator<Item = u8> + '_ {
    s.bytes().filter(|b| *b != 0)
}

impl BiosInformation {
    /// The structure: the formatted area, then the vendor, version and date
    /// strings, then the set's closing NUL. The VM bit is never set.
    pub fn structure(&self, handle: u16) -> Vec<u8> {
        let mut s = vec![TYPE_BIOS_INFORMATION, LENGTH_3_1];
        s.extend(handle.to_le_bytes());
        s.push(1); // vendor: string 1
        s.push(2); // BIOS version: string 2
        s.extend(0xe800u16.to_le_bytes()); // starting address segment
        s.push(3); // release date: string 3
        s.push(0); // ROM size: 64 KiB x (n + 1)
        s.extend(CHARACTERISTICS.to_le_bytes());
        s.push(EXTENSION_1);
        s.push(EXTENSION_2_BASE | if self.uefi { EXTENSION_2_UEFI } else { 0 });
        s.extend([self.release.0, self.release.1]);
        s.extend([0xff, 0xff]); // no embedded controller firmware
        s.extend(0u16.to_le_bytes()); // extended ROM size: unused
        debug_assert_eq!(s.len(), LENGTH_3_1 as usize);
        for text in [&self.vendor, &self.version, &self.release_date] {
            s.extend(string_bytes(text));
            s.push(0);
        }
        s.push(0);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::smbios42::dmidecode_from_dump;

    fn sample(uefi: bool) -> BiosInformation {
        BiosInformation {
            vendor: "maas-e2e".into(),
            version: "lab-1".into(),
            release_date: "01/01/2024".into(),
            release: (1, 0),
            uefi,
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes
            .chunks(16)
            .map(|c| {
                c.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn structure_snapshots() {
        insta::assert_snapshot!("type0_bios", hex(&sample(false).structure(0)));
        insta::assert_snapshot!("type0_uefi", hex(&sample(true).structure(0)));
    }

    #[test]
    fn the_vm_bit_is_clear_where_systemd_reads_it() {
        for uefi in [false, true] {
            let s = sample(uefi).structure(0);
            assert_eq!(s[0], 0);
            // systemd-detect-virt reads byte 0x13 only when the formatted
            // area is at least 20 bytes long.
            assert!(s[1] >= 20 && s.len() >= 20);
            assert_eq!(s[EXTENSION_BYTE_2_OFFSET] & VIRTUAL_MACHINE_BIT, 0);
            assert_eq!(s[EXTENSION_BYTE_2_OFFSET] & EXTENSION_2_UEFI != 0, uefi);
            assert_eq!(&s[s.len() - 2..], &[0, 0], "string set ends with two NULs");
        }
    }

    #[test]
    fn a_nul_in_a_string_does_not_end_the_structure_early() {
        let mut b = sample(false);
        b.vendor = "a\0b".into();
        let s = b.structure(0);
        let strings = &s[LENGTH_3_1 as usize..];
        assert!(strings.starts_with(b"ab\0lab-1\0"), "{strings:?}");
    }

    #[test]
    fn dmidecode_reads_a_bios_that_is_no_virtual_machine() {
        if !crate::testing::require_program("dmidecode", "dmidecode") {
            return;
        }
        let (ok, text) = dmidecode_from_dump(&[sample(true).structure(0)], "0");
        assert!(ok, "{text}");
        for want in [
            "BIOS Information",
            "Vendor: maas-e2e",
            "Version: lab-1",
            "Release Date: 01/01/2024",
            "PCI is supported",
            "ACPI is supported",
            "UEFI is supported",
            "BIOS Revision: 1.0",
        ] {
            assert!(text.contains(want), "no `{want}` in:\n{text}");
        }
        assert!(
            !text.contains("System is a virtual machine"),
            "dmidecode sees a VM:\n{text}"
        );
        // The same check decodes QEMU's flag when it is set.
        let mut vm = sample(true).structure(0);
        vm[EXTENSION_BYTE_2_OFFSET] |= VIRTUAL_MACHINE_BIT;
        let (_, text) = dmidecode_from_dump(&[vm], "0");
        assert!(
            text.contains("System is a virtual machine"),
            "dmidecode does not decode the VM bit:\n{text}"
        );
    }
}
