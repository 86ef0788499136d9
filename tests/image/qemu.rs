//! Boot an image under QEMU TCG with the serial console written to a file.

use std::path::Path;
use std::time::Duration;

use maas_e2e::cmd::Cmd;
use maas_e2e::image::Image;

/// The console text of one boot that ends in power off (QEMU exits).
pub async fn boot(image: &Image, append: &str, extra: &[String], dir: &Path) -> String {
    let console = dir.join("console.log");
    let cmd = Cmd::new("qemu-system-x86_64")
        .args([
            "-machine",
            "pc",
            "-accel",
            "tcg",
            "-cpu",
            "Haswell-noTSX",
            "-m",
            "512",
        ])
        .args(["-nographic", "-no-reboot", "-monitor", "none"])
        .arg("-kernel")
        .arg(path(&image.kernel))
        .arg("-initrd")
        .arg(path(&image.initrd))
        .arg("-append")
        .arg(append)
        .arg("-serial")
        .arg(format!("file:{}", path(&console)))
        .args(extra.iter().cloned())
        .timeout(Duration::from_secs(180));
    let result = cmd.run().await;
    let text = std::fs::read_to_string(&console).unwrap_or_default();
    if let Err(e) = result {
        panic!("QEMU boot failed: {e}\n--- console ---\n{text}");
    }
    text
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Whether QEMU for x86_64 is here (panics under CI=true when not).
pub fn have_qemu() -> bool {
    maas_e2e::testing::require_program("qemu-system-x86_64", "qemu-system-x86")
}
