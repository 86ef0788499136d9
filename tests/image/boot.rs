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

/// The in-band autodetect of the ephemeral image against a KCS BMC
/// (ipmi_sim), in the debug mode that runs only autodetect.
#[tokio::test]
async fn ephemeral_autodetect_configures_the_maas_user_in_band() {
    if !qemu::have_qemu()
        || !maas_e2e::testing::require_program("ipmi_sim", "openipmi")
        || !maas_e2e::testing::require_program("ipmitool", "ipmitool")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sim = crate::ipmi_sim::IpmiSim::start(dir.path(), &format!("me2e-img-{}", std::process::id())).await;
    // The address autodetect must report as power_address.
    let bmc_address = "10.77.0.23";
    sim.ipmitool(&["lan", "set", "1", "ipaddr", bmc_address]).await.unwrap();

    let image = image::build(&ImageSpec::ephemeral(), &image::default_cache_dir()).unwrap();
    let append = "console=ttyS0 panic=-1 maas_e2e.only=autodetect maas_e2e.debug=1 \
                  maas_e2e.ipmi_retry_base=1 maas_e2e.ipmi_dhcp_wait=1";
    let mut extra = sim.qemu_args();
    extra.extend(["-nic", "none"].map(String::from));
    let console = qemu::boot(&image, append, &extra, dir.path()).await;
    let lines: Vec<&str> = console.lines().filter(|l| l.starts_with("maas-e2e:")).collect();
    let text = lines.join("\n");

    assert!(text.contains("ipmi-locate: IPMI Version: 2.0"), "ipmi-locate found an IPMI 2.0 BMC:\n{console}");
    assert!(
        lines.iter().any(|l| l.starts_with("maas-e2e: ipmi-locate:") && l.contains("KCS")),
        "ipmi-locate reports the KCS interface:\n{text}"
    );
    assert!(text.contains("power_type=ipmi"), "{text}");
    let params_line = lines
        .iter()
        .find_map(|l| l.strip_prefix("maas-e2e: power_parameters="))
        .unwrap_or_else(|| panic!("power parameters printed:\n{console}"));
    let params: serde_json::Value = serde_json::from_str(params_line).unwrap();
    assert_eq!(params["power_address"], bmc_address);
    assert_eq!(params["power_user"], "maas");
    assert_eq!(params["power_driver"], "LAN_2_0");
    assert_eq!(params["power_boot_type"], "auto");
    assert_eq!(params["power_pass"], "<redacted>", "the password never reaches the console");

    // Committed in-band, read back in-band (bmc-config --checkout) ...
    // (Enable_User is not read back: MAAS skips it too, some BMCs omit it.)
    for setting in [
        "User3:Username=maas",
        "User3:Lan_Privilege_Limit=Administrator",
        "User3:Lan_Enable_IPMI_Msgs=Yes",
        "Lan_Channel:Volatile_Access_Mode=Always_Available",
        "Lan_Channel:Non_Volatile_Access_Mode=Always_Available",
    ] {
        assert!(lines.contains(&format!("maas-e2e: checkout {setting}").as_str()), "{setting} committed:\n{text}");
    }
    assert!(text.contains("user maas configured in User3 (attempt 1)"), "{text}");
    // ... and out-of-band from the host, over the simulator's LAN channel.
    let users = sim.ipmitool(&["user", "list", "1"]).await.unwrap();
    let maas = users.lines().find(|l| l.split_whitespace().nth(1) == Some("maas"));
    let maas = maas.unwrap_or_else(|| panic!("user maas on the BMC:\n{users}"));
    assert!(maas.starts_with('3') && maas.contains("ADMINISTRATOR"), "{maas}");
}
