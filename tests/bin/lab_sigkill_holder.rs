//! Helper binary, not a test: tests/lab.rs `sweep_after_sigkill_leaves_nothing`
//! starts it with a run id; it makes a lab with its servers, a packet
//! capture and a booting VM, writes READY into the run directory, and waits
//! to be SIGKILLed (so nothing of it runs a destructor).
//! Usage: lab-sigkill-holder RUN_ID

#[allow(dead_code)] // the lab tests use the rest of the fixture
#[path = "../lab/support.rs"]
mod support;

use std::time::Duration;

use maas_e2e::lab::capture::{self, Capture};
use maas_e2e::lab::dhcp::Firmware;
use maas_e2e::lab::vm;
use support::{BootFlow, TestLab};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let run_id = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: lab-sigkill-holder RUN_ID"))?;
    let mut lab = TestLab::with_servers(&run_id, BootFlow::IpxeScript, true, &[]).await;
    let conn = vm::connect()?;
    let spec = lab.domain(
        "victim",
        Firmware::Bios,
        vm::NicModel::Virtio,
        "52:54:00:e2:00:09",
    );
    vm::define(&conn, &spec).await?;
    vm::start(&conn, &spec.name)?;
    let _capture = Capture::start(
        &lab.spec.netns,
        &lab.spec.segments[0].veth_lab,
        &capture::capture_path(&lab.run_dir),
    )
    .await?;
    std::fs::write(lab.run_dir.join("READY"), b"ready")?;
    std::mem::forget(lab); // a killed process runs no destructor either
    tokio::time::sleep(Duration::from_secs(600)).await;
    Ok(())
}
