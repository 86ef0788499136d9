//! Real boots under QEMU TCG.

use maas_e2e::image::{self, ImageSpec};

use crate::qemu;

#[tokio::test]
async fn marker_image_boots_prints_its_marker_and_powers_off() {
    if !qemu::have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marker = "maas-e2e-marker-image-boot-ok";
    let image = image::build(&ImageSpec::marker(marker), &image::default_cache_dir()).unwrap();
    let console = qemu::boot(&image, "console=ttyS0 panic=-1", &[], dir.path()).await;
    assert!(console.lines().any(|l| l.trim() == marker), "marker on the console:\n{console}");
    assert!(console.contains("Linux version"), "the kernel booted:\n{console}");
}
