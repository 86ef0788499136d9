//! Real boots under QEMU TCG.

use maas_e2e::image::contract::{CloudConfig, Commissioning, Mode, kernel_cmdline};
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
    assert!(
        console.lines().any(|l| l.trim() == marker),
        "marker on the console:\n{console}"
    );
    assert!(
        console.contains("Linux version"),
        "the kernel booted:\n{console}"
    );
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
    let sim =
        crate::ipmi_sim::IpmiSim::start(dir.path(), &format!("me2e-img-{}", std::process::id()))
            .await;
    // The address autodetect must report as power_address.
    let bmc_address = "10.77.0.23";
    sim.ipmitool(&["lan", "set", "1", "ipaddr", bmc_address])
        .await
        .unwrap();

    let image = image::build(&ImageSpec::ephemeral(), &image::default_cache_dir()).unwrap();
    let append = "console=ttyS0 panic=-1 maas_e2e.only=autodetect maas_e2e.debug=1 \
                  maas_e2e.ipmi_retry_base=1 maas_e2e.ipmi_dhcp_wait=1";
    let mut extra = sim.qemu_args();
    extra.extend(["-nic", "none"].map(String::from));
    let console = qemu::boot(&image, append, &extra, dir.path()).await;
    let lines: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with("maas-e2e:"))
        .collect();
    let text = lines.join("\n");

    assert!(
        text.contains("ipmi-locate: IPMI Version: 2.0"),
        "ipmi-locate found an IPMI 2.0 BMC:\n{console}"
    );
    assert!(
        // "Probing KCS device using DMIDECODE... done" (the others say FAILED)
        lines.iter().any(|l| {
            l.starts_with("maas-e2e: ipmi-locate: Probing KCS device") && l.ends_with("done")
        }),
        "ipmi-locate reports the KCS interface:\n{text}"
    );
    assert!(!text.contains("insmod"), "every module loads:\n{text}");
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
    assert_eq!(
        params["power_pass"], "<redacted>",
        "the password never reaches the console"
    );

    // Committed in-band, read back in-band (bmc-config --checkout) ...
    // (Enable_User is not read back: MAAS skips it too, some BMCs omit it.)
    for setting in [
        "User3:Username=maas",
        "User3:Lan_Privilege_Limit=Administrator",
        "User3:Lan_Enable_IPMI_Msgs=Yes",
        "Lan_Channel:Volatile_Access_Mode=Always_Available",
        "Lan_Channel:Non_Volatile_Access_Mode=Always_Available",
    ] {
        assert!(
            lines.contains(&format!("maas-e2e: checkout {setting}").as_str()),
            "{setting} committed:\n{text}"
        );
    }
    assert!(
        text.contains("user maas configured in User3 (attempt 1)"),
        "{text}"
    );
    // ... and out-of-band from the host, over the simulator's LAN channel.
    let users = sim.ipmitool(&["user", "list", "1"]).await.unwrap();
    let maas = users
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("maas"));
    let maas = maas.unwrap_or_else(|| panic!("user maas on the BMC:\n{users}"));
    assert!(
        maas.starts_with('3') && maas.contains("ADMINISTRATOR"),
        "{maas}"
    );
}

const BOOT_MAC: &str = "52:54:00:e2:e0:01";
const OTHER_MAC: &str = "52:54:00:e2:e0:02";

/// Boot the ephemeral image in `mode` against the stub, with ipmi_sim as
/// the BMC and two NICs; returns what the guest sent and the console.
async fn run_ephemeral(mode: &str) -> Option<(Vec<crate::contract::Request>, String)> {
    if !qemu::have_qemu()
        || !maas_e2e::testing::require_program("ipmi_sim", "openipmi")
        || !maas_e2e::testing::require_program("ipmitool", "ipmitool")
    {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let sim = crate::ipmi_sim::IpmiSim::start(
        dir.path(),
        &format!("me2e-img-{mode}-{}", std::process::id()),
    )
    .await;
    sim.ipmitool(&["lan", "set", "1", "ipaddr", "10.77.0.24"])
        .await
        .unwrap();
    // A slot already named maas (a machine commissioned before): MAAS
    // reuses it and stops scanning, which spares ~60 slot reads under TCG.
    sim.ipmitool(&["user", "set", "name", "4", "maas"])
        .await
        .unwrap();
    // The cloud-config comes from the library's renderer, so this also
    // proves the renderer and the guest agree.
    let mode = match mode {
        "enlist" => Mode::Enlist,
        _ => Mode::Commission,
    };
    let stub = crate::contract::MaasStub::start(move |port| {
        let base = format!("http://10.0.2.2:{port}/MAAS");
        CloudConfig {
            mode,
            maas_url: base.clone(),
            metadata_url: format!("{base}/metadata"),
            commissioning: (mode == Mode::Commission).then(|| Commissioning {
                system_id: "abc123".into(),
                oauth_key: "ckey:tkey:tsecret".into(),
                hostname: "node-1".into(),
            }),
            ipmi_retry_base_seconds: Some(1),
            ipmi_dhcp_wait_seconds: Some(1),
        }
        .render()
        .unwrap()
    })
    .await;
    let image = image::build(&ImageSpec::ephemeral(), &image::default_cache_dir()).unwrap();
    // A `?` as in the sim's preseed URLs: the guest must not glob it.
    let url = format!("http://10.0.2.2:{}/cloud-config/?op=get_preseed", stub.port);
    let append = kernel_cmdline(BOOT_MAC, &url, true);
    let mut extra = sim.qemu_args();
    extra.extend(crate::contract::two_nics(BOOT_MAC, OTHER_MAC));
    let console = qemu::boot(&image, &append, &extra, dir.path()).await;
    Some((stub.requests(), console))
}

#[tokio::test]
async fn ephemeral_enlists_with_ipmi_power_parameters_and_every_mac() {
    let Some((requests, console)) = run_ephemeral("enlist").await else {
        return;
    };
    let paths: Vec<_> = requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.path_and_query))
        .collect();
    let registered = format!(
        "GET /MAAS/api/2.0/machines/?op=is_registered&mac_address={}",
        BOOT_MAC.replace(':', "%3A")
    );
    assert!(paths.contains(&registered), "{paths:?}\n{console}");
    // As maas-enlist: every MAC is checked, the boot one first.
    let other = format!(
        "GET /MAAS/api/2.0/machines/?op=is_registered&mac_address={}",
        OTHER_MAC.replace(':', "%3A")
    );
    let at = |p: &str| paths.iter().position(|x| x == p);
    assert!(at(&registered) < at(&other), "{paths:?}");
    let post = requests
        .iter()
        .find(|r| r.method == "POST" && r.path_and_query == "/MAAS/api/2.0/machines/")
        .unwrap_or_else(|| panic!("enlist POST: {paths:?}\n{console}"));
    assert!(post.authorization.is_none(), "enlistment is anonymous");
    assert_eq!(post.field("architecture"), Some("amd64"));
    assert_eq!(post.field("subarchitecture"), Some("generic"));
    assert_eq!(post.field("hostname"), Some(""), "MAAS picks the name");
    assert_eq!(post.field("power_type"), Some("ipmi"));
    let mut macs = post.fields("mac_addresses");
    macs.sort();
    assert_eq!(macs, [BOOT_MAC, OTHER_MAC], "every NIC");
    let params: serde_json::Value =
        serde_json::from_str(post.field("power_parameters").unwrap()).unwrap();
    assert_eq!(params["power_address"], "10.77.0.24");
    assert_eq!(params["power_user"], "maas");
    assert_eq!(params["power_driver"], "LAN_2_0");
    assert_eq!(params["power_boot_type"], "auto");
    let pass = params["power_pass"].as_str().unwrap();
    assert!(
        (10..=15).contains(&pass.len()),
        "MAAS's 10-15 character password"
    );
    assert!(
        !console.contains(pass),
        "the password never reaches the console"
    );
    assert!(
        console.contains("user maas configured in User4"),
        "the existing maas slot is reused:\n{console}"
    );
    assert!(console.contains("maas-e2e: powering off"), "{console}");
}

#[tokio::test]
async fn ephemeral_commissions_with_signals_scripts_and_oauth() {
    let Some((requests, console)) = run_ephemeral("commission").await else {
        return;
    };
    let signals: Vec<_> = requests
        .iter()
        .filter(|r| {
            r.method == "POST" && r.path_and_query == "/MAAS/metadata/2012-03-01/?op=signal"
        })
        .collect();
    assert!(!signals.is_empty(), "signals sent:\n{console}");
    for s in &signals {
        let auth = s.authorization.as_deref().expect("every signal is signed");
        assert!(auth.starts_with("OAuth "), "{auth}");
        for part in [
            "oauth_version=\"1.0\"",
            "oauth_signature_method=\"PLAINTEXT\"",
            "oauth_consumer_key=\"ckey\"",
            "oauth_token=\"tkey\"",
            "oauth_signature=\"&tsecret\"",
        ] {
            assert!(auth.contains(part), "{part} in {auth}");
        }
        assert!(
            auth.contains("oauth_nonce=\"") && auth.contains("oauth_timestamp=\""),
            "{auth}"
        );
    }
    let statuses: Vec<_> = signals
        .iter()
        .map(|s| s.field("status").unwrap_or(""))
        .collect();
    // MAAS's commissioning order: "Resetting BMC password" before the BMC
    // is touched, then the new power settings; testing after the scripts.
    assert_eq!(statuses.first(), Some(&"WORKING"));
    assert_eq!(signals[0].field("error"), Some("Resetting BMC password"));
    assert!(statuses.contains(&"TESTING"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"OK"), "{statuses:?}\n{console}");
    assert!(!statuses.contains(&"FAILED"), "{console}");
    let power = signals
        .iter()
        .find(|s| s.field("power_type").is_some())
        .expect("the new power settings are sent");
    assert_eq!(power.field("error"), Some("Finished setting BMC password"));
    assert_eq!(power.field("power_type"), Some("ipmi"));
    let params: serde_json::Value =
        serde_json::from_str(power.field("power_parameters").unwrap()).unwrap();
    assert_eq!(params["power_user"], "maas");
    assert_eq!(params["power_address"], "10.77.0.24");

    // Each result is a multipart upload: NAME, NAME.out (stdout), NAME.err.
    let script = |name: &str| {
        let out = format!("{name}.out");
        let s = signals
            .iter()
            .find(|s| s.field(&out).is_some())
            .unwrap_or_else(|| panic!("{name} result sent"));
        assert_eq!(s.field("status"), Some("WORKING"));
        assert_eq!(s.field("exit_status"), Some("0"), "{name}");
        assert!(s.field(name).is_some(), "{name}: the combined output part");
        s.field(&out).unwrap().to_string()
    };
    assert!(script("00-maas-00-support-info").contains("Linux"));
    let nics: serde_json::Value =
        serde_json::from_str(&script("40-maas-01-network-interfaces")).unwrap();
    let nics = nics["interfaces"].as_array().unwrap();
    assert_eq!(nics.len(), 2, "{nics:?}");
    let boot: Vec<_> = nics
        .iter()
        .filter(|n| n["boot"] == true)
        .map(|n| n["mac"].as_str().unwrap())
        .collect();
    assert_eq!(boot, [BOOT_MAC]);
    assert!(
        nics.iter()
            .any(|n| n["mac"] == OTHER_MAC && n["boot"] == false)
    );
    let hw: serde_json::Value = serde_json::from_str(&script("50-maas-01-commissioning")).unwrap();
    assert_eq!(hw["cpu_count"], 1);
    assert!(
        hw["cpu_model"].as_str().unwrap().contains("Haswell"),
        "{hw}"
    );
    let mib = hw["memory_mib"].as_u64().unwrap();
    assert!((300..=512).contains(&mib), "512 MiB VM reports {mib}");
    assert!(hw["disks"].is_array());
    assert!(
        !console.contains("tsecret"),
        "the OAuth secret never reaches the console"
    );
}
