//! The sim's MAAS 3.6 profile at the region, with real FreeIPMI against our
//! BMC: the version document, the preseed's MAAS_PROFILE, the power
//! parameters 3.6's bmc_config.py reports kept as sent, and a power change
//! run with 3.6's argv (cipher suite 3 from cipher_suite_id, ADMIN from
//! privilege_level) and without 2.8's "Powering on" / "Node powered on".

use std::time::Duration;

use maas_e2e::maas::*;
use maas_e2e::targets::sim::SimProfile;
use serde_json::json;

use crate::common::{TestBmc, fast_power, have_freeipmi, start_sim_profile};

/// What MAAS 3.6.4's bmc_config.py reports for our BMC (IPMI.get_credentials).
fn reported_by_3_6(bmc: &TestBmc) -> serde_json::Value {
    let mut v = bmc.power_parameters();
    let o = v.as_object_mut().unwrap();
    o.insert("power_boot_type".into(), json!("auto"));
    o.insert("k_g".into(), json!(""));
    o.insert("cipher_suite_id".into(), json!("3"));
    o.insert("privilege_level".into(), json!("ADMIN"));
    o.insert("mac_address".into(), json!("02:00:00:00:00:0a"));
    v
}

/// The LAN transcript's setup events and commands, as `event detail` / `name request`.
/// An anonymous enlistment with the power parameters a 3.6 guest reports.
async fn enlist_as_3_6(url: &str, bmc: &TestBmc, mac: &str) -> String {
    MaasClient::new(url, None)
        .unwrap()
        .enlist(&EnlistRequest {
            hostname: String::new(),
            architecture: "amd64".into(),
            subarchitecture: Some("generic".into()),
            power_type: "ipmi".into(),
            power_parameters: reported_by_3_6(bmc),
            mac_addresses: vec![mac.into()],
        })
        .await
        .unwrap()
        .system_id
}

fn lan_lines(bmc: &TestBmc) -> Vec<String> {
    std::fs::read_to_string(bmc.dir.path().join("transcript.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["channel"] == "lan")
        .map(|v| {
            format!(
                "{} {} {}",
                v["event"].as_str().unwrap_or(""),
                v["name"].as_str().unwrap_or(""),
                v["detail"].as_str().or(v["request"].as_str()).unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn the_3_6_profile_answers_3_6_4_and_powers_with_3_6_argv_against_our_bmc() {
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    let Some(sim) = start_sim_profile(
        "profile36",
        fast_power(None),
        None,
        Duration::from_secs(300),
        None,
        SimProfile::Maas36,
    )
    .await
    else {
        return;
    };
    let url = sim.region().local_maas_url();
    let v = MaasClient::new(&url, None)
        .unwrap()
        .version()
        .await
        .unwrap();
    assert_eq!(v.version, "3.6.4");
    assert!(v.subversion.contains("not MAAS"), "{v:?}");
    let preseed = reqwest::get(format!(
        "{url}/metadata/latest/enlist-preseed/?op=get_enlist_preseed"
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(preseed.contains("MAAS_PROFILE='3.6'"), "{preseed}");

    let id = enlist_as_3_6(&url, &bmc, "52:54:00:36:00:01").await;
    let params = sim.client.power_parameters(&id).await.unwrap();
    for (k, want) in [
        ("cipher_suite_id", "3"),
        ("privilege_level", "ADMIN"),
        ("k_g", ""),
        ("mac_address", "02:00:00:00:00:0a"),
    ] {
        assert_eq!(params.get(k), Some(&json!(want)), "{k} in {params:?}");
    }

    sim.client.power_on(&id).await.unwrap();
    let mut state = PowerState::Unknown;
    for _ in 0..400 {
        state = sim.client.machine(&id).await.unwrap().power_state;
        if state == PowerState::On {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(state, PowerState::On);
    assert!(bmc.is_on(), "the BMC's machine is on");
    let lan = lan_lines(&bmc);
    assert!(
        lan.iter()
            .any(|l| l.starts_with("session_activated") && l.ends_with("cipher suite 3")),
        "{lan:#?}"
    );

    let page = sim
        .client
        .events(&EventQuery {
            system_id: Some(id.clone()),
            level: Some("DEBUG".into()),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    let types: Vec<&str> = page.events.iter().map(|e| e.event_type.as_str()).collect();
    for gone in ["Powering on", "Node powered on"] {
        assert!(!types.contains(&gone), "3.6 records no {gone:?}: {types:?}");
    }
}

/// MAAS 3.6.4's JSON where it differs from 2.8.7's, built from the 2.8
/// fixtures by the documented changes (api/machines.py
/// DISPLAYED_MACHINE_FIELDS at 3.6.4: iscsiblockdevice_set gone; ten new
/// fields; api/version.py: subversion empty), parses into the same models.
#[test]
fn the_client_reads_maas_3_6_json() {
    let fixture = |name: &str| {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/maas")
            .join(name);
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let mut m = fixture("machine_ready.json");
    let o = m.as_object_mut().unwrap();
    assert!(o.remove("iscsiblockdevice_set").is_some());
    for (k, v) in [
        ("enable_hw_sync", json!(false)),
        ("enable_kernel_crash_dump", json!(false)),
        ("ephemeral_deploy", json!(false)),
        ("error_description", json!("")),
        ("last_sync", json!(null)),
        ("next_sync", json!(null)),
        ("parent", json!(null)),
        ("sync_interval", json!(null)),
        ("virtualmachine_id", json!(null)),
        ("workload_annotations", json!({})),
    ] {
        o.insert(k.into(), v);
    }
    let parsed: Machine = serde_json::from_value(m).unwrap();
    assert_eq!(parsed.status, NodeStatus::READY);
    assert!(parsed.iscsiblockdevice_set.is_empty());

    let mut v = fixture("version.json");
    v["version"] = json!("3.6.4-16289-g.9b0b9c2a8");
    v["subversion"] = json!("");
    let parsed: Version = serde_json::from_value(v).unwrap();
    assert!(parsed.version.starts_with("3.6."));

    // 3.6's power parameters: a list for workaround_flags, and the sim's
    // driver reads them as the 3.6 rack does.
    let mut p = fixture("power_parameters.json");
    p["cipher_suite_id"] = json!("3");
    p["privilege_level"] = json!("ADMIN");
    p["workaround_flags"] = json!(["opensesspriv"]);
    let params = maas_e2e::targets::sim::IpmiParams::from_json(&p).unwrap();
    let argv = maas_e2e::targets::sim::power_command(
        &params,
        maas_e2e::targets::sim::PowerAction::Query,
        SimProfile::Maas36.ipmi_argv(),
    )
    .argv();
    let pos = |a: &str| argv.iter().position(|x| x == a).unwrap();
    assert_eq!(argv[pos("-I") + 1], "3");
    assert_eq!(argv[pos("-l") + 1], "ADMIN");
    assert_eq!(argv[pos("-W") + 1], "opensesspriv");
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ephemeral");
const ROOT_PASS: &str = "pw-root-36";
const BMC_MAC: &str = "02:00:00:00:36:01";

/// Run the 3.6 guest BMC configuration (bmc_config36.sh) on the host under
/// busybox sh against our BMC over LAN: `bmc-config` is the real FreeIPMI
/// tool with the LAN session arguments put in front (the guest reaches its
/// BMC in-band, which the host has no device for). `ipmi-locate` and
/// `ipmitool raw 06 01` are named stubs: they only tell the script an IPMI
/// 2.0 BMC is there and that it is no HP Moonshot.
fn configure_36(bmc: &TestBmc, scratch: &std::path::Path) -> String {
    configure_36_on(bmc, scratch, &GuestView::bare_metal())
}

/// What a guest shows systemd-detect-virt: written as a fake cpuinfo and a
/// fake sysfs root (bmc_config36.sh's CPUINFO and SYSFS hooks).
#[derive(Clone)]
struct GuestView {
    hypervisor_flag: bool,
    /// /sys/class/dmi/id files.
    dmi: Vec<(&'static str, &'static str)>,
    /// /sys/firmware/dmi/entries/0-0/raw
    type0: Option<Vec<u8>>,
}

impl GuestView {
    /// What the lab's VMs show (src/lab/vm.rs): no flag, our strings, our
    /// type 0 (src/lab/smbios0.rs) with the VM bit clear.
    fn bare_metal() -> GuestView {
        let bios = maas_e2e::lab::smbios0::BiosInformation {
            vendor: "maas-e2e".into(),
            version: "lab-1".into(),
            release_date: "01/01/2024".into(),
            release: (1, 0),
            uefi: false,
        };
        GuestView {
            hypervisor_flag: false,
            dmi: vec![
                ("sys_vendor", "maas-e2e"),
                ("product_name", "lab machine"),
                ("board_vendor", "maas-e2e"),
                ("bios_vendor", "maas-e2e"),
                ("product_version", "pc-i440fx-10.0"),
            ],
            type0: Some(bios.structure(0)),
        }
    }

    fn with_dmi(mut self, file: &'static str, value: &'static str) -> GuestView {
        self.dmi.retain(|(f, _)| *f != file);
        self.dmi.push((file, value));
        self
    }

    fn with_vm_bit(mut self) -> GuestView {
        let t = self.type0.as_mut().unwrap();
        t[maas_e2e::lab::smbios0::EXTENSION_BYTE_2_OFFSET] |=
            maas_e2e::lab::smbios0::VIRTUAL_MACHINE_BIT;
        self
    }

    /// Writes the fake files under `dir`; returns (CPUINFO, SYSFS).
    fn write(&self, dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let sys = dir.join("sysfs");
        let _ = std::fs::remove_dir_all(&sys);
        let id = sys.join("class/dmi/id");
        std::fs::create_dir_all(&id).unwrap();
        for (f, v) in &self.dmi {
            std::fs::write(id.join(f), format!("{v}\n")).unwrap();
        }
        if let Some(t) = &self.type0 {
            let e = sys.join("firmware/dmi/entries/0-0");
            std::fs::create_dir_all(&e).unwrap();
            std::fs::write(e.join("raw"), t).unwrap();
        }
        let flags = if self.hypervisor_flag {
            "fpu vme de pse tsc msr pae hypervisor lahf_lm"
        } else {
            "fpu vme de pse tsc msr pae lahf_lm"
        };
        let cpuinfo = dir.join("cpuinfo");
        std::fs::write(
            &cpuinfo,
            format!("processor\t: 0\nmodel name\t: Intel Core Processor (Haswell, no TSX)\nflags\t\t: {flags}\n"),
        )
        .unwrap();
        (cpuinfo, sys)
    }
}

/// `virt36_detect` (bmc_config36.sh's model of systemd-detect-virt) on a
/// fake machine: (exit status, what it printed).
fn virt_verdict(machine: &GuestView) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let (cpuinfo, sys) = machine.write(dir.path());
    let body = format!(
        ". {FIXTURES}/lib.sh\nlog() {{ echo \"LOG $*\"; }}\n. {FIXTURES}/autodetect.sh\n. {FIXTURES}/bmc_config36.sh\nvirt36_detect\n"
    );
    let out = std::process::Command::new("busybox")
        .args(["sh", "-c", &body])
        .env("PATH", "/usr/bin:/bin")
        .env("SCRATCH", dir.path())
        .env("CPUINFO", cpuinfo)
        .env("SYSFS", sys)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    )
}

#[test]
fn the_3_6_virt_check_passes_the_lab_machine_and_each_vm_signal_alone_makes_it_a_vm() {
    if !maas_e2e::testing::require_program("busybox", "busybox-static") {
        return;
    }
    // What the lab's VMs show: no VM, so 3.6 goes on to the BMC.
    assert_eq!(virt_verdict(&GuestView::bare_metal()), (1, "none".into()));
    // Signal 1: the CPUID hypervisor bit.
    let mut m = GuestView::bare_metal();
    m.hypervisor_flag = true;
    assert_eq!(virt_verdict(&m), (0, "cpuid: hypervisor flag".into()));
    // Signal 2: any of systemd's five DMI files starting with a
    // hypervisor's name (QEMU's own defaults among them).
    for (file, value) in [
        ("product_name", "KVM"),
        ("sys_vendor", "QEMU"),
        ("board_vendor", "Oracle Corporation"),
        ("bios_vendor", "Bochs"),
        ("product_version", "VMware7,1"),
        ("sys_vendor", "Amazon EC2"),
    ] {
        let (rc, said) = virt_verdict(&GuestView::bare_metal().with_dmi(file, value));
        assert_eq!(
            (rc, said.as_str()),
            (0, format!("dmi: {file}={value}").as_str())
        );
    }
    // A prefix, as systemd matches: the name inside a string is no VM.
    assert_eq!(
        virt_verdict(&GuestView::bare_metal().with_dmi("product_name", "Standard PC (QEMU)")).0,
        1
    );
    // Signal 3: the SMBIOS type 0 VM bit, as SeaBIOS and OVMF set it.
    assert_eq!(
        virt_verdict(&GuestView::bare_metal().with_vm_bit()),
        (0, "smbios: type 0 says virtual machine".into())
    );
    // ... read only when the structure is long enough to have the byte.
    let mut short = GuestView::bare_metal().with_vm_bit();
    short.type0.as_mut().unwrap()[1] = 0x12;
    assert_eq!(virt_verdict(&short).0, 1);
    // No DMI at all (a kernel without it) is no VM either.
    let bare = GuestView {
        hypervisor_flag: false,
        dmi: vec![],
        type0: None,
    };
    assert_eq!(virt_verdict(&bare), (1, "none".into()));
}

// Multi-threaded: the script runs blocking while the BMC answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_a_vm_the_3_6_guest_skips_as_3_6_does_and_never_talks_to_the_bmc() {
    if !have_freeipmi() || !maas_e2e::testing::require_program("busybox", "busybox-static") {
        return;
    }
    let bmc = bmc_for_36().await;
    let scratch = tempfile::tempdir().unwrap();
    let mut vm = GuestView::bare_metal();
    vm.hypervisor_flag = true;
    for machine in [
        vm,
        GuestView::bare_metal().with_dmi("sys_vendor", "QEMU"),
        GuestView::bare_metal().with_vm_bit(),
    ] {
        let out = configure_36_on(&bmc, scratch.path(), &machine);
        assert!(
            out.contains("INFO: Running on virtual machine, skipping"),
            "{out}"
        );
        assert!(
            out.contains("bmc-config 3.6: systemd-detect-virt: a VM ("),
            "{out}"
        );
        // Skipped is no failure, and nothing is reported.
        assert!(out.contains("rc=0"), "{out}");
        assert!(out.contains("params=\n"), "no parameters reported: {out}");
        assert!(out.contains("error=\n"), "{out}");
    }
    assert_eq!(
        bmc.lan_commands(),
        Vec::<String>::new(),
        "the BMC was touched"
    );
    // The same BMC behind a machine that shows no VM gets configured.
    let out = configure_36_on(&bmc, scratch.path(), &GuestView::bare_metal());
    assert!(
        out.contains("systemd-detect-virt: no VM (signals: none)"),
        "{out}"
    );
    assert!(
        out.contains("rc=0") && out.contains("\"power_user\": \"maas\""),
        "{out}"
    );
}

/// `configure_36` on a guest that shows `machine` to systemd-detect-virt.
fn configure_36_on(bmc: &TestBmc, scratch: &std::path::Path, machine: &GuestView) -> String {
    let (cpuinfo, sys) = machine.write(scratch);
    let bin = scratch.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real = ["/usr/sbin/bmc-config", "/usr/bin/bmc-config"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("bmc-config (freeipmi-tools)");
    let scripts = [
        (
            "bmc-config",
            format!(
                "#!/bin/sh\nexec {real} -D LAN_2_0 -h {} -u root -p {ROOT_PASS} -l ADMIN \"$@\"\n",
                bmc.address()
            ),
        ),
        (
            "ipmi-locate",
            "#!/bin/sh\necho 'IPMI Version: 2.0'\n".to_string(),
        ),
        ("ipmitool", "#!/bin/sh\necho ' 20 01 00'\n".to_string()),
    ];
    for (name, text) in scripts {
        let p = bin.join(name);
        std::fs::write(&p, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let body = format!(
        ". {FIXTURES}/lib.sh\nlog() {{ echo \"LOG $*\"; }}\n. {FIXTURES}/autodetect.sh\n. {FIXTURES}/bmc_config36.sh\n\
         use_bmc_config_36\nipmi_autodetect; echo \"rc=$?\"; echo \"params=$POWER_PARAMETERS\"; echo \"error=$AUTODETECT_ERROR\"\n"
    );
    let out = std::process::Command::new("busybox")
        .args(["sh", "-c", &body])
        .env(
            "PATH",
            format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display()),
        )
        .env("SCRATCH", scratch)
        .env("CPUINFO", cpuinfo)
        .env("SYSFS", sys)
        .env("IPMI_RETRY_BASE_SECONDS", "0")
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The LAN commands of the transcript after `skip` lines, with failures.
fn lan_commands_from(bmc: &TestBmc, skip: usize) -> Vec<String> {
    bmc.lan_commands().into_iter().skip(skip).collect()
}

async fn bmc_for_36() -> TestBmc {
    use maas_e2e::bmc::config::{PrivilegeName, UserConfig};
    TestBmc::start_with(None, |c| {
        // An operator's own admin account; no user named maas yet.
        c.users = vec![UserConfig {
            name: "root".into(),
            password: ROOT_PASS.into(),
            privilege: PrivilegeName::Administrator,
            enabled: true,
        }];
        c.lan.mac = Some(BMC_MAC.into());
    })
    .await
}

// Multi-threaded: the script runs blocking while the BMC answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_3_6_guest_configures_our_bmc_then_its_parameters_power_it_with_3_6_argv() {
    if !have_freeipmi() || !maas_e2e::testing::require_program("busybox", "busybox-static") {
        return;
    }
    let bmc = bmc_for_36().await;
    let scratch = tempfile::tempdir().unwrap();
    let out = configure_36(&bmc, scratch.path());
    assert!(out.contains("rc=0"), "{out}");
    let params: serde_json::Value =
        serde_json::from_str(out.lines().find_map(|l| l.strip_prefix("params=")).unwrap()).unwrap();
    // What 3.6's get_credentials reports: the BMC's own address and MAC.
    assert_eq!(params["power_address"], "192.0.2.10", "{out}");
    assert_eq!(params["mac_address"], BMC_MAC, "{out}");
    assert_eq!(params["cipher_suite_id"], "3");
    assert_eq!(params["privilege_level"], "ADMIN");
    assert_eq!(params["power_user"], "maas");
    assert_eq!(params["k_g"], "");
    // The BMC before the user (configure() then add_bmc_user()).
    let first = bmc.lan_commands();
    let pos = |name: &str| first.iter().position(|c| c == name);
    let user = pos("set_user_name").unwrap_or_else(|| panic!("no set_user_name in {first:?}"));
    let sol = pos("set_sol_config").unwrap_or_else(|| panic!("no set_sol_config in {first:?}"));
    assert!(sol < user, "{first:?}");

    // The reported parameters work with the 3.6 rack's argv (cipher suite 3, ADMIN).
    let mut at_bmc = params.clone();
    at_bmc["power_address"] = json!(bmc.address());
    at_bmc["power_pass"] = params["power_pass"].clone();
    let p = maas_e2e::targets::sim::IpmiParams::from_json(&at_bmc).unwrap();
    let cmd = maas_e2e::targets::sim::power_command(
        &p,
        maas_e2e::targets::sim::PowerAction::Query,
        SimProfile::Maas36.ipmi_argv(),
    );
    let stat = cmd.output().await.unwrap();
    assert!(stat.stdout.contains(": off"), "{}: {stat:?}", cmd.display());

    // A second configuration finds the user and sets only what differs:
    // the password (never shown by a checkout), not the name again.
    let again = configure_36(&bmc, scratch.path());
    assert!(again.contains("rc=0"), "{again}");
    let second = lan_commands_from(&bmc, first.len());
    assert!(
        second.iter().any(|c| c == "set_user_password"),
        "{second:?}"
    );
    assert!(!second.iter().any(|c| c == "set_user_name"), "{second:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_3_6_guest_whose_password_sets_fail_gives_up_after_the_patchs_five_attempts() {
    if !have_freeipmi() || !maas_e2e::testing::require_program("busybox", "busybox-static") {
        return;
    }
    let bmc = bmc_for_36().await;
    // Set User Password (IPMI 2.0 §22.30, netfn App 0x06, cmd 0x47) always
    // answers "unspecified error" on the LAN.
    bmc.set_fault(maas_e2e::bmc::fault::Fault::FailCommand {
        netfn: 0x06,
        cmd: 0x47,
        on: maas_e2e::bmc::fault::Where::Lan,
        times: 1000,
        cc: 0xFF,
    });
    let scratch = tempfile::tempdir().unwrap();
    let out = configure_36(&bmc, scratch.path());
    assert!(out.contains("rc=1"), "{out}");
    assert!(out.contains("error=Unable to add BMC user!"), "{out}");
    assert!(out.contains("attempt 5 of 5"), "{out}");
    assert!(!out.contains("attempt 6"), "{out}");
    // One password per attempt (the patch re-raises the first failure),
    // and the name is set once: the copy remembers it.
    let cmds = bmc.lan_commands();
    let failed = cmds
        .iter()
        .filter(|c| c.starts_with("set_user_password -> "))
        .count();
    assert_eq!(failed, 5, "{cmds:?}");
    assert_eq!(
        cmds.iter().filter(|c| *c == "set_user_name").count(),
        1,
        "{cmds:?}"
    );
    assert!(!out.contains("params={"), "no parameters reported: {out}");
}

/// Query failure events of POWER_QUERY_FAILED for a machine.
async fn query_failures(sim: &crate::common::Sim, id: &str) -> Vec<String> {
    sim.client
        .events(&EventQuery {
            system_id: Some(id.to_string()),
            level: Some("DEBUG".into()),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap()
        .events
        .into_iter()
        .filter(|e| e.event_type == "Failed to query node's BMC")
        .map(|e| e.description)
        .collect()
}

/// A BMC offering only suite 17 under each profile (sim-matrix.yaml's
/// only17 cells): the API query fails on both; 2.8 records "Failed to
/// query node's BMC" from the API query (models/node.py power_query),
/// 3.6.4 only from the rack's power monitor (the API's Temporal workflow
/// failure is raised), with 3.6's message for `ipmipower -I 3`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bmc_offering_only_suite_17_fails_the_query_and_3_6_records_it_from_the_monitor() {
    if !have_freeipmi() {
        return;
    }
    for profile in [SimProfile::Maas28, SimProfile::Maas36] {
        let bmc = TestBmc::start_with(None, |b| b.cipher_suites = Some(vec![17])).await;
        // The monitor ticks every 3 s: long enough to see the API query
        // alone first, short enough for the test.
        let Some(sim) = start_sim_profile(
            "only17",
            fast_power(None),
            Some(Duration::from_secs(3)),
            Duration::from_secs(300),
            None,
            profile,
        )
        .await
        else {
            return;
        };
        let url = sim.region().local_maas_url();
        let id = enlist_as_3_6(&url, &bmc, "52:54:00:36:00:17").await;
        let err = sim
            .client
            .query_power_state(&id)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("503"), "{profile}: {err}");
        let after_api = query_failures(&sim, &id).await;
        match profile {
            SimProfile::Maas28 => assert!(!after_api.is_empty(), "2.8: {after_api:?}"),
            SimProfile::Maas36 => {
                assert!(
                    err.contains("cipher suite unavailable"),
                    "3.6 proposes -I 3: {err}"
                );
                assert_eq!(
                    after_api,
                    Vec::<String>::new(),
                    "3.6: no event from the API"
                );
                let mut seen = Vec::new();
                for _ in 0..100 {
                    seen = query_failures(&sim, &id).await;
                    if !seen.is_empty() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                assert_eq!(seen.len(), 1, "3.6: one event, from the monitor: {seen:?}");
                assert!(seen[0].contains("cipher suite unavailable"), "{seen:?}");
            }
        }
        // The session our BMC refused proposed suite 3 (HMAC-SHA1 auth).
        let lan = lan_lines(&bmc);
        assert!(
            lan.iter().any(|l| l.starts_with("open_session_refused")),
            "{profile}: {lan:#?}"
        );
    }
}
