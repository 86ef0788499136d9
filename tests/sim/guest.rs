//! The metadata contract driven from busybox sh alone, the way an ephemeral
//! environment can: source the preseed, build the OAuth PLAINTEXT header in
//! shell, signal with busybox wget. (A guest-like script for this test; the
//! image's real scripts belong to the image.)

use std::time::Duration;

use maas_e2e::cmd::Cmd;
use maas_e2e::maas::*;
use maas_e2e::targets::sim::Firmware;
use maas_e2e::testing::require_program;

use crate::common::{TestBmc, TestDir, fast_power, have_freeipmi, start_sim};

const GUEST: &str = r#"
set -e
W="busybox wget -q -O -"
busybox wget -q -O "$WORK/preseed" "$1"
. "$WORK/preseed"
[ "$MAAS_MODE" = commission ] || { echo "mode $MAAS_MODE"; exit 3; }
ck=${OAUTH_KEY%%:*}; rest=${OAUTH_KEY#*:}; tk=${rest%%:*}; sec=${rest#*:}
auth() {
  echo "Authorization: OAuth oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"$ck\", oauth_token=\"$tk\", oauth_signature=\"%26$sec\", oauth_nonce=\"$(cat /proc/sys/kernel/random/uuid)\", oauth_timestamp=\"$(date +%s)\""
}
# Form values: percent-encode what base64 and JSON contain.
enc() { busybox sed -e 's/%/%25/g; s/+/%2B/g; s/\//%2F/g; s/=/%3D/g; s/&/%26/g; s/ /%20/g; s/"/%22/g; s/:/%3A/g; s/,/%2C/g; s/{/%7B/g; s/}/%7D/g'; }
signal() { $W --header "$(auth)" --post-data "op=signal&$1" "$METADATA_URL/2012-03-01/"; }
power=$(printf '{"power_address":"127.0.0.1","power_user":"maas","power_pass":"guest+pw=1","power_driver":"LAN_2_0"}' | enc)
signal "status=WORKING&error=Gathering%20information&power_type=ipmi&power_parameters=$power"
result() {
  out=$(printf '%s' "$2" | busybox base64 -w 0 | enc)
  signal "status=WORKING&script_name=$1&exit_status=0&output_b64=$out"
}
result 00-maas-00-support-info "hostname $HOSTNAME system $SYSTEM_ID ~~~>>>???"
result 40-maas-01-network-interfaces "{\"interfaces\":[{\"name\":\"eth0\",\"mac\":\"$MAC\",\"boot\":true}]}"
result 50-maas-01-commissioning '{"cpu_count":1,"memory_mib":1024,"disks":[]}'
signal "status=OK"
"#;

#[tokio::test]
async fn busybox_sh_guest_commissions_through_the_contract() {
    if !require_program("busybox", "busybox-static") {
        return;
    }
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    let Some(sim) = start_sim("guest", fast_power(None)).await else {
        return;
    };
    let mac = "52:54:00:6e:00:01";
    let anon = MaasClient::new(&sim.region().local_maas_url(), None).unwrap();
    let req = EnlistRequest {
        hostname: "guest".into(),
        architecture: "amd64".into(),
        power_type: "ipmi".into(),
        power_parameters: bmc.power_parameters(),
        mac_addresses: vec![mac.into()],
        ..Default::default()
    };
    let id = anon.enlist(&req).await.unwrap().system_id;
    sim.client
        .commission(&id, &CommissionOptions::default())
        .await
        .unwrap();
    let boot = sim
        .region()
        .rack()
        .boot_config(mac, Firmware::Bios, "http://127.0.0.1:1/boot")
        .await
        .unwrap();
    let url = boot
        .cmdline
        .unwrap()
        .split("cloud-config-url=")
        .nth(1)
        .unwrap()
        .to_string();

    let work = TestDir::new("guest-work");
    std::fs::create_dir_all(&work.0).unwrap();
    let out = Cmd::new("busybox")
        .args(["sh", "-c", GUEST, "guest", &url])
        .env("WORK", work.0.display().to_string())
        .env("MAC", mac)
        .timeout(Duration::from_secs(60))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "guest script failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );

    sim.client
        .wait_for_status(&id, NodeStatus::READY, Duration::from_secs(20))
        .await
        .unwrap();
    let p = sim.client.power_parameters(&id).await.unwrap();
    assert_eq!(p["power_pass"], "guest+pw=1");
    let sets = sim.client.commissioning_results(&id).await.unwrap();
    let support = &sets[0].results[0];
    assert_eq!(support.name, "00-maas-00-support-info");
    let text = maas_e2e::targets::sim::b64::decode(support.output.as_deref().unwrap()).unwrap();
    assert_eq!(
        String::from_utf8(text).unwrap(),
        format!("hostname guest system {id} ~~~>>>???")
    );
    assert_eq!(
        sim.client
            .machine(&id)
            .await
            .unwrap()
            .boot_interface
            .unwrap()
            .name,
        "eth0"
    );
}

/// The image's own commission.sh (fixtures/ephemeral) under busybox sh with
/// busybox wget, against the sim: signals in MAAS's order, results uploaded
/// multipart (NAME, NAME.out, NAME.err), every script run, the testing
/// phase, Ready. No BMC in-band here: a "QEMU" CPU skips autodetect, as
/// MAAS does, so the power settings stay the enlisted ones.
#[tokio::test]
async fn the_image_commission_script_reaches_ready_through_the_sim() {
    if !require_program("busybox", "busybox-static") || !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    let Some(sim) = start_sim("guest-script", fast_power(None)).await else {
        return;
    };
    let mac = "52:54:00:6e:00:02";
    let anon = MaasClient::new(&sim.region().local_maas_url(), None).unwrap();
    let req = EnlistRequest {
        hostname: "guest-script".into(),
        architecture: "amd64".into(),
        power_type: "ipmi".into(),
        power_parameters: bmc.power_parameters(),
        mac_addresses: vec![mac.into()],
        ..Default::default()
    };
    let id = anon.enlist(&req).await.unwrap().system_id;
    sim.client
        .commission(&id, &CommissionOptions::default())
        .await
        .unwrap();
    let boot = sim
        .region()
        .rack()
        .boot_config(mac, Firmware::Bios, "http://127.0.0.1:1/boot")
        .await
        .unwrap();
    let url = boot
        .cmdline
        .unwrap()
        .split("cloud-config-url=")
        .nth(1)
        .unwrap()
        .to_string();

    let work = TestDir::new("guest-script");
    let bin = work.0.join("bin");
    let scripts = work.0.join("commissioning.d");
    let tests = work.0.join("testing.d");
    for d in [&bin, &scripts, &tests] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::os::unix::fs::symlink(
        maas_e2e::cmd::Cmd::new("sh")
            .args(["-c", "command -v busybox"])
            .run()
            .await
            .unwrap()
            .trim(),
        bin.join("wget"),
    )
    .unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ephemeral");
    // The shipped 40-/50- scripts read this host's /sys; these stand-ins
    // report the enlisted NIC, and one script fails on stderr.
    let files = [
        (scripts.join("00-maas-00-support-info"), "#!/bin/sh\necho support\necho to-stderr >&2\n".to_string()),
        (
            scripts.join("40-maas-01-network-interfaces"),
            format!("#!/bin/sh\necho '{{\"interfaces\":[{{\"name\":\"eth0\",\"mac\":\"{mac}\",\"boot\":true}}]}}'\necho noise >&2\n"),
        ),
        (
            scripts.join("50-maas-01-commissioning"),
            "#!/bin/sh\necho '{\"cpu_count\":2,\"memory_mib\":2048,\"disks\":[{\"name\":\"vda\",\"size_bytes\":4096}]}'\n".to_string(),
        ),
        (tests.join("smartctl-validate"), "#!/bin/sh\necho no SMART here\n".to_string()),
        (work.0.join("cpuinfo"), "model name\t: QEMU Virtual CPU\n".to_string()),
    ];
    for (path, body) in &files {
        std::fs::write(path, body).unwrap();
        maas_e2e::cmd::Cmd::new("chmod")
            .arg("+x")
            .arg(path.to_string_lossy())
            .run()
            .await
            .unwrap();
    }
    let script = format!(
        "log() {{ echo \"LOG $*\"; }}; . {fixtures}/lib.sh; log() {{ echo \"LOG $*\"; }}; \
         http_get \"$1\" > \"$SCRATCH/cloud-config\" && load_cloud_config \"$SCRATCH/cloud-config\" && \
         . {fixtures}/autodetect.sh && . {fixtures}/commission.sh; echo \"rc=$?\""
    );
    let out = Cmd::new("busybox")
        .args(["sh", "-c", &script, "guest", &url])
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("SCRATCH", work.0.display().to_string())
        .env("CPUINFO", work.0.join("cpuinfo").display().to_string())
        .env("COMMISSIONING_D", scripts.display().to_string())
        .env("TESTING_D", tests.display().to_string())
        .env("BOOT_MAC", mac)
        .timeout(Duration::from_secs(60))
        .output()
        .await
        .unwrap();
    assert!(
        out.stdout.contains("rc=0") && out.stdout.contains("commission: done"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let m = sim.client.machine(&id).await.unwrap();
    assert_eq!(m.status, NodeStatus::READY, "{}", out.stdout);
    // The hook read stdout (NAME.out) although the output has stderr too.
    assert_eq!((m.cpu_count, m.memory), (2, 2048));
    let sets = sim.client.commissioning_results(&id).await.unwrap();
    let support = sets
        .last()
        .unwrap()
        .results
        .iter()
        .find(|r| r.name == "00-maas-00-support-info")
        .unwrap();
    let text = maas_e2e::targets::sim::b64::decode(support.output.as_deref().unwrap()).unwrap();
    assert_eq!(String::from_utf8(text).unwrap(), "support\nto-stderr\n");
    // Power settings untouched: no BMC configuration without IPMI.
    assert_eq!(
        sim.client.power_parameters(&id).await.unwrap()["power_address"],
        bmc.power_parameters()["power_address"]
    );
}
