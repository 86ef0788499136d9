//! The IPMI power driver executed against named FAKE FreeIPMI scripts (the
//! project's BMC is written elsewhere; until it lands these check the argv
//! MAAS's driver runs and the ipmi_error retry schedule).

use std::time::Duration;

use maas_e2e::maas::PowerState;
use maas_e2e::targets::sim::{IpmiParams, IpmiPowerDriver, PowerAction, PowerError};
use maas_e2e::testing::require_program;
use serde_json::json;

use crate::common::{TestDir, fake_calls, fast_power, write_fake_freeipmi};

fn params() -> IpmiParams {
    IpmiParams::from_json(&json!({
        "power_address": "127.0.0.1", "power_user": "maas", "power_pass": "pw-test-1",
        "power_driver": "LAN_2_0", "power_boot_type": "efi"
    }))
    .unwrap()
}

#[tokio::test]
async fn power_on_sets_pxe_boot_then_cycles_on_if_off() {
    let dir = TestDir::new("pw-on");
    write_fake_freeipmi(&dir.0, 0);
    let driver = IpmiPowerDriver::new(fast_power(Some(&dir.0)));
    driver
        .perform("abc123", &params(), PowerAction::On, |_, _, _| {
            panic!("no retry expected")
        })
        .await
        .unwrap();
    let calls = fake_calls(&dir.0);
    assert_eq!(
        calls,
        vec![
            format!("ipmi-chassis-config -W opensesspriv -l OPERATOR --driver-type LAN_2_0 -h 127.0.0.1 -u maas -p pw-test-1 --commit --filename {}", calls[0].rsplit(' ').next().unwrap()),
            "ipmipower -W opensesspriv -l OPERATOR --driver-type LAN_2_0 -h 127.0.0.1 -u maas -p pw-test-1 --cycle --on-if-off".to_string(),
            "ipmipower -W opensesspriv -l OPERATOR --driver-type LAN_2_0 -h 127.0.0.1 -u maas -p pw-test-1 --stat".to_string(),
        ]
    );
    let cfg = std::fs::read_to_string(dir.0.join("chassis.cfg")).unwrap();
    assert!(
        cfg.contains("BIOS_Boot_Type                                EFI")
            && cfg.contains("Boot_Device                                   PXE"),
        "{cfg}"
    );
    assert_eq!(driver.query(&params()).await.unwrap(), PowerState::On);
    driver
        .perform("abc123", &params(), PowerAction::Off, |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(driver.query(&params()).await.unwrap(), PowerState::Off);
}

#[tokio::test]
async fn bmc_error_is_retried_with_the_patch_schedule_then_fails() {
    let dir = TestDir::new("pw-err");
    write_fake_freeipmi(&dir.0, 1000);
    let driver = IpmiPowerDriver::new(fast_power(Some(&dir.0)));
    let mut waits = Vec::new();
    let e = driver
        .perform(
            "abc123",
            &params(),
            PowerAction::On,
            |attempt, err, wait| {
                assert!(matches!(err, PowerError::Conn(_)), "{err}");
                waits.push((attempt, wait));
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, PowerError::Conn(ref m) if m.contains("BMC returned an error")),
        "{e}"
    );
    // 8 attempts; the 7 retried ones waited 4,4,8,8,16,16,32 units (unit = 2 ms here).
    let units: Vec<u128> = waits.iter().map(|(_, w)| w.as_millis() / 2).collect();
    assert_eq!(units, vec![4, 4, 8, 8, 16, 16, 32]);
    let power_calls = fake_calls(&dir.0)
        .iter()
        .filter(|c| c.starts_with("ipmipower") && c.contains("--cycle --on-if-off"))
        .count();
    assert_eq!(power_calls, 8);
}

#[tokio::test]
async fn bmc_error_then_recovery_powers_on() {
    let dir = TestDir::new("pw-rec");
    write_fake_freeipmi(&dir.0, 2);
    let driver = IpmiPowerDriver::new(fast_power(Some(&dir.0)));
    let mut retries = 0;
    driver
        .perform("abc123", &params(), PowerAction::On, |_, _, _| retries += 1)
        .await
        .unwrap();
    assert_eq!(retries, 2);
    assert_eq!(driver.query(&params()).await.unwrap(), PowerState::On);
}

#[tokio::test]
async fn real_ipmipower_against_nothing_times_out_as_a_connection_error() {
    // Real FreeIPMI, a loopback address with no BMC: MAAS treats the
    // timeout as a connection error. One attempt only.
    if !require_program("ipmipower", "freeipmi-tools") {
        return;
    }
    let mut cfg = fast_power(None);
    cfg.wait_time = vec![1];
    cfg.command_timeout = Duration::from_secs(30);
    let driver = IpmiPowerDriver::new(cfg);
    let mut p = params();
    p.power_address = "127.0.0.1".into();
    let e = driver.query(&p).await.unwrap_err();
    assert!(matches!(e, PowerError::Conn(_)), "{e}");
}
