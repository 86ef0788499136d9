//! FreeIPMI with MAAS's exact flags: ipmipower (LAN_2_0 and LAN),
//! ipmi-chassis-config, bmc-info, and ipmi-config core sections over LAN.

use maas_e2e::bmc::config::SessionType;

use crate::common::*;

/// MAAS's power command line (provisioningserver/drivers/power/ipmi.py).
async fn ipmipower(
    port: u16,
    who: (&str, &str),
    driver: &str,
    extra: &[&str],
) -> maas_e2e::cmd::CmdOutput {
    let mut args = vec![
        "-W",
        "opensesspriv",
        "-l",
        "OPERATOR",
        "--driver-type",
        driver,
    ];
    args.extend_from_slice(extra);
    freeipmi("ipmipower", port, who, &args).await
}

/// ipmipower prints `HOST: RESULT`; HOST drops the port in some versions.
fn says(out: &maas_e2e::cmd::CmdOutput, port: u16, word: &str) -> bool {
    let line = out.stdout.trim();
    out.status.success()
        && (line == format!("127.0.0.1:{port}: {word}") || line == format!("127.0.0.1: {word}"))
}

async fn ipmipower_flows(driver: &str, suite: Option<&str>, v15_only: bool) {
    if !have("ipmipower", "freeipmi-tools") {
        return;
    }
    let mut b = bmc("n1");
    if v15_only {
        b.session_types = vec![SessionType::Ipmi15];
    }
    let lab = Lab::start(vec![b]).await;
    let port = lab.port("n1");
    let run = |extra: &'static [&'static str]| async move {
        let mut a: Vec<&str> = suite.map(|s| vec!["-I", s]).unwrap_or_default();
        a.extend_from_slice(extra);
        ipmipower(port, OPERATOR, driver, &a).await
    };
    let out = run(&["--stat"]).await;
    assert!(says(&out, port, "off"), "{out:?}");
    let out = run(&["--cycle", "--on-if-off"]).await;
    assert!(says(&out, port, "ok"), "{out:?}");
    assert!(
        lab.fleet.power_state("n1").unwrap(),
        "--on-if-off powered on"
    );
    assert!(says(&run(&["--stat"]).await, port, "on"));
    let out = run(&["--cycle", "--on-if-off"]).await;
    assert!(says(&out, port, "ok"), "{out:?}");
    let out = run(&["--soft"]).await;
    assert!(says(&out, port, "ok"), "{out:?}");
    assert!(!lab.fleet.power_state("n1").unwrap());
    assert!(says(&run(&["--on"]).await, port, "ok"));
    assert!(lab.fleet.power_state("n1").unwrap());
    assert!(says(&run(&["--off"]).await, port, "ok"));
    assert!(!lab.fleet.power_state("n1").unwrap());
    lab.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmipower_lan20_default_suite() {
    ipmipower_flows("LAN_2_0", None, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmipower_lan20_suite_3() {
    ipmipower_flows("LAN_2_0", Some("3"), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmipower_lan20_suite_17() {
    ipmipower_flows("LAN_2_0", Some("17"), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmipower_lan15_against_v15_only_bmc() {
    ipmipower_flows("LAN", None, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmipower_lan20_refused_by_v15_only_bmc() {
    if !have("ipmipower", "freeipmi-tools") {
        return;
    }
    let mut b = bmc("n1");
    b.session_types = vec![SessionType::Ipmi15];
    let lab = Lab::start(vec![b]).await;
    let port = lab.port("n1");
    let out = ipmipower(port, OPERATOR, "LAN_2_0", &["--stat"]).await;
    assert!(out.stdout.contains("ipmi 2.0 unavailable"), "{out:?}");
    lab.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chassis_config_sets_pxe_and_bmc_info() {
    if !have("ipmi-chassis-config", "freeipmi-tools") || !have("bmc-info", "freeipmi-tools") {
        return;
    }
    let lab = Lab::start(vec![bmc("n1")]).await;
    let port = lab.port("n1");
    let file = lab.dir.path().join("boot.conf");
    std::fs::write(&file, "Section Chassis_Boot_Flags\n\tBoot_Flags_Persistent No\n\tBIOS_Boot_Type PC-COMPATIBLE\n\tBoot_Device PXE\nEndSection\n").unwrap();
    let out = freeipmi(
        "ipmi-chassis-config",
        port,
        OPERATOR,
        &[
            "-W",
            "opensesspriv",
            "--driver-type",
            "LAN_2_0",
            "-l",
            "OPERATOR",
            "--commit",
            "--filename",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let flags = lab.fleet.bmc("n1").unwrap().state().boot.flags;
    assert_eq!(maas_e2e::bmc::state::boot_device_name(&flags), "pxe");
    assert_eq!(
        flags[0] & 0xE0,
        0x80,
        "valid, next boot only, legacy: {flags:x?}"
    );
    let out = freeipmi(
        "ipmi-chassis-config",
        port,
        ADMIN,
        &[
            "--driver-type",
            "LAN_2_0",
            "--checkout",
            "--section",
            "Chassis_Boot_Flags",
        ],
    )
    .await;
    assert!(
        out.status.success() && out.stdout.contains("PXE"),
        "{out:?}"
    );

    let out = freeipmi("bmc-info", port, ADMIN, &["--driver-type", "LAN_2_0"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("IPMI Version") && out.stdout.contains("2.0"),
        "{out:?}"
    );
    let guid = lab.fleet.bmc("n1").unwrap().state().identity.system_guid;
    let printed: String = out
        .stdout
        .lines()
        .find(|l| l.starts_with("System GUID"))
        .unwrap_or_default()
        .split(':')
        .nth(1)
        .unwrap_or_default()
        .trim()
        .replace('-', "");
    let mut reversed = guid;
    reversed.reverse();
    assert!(
        printed == hex::encode(guid) || printed == hex::encode(reversed),
        "system GUID printed: {printed} vs {guid:x?}"
    );
    lab.fleet.shutdown().await;
}

/// What MAAS's commissioning does in-band (bmc-config --commit of user
/// `maas`), done over LAN here; then MAAS's power command as that user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmi_config_core_creates_maas_user_then_ipmipower() {
    if !have("ipmi-config", "freeipmi-tools") || !have("ipmipower", "freeipmi-tools") {
        return;
    }
    let lab = Lab::start(vec![bmc("n1")]).await;
    let port = lab.port("n1");
    let pw = "Zq8fAe2xWm4pLr7tKc3v"; // 20 bytes, as MAAS generates
    let pairs = [
        "User5:Username=maas".to_string(),
        format!("User5:Password={pw}"),
        "User5:Enable_User=Yes".into(),
        "User5:Lan_Privilege_Limit=Administrator".into(),
        "User5:Lan_Enable_IPMI_Msgs=Yes".into(),
        "Lan_Channel:Volatile_Access_Mode=Always_Available".into(),
        "Lan_Channel:Non_Volatile_Access_Mode=Always_Available".into(),
        "Rmcpplus_Conf_Privilege:Maximum_Privilege_Cipher_Suite_Id_3=Administrator".into(),
        "Rmcpplus_Conf_Privilege:Maximum_Privilege_Cipher_Suite_Id_8=Administrator".into(),
    ];
    let mut args = vec![
        "--category=core".to_string(),
        "-D".into(),
        "LAN_2_0".into(),
        "--commit".into(),
    ];
    for p in &pairs {
        args.push(format!("--key-pair={p}"));
    }
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = freeipmi("ipmi-config", port, ADMIN, &arg_refs).await;
    assert!(out.status.success(), "{out:?}");
    let users = lab.fleet.users("n1").unwrap();
    let maas = users
        .iter()
        .find(|u| u.name == "maas")
        .expect("user maas created");
    assert!(
        maas.enabled && maas.lan_privilege == 4 && maas.lan_ipmi_messaging,
        "{maas:?}"
    );

    let out = freeipmi(
        "ipmi-config",
        port,
        ADMIN,
        &[
            "--category=core",
            "-D",
            "LAN_2_0",
            "--checkout",
            "--section",
            "Lan_Conf",
        ],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("IP_Address") && l.contains("192.0.2.10") && !l.contains("Source")),
        "{out:?}"
    );
    let out = freeipmi(
        "ipmi-config",
        port,
        ADMIN,
        &[
            "--category=core",
            "-D",
            "LAN_2_0",
            "--checkout",
            "--section",
            "User5",
        ],
    )
    .await;
    assert!(
        out.status.success() && out.stdout.contains("maas"),
        "{out:?}\n{:#?}",
        lab.failed_commands()
    );

    // MAAS 2.8's autodetect reads single keys (`bmc-config --checkout
    // --key-pair=S:K` through check_output): each must exit 0.
    for key in [
        "Lan_Conf:IP_Address",
        "Lan_Conf:MAC_Address",
        "Lan_Channel:Volatile_Access_Mode",
        "User5:Username",
        "Lan_Conf_Security_Keys:K_G",
    ] {
        let kp = format!("--key-pair={key}");
        let out = freeipmi(
            "ipmi-config",
            port,
            ADMIN,
            &["--category=core", "-D", "LAN_2_0", "--checkout", &kp],
        )
        .await;
        assert!(
            out.status.success(),
            "{key}: {out:?}\n{:#?}",
            lab.failed_commands()
        );
    }
    // The whole core category reads every section (it exits 1 because the
    // optional IPv6 LAN parameters answer 0x80 "not supported").
    let out = freeipmi(
        "ipmi-config",
        port,
        ADMIN,
        &["--category=core", "-D", "LAN_2_0", "--checkout"],
    )
    .await;
    for section in [
        "Section User5",
        "Section Lan_Channel",
        "Section Lan_Conf",
        "Section Lan_Conf_Auth",
        "Section Lan_Conf_Security_Keys",
        "Section Rmcpplus_Conf_Privilege",
        "Section SOL_Conf",
    ] {
        assert!(out.stdout.contains(section), "{section} missing: {out:?}");
    }

    let out = ipmipower(port, ("maas", pw), "LAN_2_0", &["--on"]).await;
    assert!(says(&out, port, "ok"), "{out:?}");
    assert!(lab.fleet.power_state("n1").unwrap());
    lab.fleet.shutdown().await;
}
