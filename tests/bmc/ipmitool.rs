//! ipmitool over IPMI 1.5 (`-I lan`) and RMCP+ (`-I lanplus -C 3/17`).

use maas_e2e::bmc::power::PowerOp;

use crate::common::*;

/// Every ipmitool flow MAAS and operators use, on one interface/suite.
async fn ipmitool_flows(iface: &str, suite: Option<u8>) {
    if !have("ipmitool", "ipmitool") {
        return;
    }
    let lab = Lab::start(vec![bmc("n1")]).await;
    let port = lab.port("n1");
    let it = |args: &'static [&'static str]| ipmitool(port, iface, suite, ADMIN, args);

    let out = it(&["power", "status"]).await;
    assert!(
        out.status.success() && out.stdout.contains("Chassis Power is off"),
        "{out:?}"
    );
    let out = it(&["power", "on"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(lab.fleet.power_state("n1").unwrap());
    let out = it(&["power", "status"]).await;
    assert!(out.stdout.contains("Chassis Power is on"), "{out:?}");
    // Each action reaches the backend exactly once (a retransmitted
    // Chassis Control must not cycle the machine twice).
    let actions = || lab.fleet.bmc("n1").unwrap().power_actions().unwrap();
    let before = actions().len();
    assert!(it(&["power", "cycle"]).await.status.success());
    assert_eq!(actions()[before..], [PowerOp::Cycle]);
    assert!(it(&["power", "reset"]).await.status.success());
    assert_eq!(actions()[before..], [PowerOp::Cycle, PowerOp::Reset]);
    assert!(lab.fleet.power_state("n1").unwrap());
    assert!(it(&["power", "off"]).await.status.success());
    assert!(!lab.fleet.power_state("n1").unwrap());

    let out = it(&["chassis", "bootdev", "pxe", "options=efiboot,persistent"]).await;
    assert!(out.status.success(), "{out:?}");
    let flags = lab.fleet.bmc("n1").unwrap().state().boot.flags;
    assert_eq!(maas_e2e::bmc::state::boot_device_name(&flags), "pxe");
    assert_eq!(flags[0] & 0xE0, 0xE0, "valid, persistent, EFI: {flags:x?}");

    let out = it(&["mc", "info"]).await;
    assert!(
        out.status.success() && out.stdout.contains("IPMI Version") && out.stdout.contains("2.0"),
        "{out:?}"
    );

    let out = it(&["lan", "print", "1"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("192.0.2.10"),
        "LAN parameter 3 is the lab address: {out:?}"
    );
    assert!(out.stdout.contains("Cipher Suite Priv Max"), "{out:?}");

    let out = it(&["channel", "getciphers", "ipmi", "1"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("17 ")),
        "{out:?}"
    );
    assert!(
        out.stdout.lines().any(|l| l.trim_start().starts_with("3 ")),
        "{out:?}"
    );

    // Users: name, password, enable, channel access; then log in as the new user.
    assert!(
        it(&["user", "set", "name", "5", "maas"])
            .await
            .status
            .success()
    );
    assert!(
        it(&["user", "set", "password", "5", "s3cretpw"])
            .await
            .status
            .success()
    );
    assert!(it(&["user", "enable", "5"]).await.status.success());
    let out = it(&[
        "channel",
        "setaccess",
        "1",
        "5",
        "callin=on",
        "ipmi=on",
        "link=on",
        "privilege=4",
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    let out = it(&["user", "list", "1"]).await;
    assert!(
        out.status.success() && out.stdout.contains("maas"),
        "{out:?}"
    );
    let users = lab.fleet.users("n1").unwrap();
    let maas = users.iter().find(|u| u.name == "maas").unwrap();
    assert!(
        maas.enabled && maas.lan_ipmi_messaging && maas.lan_privilege == 4,
        "{maas:?}"
    );
    let out = ipmitool(
        port,
        iface,
        suite,
        ("maas", "s3cretpw"),
        &["power", "status"],
    )
    .await;
    assert!(out.status.success(), "new user logs in: {out:?}");

    let t = lab.transcript();
    assert!(
        t.contains("\"name\":\"ChassisControl\""),
        "transcript records commands"
    );
    assert!(
        !t.contains(&hex::encode("s3cretpw")) && !t.contains("s3cretpw"),
        "password redacted"
    );
    lab.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmitool_lan_v15() {
    ipmitool_flows("lan", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmitool_lanplus_suite_3() {
    ipmitool_flows("lanplus", Some(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmitool_lanplus_suite_17() {
    ipmitool_flows("lanplus", Some(17)).await;
}

/// Without `-C`, ipmitool asks for the cipher suites before the session
/// (session-less RMCP+) and picks the best one; with `-L OPERATOR` it opens
/// the session at that level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmitool_lanplus_default_suite_and_operator_level() {
    if !have("ipmitool", "ipmitool") {
        return;
    }
    let lab = Lab::start(vec![bmc("n1")]).await;
    let port = lab.port("n1");
    let out = ipmitool(port, "lanplus", None, ADMIN, &["power", "status"]).await;
    assert!(
        out.status.success() && out.stdout.contains("Chassis Power is off"),
        "{out:?}"
    );
    assert!(
        lab.transcript().contains("cipher suite 17"),
        "best suite chosen: 17"
    );
    let out = ipmitool(
        port,
        "lanplus",
        None,
        OPERATOR,
        &["-L", "OPERATOR", "power", "on"],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    assert!(lab.fleet.power_state("n1").unwrap());
    let out = ipmitool(
        port,
        "lanplus",
        None,
        OPERATOR,
        &["-L", "OPERATOR", "user", "set", "name", "7", "x"],
    )
    .await;
    assert!(
        !out.status.success(),
        "OPERATOR cannot change users: {out:?}"
    );
    lab.fleet.shutdown().await;
}
