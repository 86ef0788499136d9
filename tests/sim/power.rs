//! The sim's IPMI power driver running the real FreeIPMI tools
//! (ipmipower, ipmi-chassis-config) against our own BMC on loopback, whose
//! fault switches produce the errors: the argv MAAS's driver runs, MAAS's
//! error classification of what ipmipower really prints, and the retry
//! schedule of the chart's ipmi_error patch (4,4,8,8,16,16,32,32 units) for
//! power changes and power queries alike.

use std::time::Duration;

use maas_e2e::bmc::fault::{Fault, Where};
use maas_e2e::maas::PowerState;
use maas_e2e::targets::sim::{IpmiParams, IpmiPowerDriver, PowerAction, PowerError};
use maas_e2e::testing::require_program;

use crate::common::{TestBmc, fast_power, have_freeipmi};

/// ipmipower prints "BMC error" when the session's first datagram (Get
/// Channel Authentication Capabilities) gets a non-zero completion code.
fn bmc_error(times: u32) -> Fault {
    Fault::FailCommand {
        netfn: 0x06,
        cmd: 0x38,
        on: Where::Lan,
        times,
        cc: 0xFF,
    }
}

fn params(bmc: &TestBmc) -> IpmiParams {
    IpmiParams::from_json(&bmc.power_parameters()).unwrap()
}

/// The MAAS message the chart's ipmi_error patch gives "BMC error".
const BMC_ERROR_TEXT: &str = "Device not responding correctly while performing power action.  MAAS performed several retries.  Please wait and try again.";

#[tokio::test]
async fn power_on_sets_pxe_boot_then_cycles_on_if_off_then_queries() {
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    let driver = IpmiPowerDriver::new(fast_power(None));
    driver
        .perform("abc123", &params(&bmc), PowerAction::On, |n, e, _| {
            panic!("no retry expected: attempt {n}: {e}")
        })
        .await
        .unwrap();
    assert!(bmc.is_on(), "the BMC's machine is on");
    let lan = bmc.lan_commands();
    let first = |c: &str| lan.iter().position(|l| l == c);
    let boot = first("set_system_boot_options").expect("boot device set");
    let control = first("chassis_control").expect("chassis control sent");
    assert!(boot < control, "PXE boot is set before power on: {lan:?}");
    assert!(
        lan[control..].iter().any(|c| c == "get_chassis_status"),
        "the change is followed by a query: {lan:?}"
    );
    assert_eq!(driver.query(&params(&bmc)).await.unwrap(), PowerState::On);
    driver
        .perform("abc123", &params(&bmc), PowerAction::Off, |_, _, _| {})
        .await
        .unwrap();
    assert!(!bmc.is_on());
    assert_eq!(driver.query(&params(&bmc)).await.unwrap(), PowerState::Off);
}

#[tokio::test]
async fn a_transient_bmc_error_during_a_query_is_retried_and_the_query_passes() {
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    bmc.set_fault(bmc_error(2));
    let driver = IpmiPowerDriver::new(fast_power(None));
    let mut seen = Vec::new();
    let state = driver
        .query_reporting(&params(&bmc), |n, e, wait| seen.push((n, e.clone(), wait)))
        .await
        .unwrap();
    assert_eq!(state, PowerState::Off);
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (_, e, _) in &seen {
        assert_eq!(e, &PowerError::Conn(BMC_ERROR_TEXT.into()));
    }
    // The first two waits of the patch's schedule (unit = 2 ms here).
    let units: Vec<u128> = seen.iter().map(|(_, _, w)| w.as_millis() / 2).collect();
    assert_eq!(units, vec![4, 4]);
    let refused = bmc
        .lan_commands()
        .iter()
        .filter(|c| *c == "get_channel_auth_capabilities -> 0xff")
        .count();
    assert_eq!(refused, 2, "{:?}", bmc.lan_commands());
}

#[tokio::test]
async fn a_bmc_that_keeps_failing_exhausts_the_patch_schedule_for_queries_and_changes() {
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    bmc.set_fault(bmc_error(1000));
    let driver = IpmiPowerDriver::new(fast_power(None));
    let mut waits = Vec::new();
    let e = driver
        .query_reporting(&params(&bmc), |_, _, w| waits.push(w.as_millis() / 2))
        .await
        .unwrap_err();
    assert_eq!(e, PowerError::Conn(BMC_ERROR_TEXT.into()));
    assert_eq!(
        e.maas_message(),
        format!("Could not contact node's BMC: {BMC_ERROR_TEXT}")
    );
    assert_eq!(waits, vec![4, 4, 8, 8, 16, 16, 32, 32]);

    let mut waits = Vec::new();
    let e = driver
        .perform("abc123", &params(&bmc), PowerAction::On, |_, _, w| {
            waits.push(w.as_millis() / 2)
        })
        .await
        .unwrap_err();
    assert_eq!(e, PowerError::Conn(BMC_ERROR_TEXT.into()));
    assert_eq!(waits, vec![4, 4, 8, 8, 16, 16, 32, 32]);
    assert!(!bmc.is_on());
}

#[tokio::test]
async fn a_transient_bmc_error_during_power_on_is_retried_then_powers_on() {
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    let driver = IpmiPowerDriver::new(fast_power(None));
    // The chassis config (boot device) session goes first: fail it and the
    // first ipmipower session, so one change attempt fails.
    bmc.set_fault(bmc_error(2));
    let mut retries = 0;
    driver
        .perform("abc123", &params(&bmc), PowerAction::On, |_, e, _| {
            assert_eq!(e, &PowerError::Conn(BMC_ERROR_TEXT.into()));
            retries += 1;
        })
        .await
        .unwrap();
    assert_eq!(retries, 1);
    assert!(bmc.is_on());
}

#[tokio::test]
async fn a_wrong_password_is_an_authentication_error_and_not_retried() {
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    let driver = IpmiPowerDriver::new(fast_power(None));
    let mut p = params(&bmc);
    p.power_pass = "not-the-password".into();
    let e = driver
        .query_reporting(&p, |n, e, _| panic!("retried: attempt {n}: {e}"))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        PowerError::Auth("Incorrect password.  Check BMC configuration and try again.".into())
    );
    assert_eq!(
        e.maas_message(),
        "Could not authenticate to node's BMC: Incorrect password.  Check BMC configuration and try again."
    );
}

#[tokio::test]
async fn real_ipmipower_against_nothing_times_out_as_a_connection_error() {
    // Real FreeIPMI, a loopback port with no BMC: MAAS treats the timeout
    // as a connection error. One attempt only.
    if !require_program("ipmipower", "freeipmi-tools") {
        return;
    }
    let mut cfg = fast_power(None);
    cfg.wait_time = vec![1];
    cfg.command_timeout = Duration::from_secs(30);
    let driver = IpmiPowerDriver::new(cfg);
    let p = IpmiParams::from_json(&serde_json::json!({
        "power_address": "127.0.0.1", "power_user": "maas", "power_pass": "pw",
        "power_driver": "LAN_2_0"
    }))
    .unwrap();
    let e = driver.query(&p).await.unwrap_err();
    assert!(matches!(e, PowerError::Conn(_)), "{e}");
}
