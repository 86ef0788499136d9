//! A minimal marker initramfs for the lab tests ONLY (not the project's
//! image builder, which lives in src/image): busybox-static and an /init
//! that prints a marker line on the console and powers off.
//!
//! The cpio "newc" format is written here directly: a header of 13 hex
//! fields per entry, name and data padded to 4 bytes, ending in TRAILER!!!.

use std::path::Path;

/// The line /init prints; the token comes from the kernel command line, so
/// the marker proves our boot script's command line reached the kernel.
pub const MARKER_PREFIX: &str = "MAAS-E2E-LAB-INIT-OK";

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for w in $(cat /proc/cmdline); do
  case "$w" in e2e_token=*) token="${w#e2e_token=}" ;; esac
done
model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)
echo "MAAS-E2E-LAB-INIT-OK token=$token cpu=$model" > /dev/console
sync
poweroff -f
"#;

struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let fields = [
            self.ino, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, rdev.0, rdev.1, name.len() as u32 + 1, 0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }
    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }
}

/// Build the initramfs (uncompressed newc cpio) into `dest`.
pub fn build(dest: &Path) -> std::io::Result<()> {
    let busybox = std::fs::read("/bin/busybox")?;
    let mut c = Cpio { out: Vec::with_capacity(busybox.len() + 4096), ino: 0 };
    for d in ["bin", "dev", "proc", "sys", "tmp"] {
        c.entry(d, 0o040755, b"", (0, 0));
    }
    // Device nodes so the kernel has a console before devtmpfs is mounted.
    c.entry("dev/console", 0o020600, b"", (5, 1));
    c.entry("dev/ttyS0", 0o020600, b"", (4, 64));
    c.entry("bin/busybox", 0o100755, &busybox, (0, 0));
    c.entry("init", 0o100755, INIT.as_bytes(), (0, 0));
    c.entry("TRAILER!!!", 0, b"", (0, 0));
    std::fs::write(dest, c.out)
}
