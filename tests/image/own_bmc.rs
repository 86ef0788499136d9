//! The whole in-band story against the project's own BMC: a TCG guest with
//! QEMU's `ipmi-bmc-extern` + `isa-ipmi-kcs` connected to our in-band
//! socket runs MAAS 2.8's autodetect with the real FreeIPMI tools
//! (ipmi-locate, bmc-info, bmc-config commits, Lan_Conf read). The BMC
//! fails in-band password sets on demand (its fault switch): twice (MAAS's
//! configure_ipmi_user retries, the guest enlists with the power
//! parameters, and then on the host `ipmipower` as `maas` with the
//! password the guest chose authenticates over LAN and powers the
//! backend), or always (autodetect gives up with MAAS's text and the guest
//! enlists without a power type).

use std::time::Duration;

use maas_e2e::bmc::Fleet;
use maas_e2e::bmc::config::{
    BmcConfig, FleetConfig, InbandEndpoint, PowerConfig, PrivilegeName, UserConfig,
};
use maas_e2e::bmc::fault::{Fault, Where};
use maas_e2e::cmd::Cmd;
use maas_e2e::image::contract::{CloudConfig, Mode, kernel_cmdline};
use maas_e2e::image::{self, ImageSpec};

use crate::qemu;

const BOOT_MAC: &str = "52:54:00:e2:e0:11";
const OTHER_MAC: &str = "52:54:00:e2:e0:12";
/// The address the BMC reports in LAN parameter 3 (what autodetect reads).
const REPORTED_IP: &str = "10.77.0.31";

/// One enlistment boot of the ephemeral image against our BMC whose
/// in-band Set User Password fails `failing_password_sets` times.
struct GuestRun {
    fleet: maas_e2e::bmc::FleetHandle,
    console: String,
    enlist: crate::contract::Request,
    transcript: String,
    _dir: tempfile::TempDir,
}

async fn enlist_against_our_bmc(failing_password_sets: u32) -> GuestRun {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bmc.sock");
    let transcript = dir.path().join("transcript.jsonl");
    let mut bmc = BmcConfig::loopback(
        "guest",
        vec![UserConfig::new(
            "admin",
            "factory-pw",
            PrivilegeName::Administrator,
        )],
    );
    bmc.lan.ip = Some(REPORTED_IP.parse().unwrap());
    bmc.inband = Some(InbandEndpoint {
        socket: socket.clone(),
    });
    bmc.power = PowerConfig::Memory {
        on: true,
        powers_off_after: None,
    };
    let fleet = Fleet::start(FleetConfig {
        transcript: Some(transcript.clone()),
        bmcs: vec![bmc],
    })
    .await
    .unwrap();
    // Set User Password (App 0x47) fails twice in-band with "not supported
    // in present state": autodetect must retry and still configure the user.
    fleet
        .set_fault(
            "guest",
            Fault::FailCommand {
                netfn: 0x06,
                cmd: 0x47,
                on: Where::Inband,
                times: failing_password_sets,
                cc: 0xD5,
            },
        )
        .unwrap();

    let stub = crate::contract::MaasStub::start(move |port| {
        let base = format!("http://10.0.2.2:{port}/MAAS");
        CloudConfig {
            mode: Mode::Enlist,
            maas_url: base.clone(),
            metadata_url: format!("{base}/metadata"),
            commissioning: None,
            ipmi_retry_base_seconds: Some(1),
            ipmi_dhcp_wait_seconds: Some(1),
        }
        .render()
        .unwrap()
    })
    .await;
    let image = image::build(&ImageSpec::ephemeral(), &image::default_cache_dir()).unwrap();
    let url = format!(
        "http://10.0.2.2:{}/cloud-config/?op=get_enlist_preseed",
        stub.port
    );
    let append = kernel_cmdline(BOOT_MAC, &url, true);
    let mut extra: Vec<String> = [
        "-chardev",
        &format!(
            "socket,id=ipmi0,path={},reconnect-ms=1000",
            socket.display()
        ),
        "-device",
        "ipmi-bmc-extern,id=bmc0,chardev=ipmi0",
        "-device",
        "isa-ipmi-kcs,bmc=bmc0",
    ]
    .map(String::from)
    .to_vec();
    extra.extend(crate::contract::two_nics(BOOT_MAC, OTHER_MAC));
    let console = qemu::boot(&image, &append, &extra, dir.path()).await;

    let enlist = stub
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path_and_query == "/MAAS/api/2.0/machines/")
        .unwrap_or_else(|| panic!("no enlist POST; console:\n{console}"));
    let transcript = std::fs::read_to_string(&transcript).unwrap();
    GuestRun {
        fleet,
        console,
        enlist,
        transcript,
        _dir: dir,
    }
}

/// In-band Set User Password requests that failed with the injected 0xD5.
fn failed_password_sets(transcript: &str) -> usize {
    transcript
        .lines()
        .filter(|l| {
            l.contains("\"channel\":\"inband\"")
                && l.contains("\"name\":\"SetUserPassword\"")
                && l.contains("\"cc\":213")
        })
        .count()
}

fn have_tools() -> bool {
    qemu::have_qemu() && maas_e2e::testing::require_program("ipmipower", "freeipmi-tools")
}

#[tokio::test]
async fn guest_autodetect_against_our_bmc_then_ipmipower_as_maas() {
    if !have_tools() {
        return;
    }
    let GuestRun {
        fleet,
        console,
        enlist: post,
        transcript: t,
        _dir,
    } = enlist_against_our_bmc(2).await;
    assert_eq!(post.field("power_type"), Some("ipmi"), "{console}");
    let params: serde_json::Value =
        serde_json::from_str(post.field("power_parameters").unwrap()).unwrap();
    assert_eq!(
        params["power_address"], REPORTED_IP,
        "autodetect read LAN parameter 3"
    );
    assert_eq!(params["power_user"], "maas");
    assert_eq!(
        params["power_driver"], "LAN_2_0",
        "ipmi-locate found the KCS BMC, IPMI 2.0"
    );
    let pass = params["power_pass"].as_str().unwrap().to_string();
    assert!((10..=15).contains(&pass.len()));
    assert!(
        !console.contains(&pass),
        "the password never reaches the console"
    );

    // The BMC saw the retries in-band, and user `maas` took the first
    // empty slot (User2 is the factory admin) with what MAAS sets.
    assert_eq!(
        failed_password_sets(&t),
        2,
        "two in-band password sets failed as injected"
    );
    assert!(!t.contains(&pass), "the transcript redacts the password");
    let users = fleet.users("guest").unwrap();
    let maas = users
        .iter()
        .find(|u| u.name == "maas")
        .unwrap_or_else(|| panic!("no user maas: {users:?}"));
    assert_eq!(maas.id, 3, "first empty slot: {users:?}");
    assert!(maas.enabled && maas.lan_ipmi_messaging, "{maas:?}");
    assert_eq!(maas.lan_privilege, 4, "Administrator: {maas:?}");

    // Out-of-band, exactly as MAAS's rack does, with what the guest reported.
    let port = fleet.lan_addr("guest").unwrap().port();
    let ipmipower = |action: &'static str| {
        Cmd::new("ipmipower")
            .args([
                "-W",
                "opensesspriv",
                "-l",
                "OPERATOR",
                "--driver-type",
                "LAN_2_0",
                "-h",
                &format!("127.0.0.1:{port}"),
                "-u",
                "maas",
                "-p",
            ])
            .secret_arg(pass.clone())
            .arg(action)
            .timeout(Duration::from_secs(30))
    };
    let off = ipmipower("--off").run().await.unwrap();
    assert!(off.trim().ends_with(": ok"), "{off}");
    assert!(
        !fleet.power_state("guest").unwrap(),
        "ipmipower --off as maas powered the backend off"
    );
    let stat = ipmipower("--stat").run().await.unwrap();
    assert!(stat.trim().ends_with(": off"), "{stat}");
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_bmc_that_never_takes_a_password_fails_autodetect_with_maas_text() {
    if !have_tools() {
        return;
    }
    let run = enlist_against_our_bmc(u32::MAX).await;
    // As maas_enlist.sh: the power fields are sent, empty.
    assert_eq!(
        run.enlist.field("power_type"),
        Some(""),
        "enlisted without a power type; console:\n{}",
        run.console
    );
    assert!(
        run.console.contains("Unable to set BMC password"),
        "MAAS's text on the console:\n{}",
        run.console
    );
    // configure_ipmi_user: 5 attempts, two passwords each.
    assert_eq!(failed_password_sets(&run.transcript), 10);
    let users = run.fleet.users("guest").unwrap();
    assert!(
        !users.iter().any(|u| u.name == "maas" && u.enabled),
        "no usable maas user: {users:?}"
    );
    run.fleet.shutdown().await;
}
