//! The guest scripts' logic on the host, under busybox sh. The in-band
//! IPMI tools the scripts call are the real ones, talking to our own BMC
//! (src/bmc, in-process on loopback): a PATH shim turns the guest's in-band
//! `bmc-config` and `ipmitool` into LAN invocations of the real binaries,
//! so every answer comes from the real tool and our BMC, and every failure
//! from the BMC's fault switches. Only `ipmi-locate` is a mock
//! ([`MOCK_IPMI_LOCATE`]): it probes SMBIOS/ACPI/PCI, which no host test can
//! give it. The boot tests (own_bmc.rs) run all of them for real in a guest.

use std::path::{Path, PathBuf};

use maas_e2e::bmc::config::{BmcConfig, FleetConfig, PrivilegeName, UserConfig};
use maas_e2e::bmc::fault::{Fault, Where};
use maas_e2e::bmc::state::BmcState;
use maas_e2e::bmc::{Fleet, FleetHandle};
use maas_e2e::cmd::Cmd;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ephemeral");

/// The BMC's factory user (slot 2), the one the shims log in as. Its
/// password must appear in nothing the scripts print or leave behind.
const FACTORY_USER: &str = "admin";
const FACTORY_PASS: &str = "factory-pw-7d1c";
/// What the BMC reports in LAN parameter 3 (the power address autodetect reads).
const REPORTED_IP: &str = "192.0.2.9";

/// Our BMC on 127.0.0.1 (a free port), served from its own runtime so the
/// tests stay synchronous; the FreeIPMI config and ipmitool password file
/// the shims read live in its directory, away from the test's.
struct LanBmc {
    rt: tokio::runtime::Runtime,
    fleet: Option<FleetHandle>,
    port: u16,
    dir: tempfile::TempDir,
}

impl LanBmc {
    fn start() -> LanBmc {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut bmc = BmcConfig::loopback(
            "node",
            vec![UserConfig::new(
                FACTORY_USER,
                FACTORY_PASS,
                PrivilegeName::Administrator,
            )],
        );
        bmc.lan.ip = Some(REPORTED_IP.parse().unwrap());
        let cfg = FleetConfig {
            transcript: Some(dir.path().join("transcript.jsonl")),
            bmcs: vec![bmc],
        };
        let fleet = rt.block_on(Fleet::start(cfg)).unwrap();
        let port = fleet.lan_addr("node").unwrap().port();
        // Credentials in files only: nothing on a command line or in a shim.
        write_private(
            &dir.path().join("freeipmi.conf"),
            &format!("driver-type LAN_2_0\nusername {FACTORY_USER}\npassword {FACTORY_PASS}\n"),
        );
        write_private(&dir.path().join("ipmitool-password"), FACTORY_PASS);
        LanBmc {
            rt,
            fleet: Some(fleet),
            port,
            dir,
        }
    }

    fn fleet(&self) -> &FleetHandle {
        self.fleet.as_ref().unwrap()
    }

    fn set_fault(&self, fault: Fault) {
        self.fleet().set_fault("node", fault).unwrap();
    }

    fn state(&self) -> BmcState {
        self.fleet().bmc("node").unwrap().state()
    }

    /// The LAN commands the BMC answered, in order: `Name` or `Name -> 0xcc`.
    fn commands(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("transcript.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == "command")
            .map(|v| {
                let name = v["name"].as_str().unwrap_or("?").to_string();
                match v["cc"].as_u64() {
                    Some(0) | None => name,
                    Some(cc) => format!("{name} -> {cc:#04x}"),
                }
            })
            .collect()
    }

    fn count(&self, command: &str) -> usize {
        self.commands().iter().filter(|c| *c == command).count()
    }

    /// The PATH shims: the real tool, told to go over the LAN to this BMC.
    fn install_shims(&self, bin: &Path) {
        let conf = self.dir.path().join("freeipmi.conf");
        let pass = self.dir.path().join("ipmitool-password");
        let port = self.port;
        let shims = [
            (
                "bmc-config",
                format!(
                    "exec {} --config-file={} -h 127.0.0.1:{port} \"$@\"",
                    real_program("bmc-config").display(),
                    conf.display()
                ),
            ),
            (
                "ipmitool",
                format!(
                    "exec {} -I lanplus -H 127.0.0.1 -p {port} -U {FACTORY_USER} -f {} \"$@\"",
                    real_program("ipmitool").display(),
                    pass.display()
                ),
            ),
        ];
        for (name, exec) in shims {
            let body = format!(
                "#!/bin/sh\n# A PATH shim (tests/image/scripts.rs): the in-band call made a LAN one\n# to our BMC on loopback; the answer is the real tool's.\n{exec}\n"
            );
            write_executable(&bin.join(name), &body);
        }
    }
}

impl Drop for LanBmc {
    fn drop(&mut self) {
        if let Some(f) = self.fleet.take() {
            self.rt.block_on(f.shutdown());
        }
    }
}

/// The real tool's path, found before the shim directory goes first on PATH
/// (FreeIPMI's tools live in /usr/sbin, which a user's PATH may lack).
fn real_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found"))
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A MOCK of FreeIPMI's `ipmi-locate`, which probes SMBIOS, ACPI and PCI
/// for a system interface and cannot be real on a host without one. It
/// prints $MOCK_IPMI_LOCATE_OUTPUT, rendered by [`ipmi_locate_output`] in
/// ipmi-locate's own format (not from what autodetect.sh parses).
const MOCK_IPMI_LOCATE: &str = "#!/bin/sh\n# MOCK ipmi-locate (tests/image/scripts.rs): FreeIPMI's output format,\n# for a machine whose probes find what the test says.\ncat \"$MOCK_IPMI_LOCATE_OUTPUT\"\n";

/// One interface a probe finds: (interface, locate driver, IPMI version).
type Found = (&'static str, &'static str, &'static str);

/// QEMU's isa-ipmi-kcs as real ipmi-locate in our guest reports it: the
/// DMIDECODE probe of KCS finds it, every other probe says FAILED (seen by
/// boot::ephemeral_autodetect_configures_the_maas_user_in_band).
const QEMU_KCS: &[Found] = &[("KCS", "DMIDECODE", "2.0")];

/// ipmi-locate's stdout (FreeIPMI 1.6.10, ipmi-locate/ipmi-locate.c): every
/// interface probed by every method in this order, "done" and the
/// interface's details for a hit, "FAILED" otherwise, a blank line after
/// each probe. A host without IPMI prints all sixteen FAILED (run it here);
/// the details are display_ipmi_locate_info's lines, with the KCS port QEMU
/// uses (0xCA2).
fn ipmi_locate_output(found: &[Found]) -> String {
    let mut out = String::new();
    for driver in ["DMIDECODE", "SMBIOS", "ACPI", "PCI"] {
        for iface in ["KCS", "SMIC", "BT", "SSIF"] {
            out += &format!("Probing {iface} device using {driver}... ");
            match found.iter().find(|(i, d, _)| *i == iface && *d == driver) {
                Some((_, _, version)) => {
                    out += &format!(
                        "done\nIPMI Version: {version}\nIPMI locate driver: {driver}\nIPMI interface: {iface}\nBMC driver device: \nBMC I/O base address: 0xCA2\nRegister spacing: 1\n"
                    );
                }
                None => out += "FAILED\n",
            }
            out += "\n";
        }
    }
    out
}

/// Run `script` under busybox sh with lib.sh and autodetect.sh sourced, the
/// CPU model given, `ipmi-locate` the mock reporting `found`, and with a
/// BMC: `bmc-config` and `ipmitool` the shims to it. Without one, the
/// scripts find no IPMI tool (/usr/sbin is not on their PATH).
fn run(dir: &Path, bmc: Option<&LanBmc>, found: &[Found], cpu_model: &str, script: &str) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    write_executable(&bin.join("ipmi-locate"), MOCK_IPMI_LOCATE);
    std::fs::write(dir.join("ipmi-locate.out"), ipmi_locate_output(found)).unwrap();
    if let Some(bmc) = bmc {
        bmc.install_shims(&bin);
    }
    std::fs::write(
        dir.join("cpuinfo"),
        format!("processor\t: 0\nmodel name\t: {cpu_model}\n"),
    )
    .unwrap();
    let body = format!(
        "log() {{ echo \"LOG $*\"; }}\n. {FIXTURES}/lib.sh\nlog() {{ echo \"LOG $*\"; }}\n. {FIXTURES}/autodetect.sh\n{script}"
    );
    Cmd::new("busybox")
        .args(["sh", "-c", &body])
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("STATE", dir.join("state").to_string_lossy())
        // Each run its own working files (tests run in parallel).
        .env("SCRATCH", dir.to_string_lossy())
        .env("CPUINFO", dir.join("cpuinfo").to_string_lossy())
        .env(
            "MOCK_IPMI_LOCATE_OUTPUT",
            dir.join("ipmi-locate.out").to_string_lossy(),
        )
        .env("IPMI_RETRY_BASE_SECONDS", "0")
        .run_blocking()
        .unwrap()
}

fn have_busybox() -> bool {
    maas_e2e::testing::require_program("busybox", "busybox-static")
}

/// busybox, and the real tools the shims run.
fn have_tools() -> bool {
    have_busybox()
        && maas_e2e::testing::require_program("ipmitool", "ipmitool")
        && maas_e2e::testing::require(
            "bmc-config",
            ["/usr/sbin", "/sbin"]
                .iter()
                .any(|d| Path::new(d).join("bmc-config").is_file())
                || maas_e2e::testing::have_program("bmc-config"),
            "apt-get install freeipmi-tools (ci/setup-host.sh)",
        )
}

/// Set User Password (App 0x47) refused `times` times on the LAN with
/// 0xD5 (not supported in present state): bmc-config's commit fails.
fn refuse_passwords(bmc: &LanBmc, times: u32) {
    bmc.set_fault(Fault::FailCommand {
        netfn: 0x06,
        cmd: 0x47,
        on: Where::Lan,
        times,
        cc: 0xD5,
    });
}

/// Every file under `dir`, as text, for a leak check.
fn all_text(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out += &all_text(&p);
        } else {
            out += &String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default());
        }
    }
    out
}

const HASWELL: &str = "Intel Core Processor (Haswell, no TSX)";

const REPORT: &str = "ipmi_autodetect; echo \"rc=$? type=$POWER_TYPE\"; echo \"params=$POWER_PARAMETERS\"; \
                      echo \"error=$AUTODETECT_ERROR\"";

#[test]
fn a_read_back_mismatch_ends_the_attempt_without_a_second_password() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bmc = LanBmc::start();
    // Set User Access (App 0x43) answered with completion code 0 and not
    // carried out: a BMC that says yes and keeps its old privilege limit.
    bmc.set_fault(Fault::FailCommand {
        netfn: 0x06,
        cmd: 0x43,
        on: Where::Lan,
        times: 1000,
        cc: 0x00,
    });
    let out = run(dir.path(), Some(&bmc), QEMU_KCS, HASWELL, REPORT);
    assert!(out.contains("rc=1"), "{out}");
    assert!(out.contains("Unable to set BMC password:"), "{out}");
    assert!(
        out.contains("for 'Lan_Privilege_Limit', expected 'Administrator'"),
        "{out}"
    );
    // Five attempts, one password each: MAAS tries the second password only
    // after a command error, and its verification error is not one. Each
    // attempt sets the name once and uses Set User Password twice (the
    // password, then Enable_User, which bmc-config sends as its enable op).
    assert_eq!(bmc.count("SetUserName"), 5, "{:#?}", bmc.commands());
    assert_eq!(bmc.count("SetUserPassword"), 10, "{:#?}", bmc.commands());
}

#[test]
fn a_bmc_whose_address_source_cannot_be_read_gets_no_power_type() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bmc = LanBmc::start();
    // Get LAN Configuration Parameters (Transport 0x02) fails: bmc-config
    // cannot check out Lan_Conf:IP_Address_Source.
    bmc.set_fault(Fault::FailCommand {
        netfn: 0x0C,
        cmd: 0x02,
        on: Where::Lan,
        times: 1000,
        cc: 0xFF,
    });
    let out = run(dir.path(), Some(&bmc), QEMU_KCS, HASWELL, REPORT);
    assert!(out.contains("rc=0 type="), "{out}");
    assert!(!out.contains("type=ipmi"), "{out}");
    assert!(
        out.contains("Lan_Conf:IP_Address_Source cannot be read"),
        "{out}"
    );
    assert!(
        bmc.count("GetLanConfig -> 0xff") >= 1,
        "{:#?}",
        bmc.commands()
    );
    assert_eq!(bmc.count("SetUserName"), 0, "the BMC was left alone");
    assert_eq!(bmc.count("SetUserPassword"), 0, "the BMC was left alone");
}

#[test]
fn ipmi_2_0_anywhere_in_ipmi_locate_means_lan_2_0() {
    if !have_tools() {
        return;
    }
    // A BMC with an IPMI 1.5 BT interface and a 2.0 KCS one, and one with
    // 1.5 only (ipmi-locate's version line is the SMBIOS record's).
    let both: &[Found] = &[("KCS", "SMBIOS", "2.0"), ("BT", "SMBIOS", "1.5")];
    let old: &[Found] = &[("BT", "DMIDECODE", "1.5"), ("BT", "SMBIOS", "1.5")];
    for (found, driver) in [(both, "LAN_2_0"), (old, "LAN")] {
        let dir = tempfile::tempdir().unwrap();
        let bmc = LanBmc::start();
        let out = run(dir.path(), Some(&bmc), found, HASWELL, REPORT);
        let params_line = out
            .lines()
            .find_map(|l| l.strip_prefix("params="))
            .unwrap_or_else(|| panic!("{out}"));
        let params: serde_json::Value = serde_json::from_str(params_line).unwrap();
        assert_eq!(params["power_driver"], driver, "{found:?}: {out}");
    }
}

#[test]
fn a_host_where_ipmi_locate_finds_nothing_gets_no_power_type() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bmc = LanBmc::start();
    // Sixteen FAILED probes, as ipmi-locate prints on this host.
    let out = run(dir.path(), Some(&bmc), &[], HASWELL, REPORT);
    assert!(out.contains("rc=0 type=\n"), "{out}");
    assert!(out.contains("ipmi-locate found no BMC"), "{out}");
    assert!(bmc.commands().is_empty(), "{:#?}", bmc.commands());
}

#[test]
fn flaky_password_sets_are_retried_and_the_first_empty_slot_is_used() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bmc = LanBmc::start();
    // The LAN channel starts pre-boot only: autodetect makes it always
    // available (set here with the real bmc-config, before the fault).
    let conf = bmc.dir.path().join("freeipmi.conf");
    Cmd::new(real_program("bmc-config").to_string_lossy())
        .arg(format!("--config-file={}", conf.display()))
        .args(["-h", &format!("127.0.0.1:{}", bmc.port)])
        .args([
            "--commit",
            "--key-pair=Lan_Channel:Volatile_Access_Mode=Pre_Boot_Only",
        ])
        .run_blocking()
        .unwrap();
    assert_eq!(bmc.state().lan_access_volatile.access_mode, 1);
    // Two refused password commits: the plain and the special-character
    // password of attempt 1 fail, attempt 2 succeeds.
    refuse_passwords(&bmc, 2);
    let out = run(dir.path(), Some(&bmc), QEMU_KCS, HASWELL, REPORT);
    assert!(out.contains("rc=0 type=ipmi"), "{out}");
    assert!(
        out.contains("user maas configured in User3 (attempt 2)"),
        "User2 is the factory admin, User3 is empty:\n{out}"
    );
    let params_line = out.lines().find_map(|l| l.strip_prefix("params=")).unwrap();
    let params: serde_json::Value = serde_json::from_str(params_line).unwrap();
    assert_eq!(params["power_address"], REPORTED_IP);
    assert_eq!(params["power_driver"], "LAN_2_0");
    assert_eq!(params["power_user"], "maas");
    assert_eq!(
        bmc.count("SetUserPassword -> 0xd5"),
        2,
        "{:#?}",
        bmc.commands()
    );
    // What the BMC now holds, read from its state.
    let state = bmc.state();
    let user3 = state.user(3).unwrap();
    assert_eq!(user3.name_str(), "maas");
    let pass = params["power_pass"].as_str().unwrap();
    let mut padded = [0u8; 20];
    padded[..pass.len()].copy_from_slice(pass.as_bytes());
    assert_eq!(user3.password, padded, "the password the script reports");
    assert!(user3.enabled);
    assert_eq!(user3.lan.privilege, 4, "Administrator");
    assert!(user3.lan.ipmi_messaging);
    assert_eq!(state.user(2).unwrap().name_str(), FACTORY_USER, "untouched");
    assert_eq!(state.lan_access_volatile.access_mode, 2, "Always_Available");
    // The ipmitool shim (the Moonshot check's `ipmitool raw 06 01`) gets
    // our BMC's Get Device ID answer through the real tool.
    let device_id = Cmd::new(dir.path().join("bin/ipmitool").to_string_lossy())
        .args(["raw", "06", "01"])
        .run_blocking()
        .unwrap();
    assert_eq!(
        device_id.split_whitespace().next(),
        Some(format!("{:02x}", state.identity.device_id).as_str()),
        "{device_id}"
    );
    // The shims' credentials stay in the BMC's directory.
    assert!(!out.contains(FACTORY_PASS));
    assert!(
        !all_text(dir.path()).contains(FACTORY_PASS),
        "leaked into the test's files"
    );
}

#[test]
fn a_bmc_that_never_takes_a_password_fails_with_maas_text() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bmc = LanBmc::start();
    refuse_passwords(&bmc, 1000);
    let out = run(dir.path(), Some(&bmc), QEMU_KCS, HASWELL, REPORT);
    assert!(out.contains("rc=1 type="), "{out}");
    assert!(out.contains("error=Unable to set BMC password"), "{out}");
    // bmc-config's own failure text, carried into MAAS's error.
    assert!(out.contains("Password"), "{out}");
    assert_eq!(
        out.matches("setting the BMC password failed").count(),
        5,
        "5 attempts:\n{out}"
    );
    // Two passwords per attempt, as configure_ipmi_user tries.
    assert_eq!(
        bmc.count("SetUserPassword -> 0xd5"),
        10,
        "{:#?}",
        bmc.commands()
    );
    assert_eq!(bmc.count("SetUserPassword"), 0, "none taken");
}

#[test]
fn a_qemu_cpu_model_skips_ipmi_as_maas_does() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bmc = LanBmc::start();
    let out = run(
        dir.path(),
        Some(&bmc),
        QEMU_KCS,
        "QEMU Virtual CPU version 2.5+",
        REPORT,
    );
    assert!(out.contains("rc=0 type=\n"), "no power type: {out}");
    assert!(out.contains("QEMU"), "{out}");
    assert!(
        bmc.commands().is_empty(),
        "the BMC was never asked: {:#?}",
        bmc.commands()
    );
}

#[test]
fn helpers_encode_forms_json_and_oauth() {
    if !have_busybox() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        None,
        &[],
        "x",
        "urlencode 'a b&c=d/é+~'; echo; json_escape 'say \"hi\" \\ bye'; echo; \
         OAUTH_KEY=ck:tk:ts oauth_header; echo; \
         for i in 1 2 3 4 5 6 7 8; do random_password; echo; random_password special; echo; done",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "a%20b%26c%3Dd%2F%C3%A9%2B~");
    assert_eq!(lines[1], r#"say \"hi\" \\ bye"#);
    assert!(lines[2].starts_with(
        r#"Authorization: OAuth oauth_version="1.0", oauth_signature_method="PLAINTEXT", oauth_consumer_key="ck", oauth_token="tk", oauth_signature="&ts", oauth_nonce=""#
    ));
    for (i, pw) in lines[3..19].iter().enumerate() {
        assert!((10..=15).contains(&pw.len()), "{pw:?}");
        if i % 2 == 0 {
            assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()), "{pw:?}");
        } else {
            assert!(
                pw.chars().any(|c| !c.is_ascii_alphanumeric()),
                "a special character: {pw:?}"
            );
            assert!(
                !pw.as_bytes().windows(2).any(|w| w[0] == w[1]),
                "no character twice in a row: {pw:?}"
            );
        }
    }
}

#[test]
fn cloud_config_takes_only_quoted_assignments() {
    if !have_busybox() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rendered = maas_e2e::image::contract::CloudConfig {
        mode: maas_e2e::image::contract::Mode::Commission,
        maas_url: "http://10.0.0.1:5240/MAAS".into(),
        metadata_url: "http://10.0.0.1:5240/MAAS/metadata".into(),
        commissioning: Some(maas_e2e::image::contract::Commissioning {
            system_id: "abc123".into(),
            oauth_key: "ck:tk:ts".into(),
            hostname: "it's-a-node".into(),
        }),
        ipmi_retry_base_seconds: Some(1),
        ipmi_dhcp_wait_seconds: None,
    }
    .render()
    .unwrap();
    let hostile =
        "EVIL='x'; touch $STATE/pwned; '\nX=$(touch $STATE/pwned2)\ntouch $STATE/pwned3\n";
    let file = dir.path().join("cloud-config");
    std::fs::write(&file, format!("{rendered}{hostile}")).unwrap();
    let out = run(
        dir.path(),
        None,
        &[],
        "x",
        &format!(
            "load_cloud_config {}; echo \"$MAAS_MODE|$SYSTEM_ID|$OAUTH_KEY|$HOSTNAME|$IPMI_RETRY_BASE_SECONDS|${{EVIL:-unset}}\"",
            file.display()
        ),
    );
    assert_eq!(out.trim(), "commission|abc123|ck:tk:ts|it's-a-node|1|unset");
    for f in ["pwned", "pwned2", "pwned3"] {
        assert!(
            !dir.path().join("state").join(f).exists(),
            "{f}: a non-assignment line ran"
        );
    }
}

/// A wget that records each request (URL, header, posted form) under
/// $STATE/req-N and answers $WGET_ANSWER (a stub: the real HTTP path is
/// covered by the boot tests against the recording server).
const STUB_WGET: &str = r#"#!/bin/sh
# A number of its own, taken under a lock: the heartbeat loop posts while
# the script's result is posted, and two requests must not share a file.
until mkdir "$STATE/req.lock" 2>/dev/null; do :; done
n=$(ls "$STATE" | grep -c '^req-[0-9]*$')
out="$STATE/req-$n"
: > "$out"
rmdir "$STATE/req.lock"
header=""; post=""; url=""
while [ $# -gt 0 ]; do
    case "$1" in
        --header) header="$header $2"; shift ;;
        --post-file) post=$2; shift ;;
        -q) ;;
        -O) shift ;;
        *) url=$1 ;;
    esac
    shift
done
{ echo "URL $url"; echo "HEADER $header"; [ -n "$post" ] && echo "FORM $(cat "$post")"; } > "$out"
[ -n "$post" ] && cat "$post" > "$out.body"
printf '%s' "${WGET_ANSWER:-OK}"
"#;

/// One request the stub wget saw: URL, Authorization header, form fields.
type Recorded = (String, String, Vec<(String, String)>);

fn requests(dir: &Path) -> Vec<Recorded> {
    let state = dir.join("state");
    let mut names: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("req-") && !n.ends_with(".body"))
        .collect();
    names.sort_by_key(|n| n[4..].parse::<u32>().unwrap());
    names
        .iter()
        .map(|n| {
            let text = std::fs::read_to_string(state.join(n)).unwrap();
            let get = |p: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(p))
                    .unwrap_or("")
                    .to_string()
            };
            let body = std::fs::read(state.join(format!("{n}.body"))).unwrap_or_default();
            let form = if body.starts_with(b"--maas-e2e-boundary") {
                multipart_fields(&body)
            } else {
                crate::contract::parse_form(&get("FORM "))
            };
            (get("URL "), get("HEADER "), form)
        })
        .collect()
}

/// A multipart body as (name, value) pairs: fields as they are; the file
/// part named after the script as ("script_name", NAME) (its .out/.err
/// streams left out), so results read like the urlencoded signals.
fn multipart_fields(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    for part in text.split("--maas-e2e-boundary-5f0c2a9e7b").skip(1) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let name = head
            .split("name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("")
            .to_string();
        if head.contains("filename=") {
            if !(name.ends_with(".out") || name.ends_with(".err")) {
                out.push(("script_name".to_string(), name));
            }
        } else {
            out.push((name, value.trim_end_matches("\r\n").to_string()));
        }
    }
    // The summary puts script_name before exit_status.
    out.sort_by_key(|(k, _)| k != "status" && k != "script_name");
    out
}

fn field<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// commission.sh against the stub wget and our BMC, with these
/// commissioning scripts (name, body); every testing script passes.
fn commission_with(dir: &Path, bmc: &LanBmc, scripts: &[(&str, &str)]) -> (String, Vec<Recorded>) {
    commission_every(dir, bmc, scripts, 120)
}

/// `commission_with`, the heartbeat every `heartbeat` seconds.
fn commission_every(
    dir: &Path,
    bmc: &LanBmc,
    scripts: &[(&str, &str)],
    heartbeat: u32,
) -> (String, Vec<Recorded>) {
    let commissioning = dir.join("commissioning.d");
    let testing = dir.join("testing.d");
    std::fs::create_dir_all(&commissioning).unwrap();
    std::fs::create_dir_all(&testing).unwrap();
    let mut files: Vec<_> = scripts
        .iter()
        .map(|(n, b)| (commissioning.join(n), *b))
        .collect();
    files.push((testing.join("t-ok"), "#!/bin/sh\necho tested\n"));
    for (path, body) in &files {
        write_executable(path, body);
    }
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    write_executable(&dir.join("bin/wget"), STUB_WGET);
    let script = format!(
        "WGET={}/bin/wget; METADATA_URL=http://meta/MAAS/metadata; OAUTH_KEY=ck:tk:ts; SYSTEM_ID=abc; HOSTNAME=; \
         BOOT_MAC=52:54:00:00:00:01; COMMISSIONING_D={}; TESTING_D={}; HEARTBEAT_SECONDS={heartbeat}; cd {}; \
         . {FIXTURES}/commission.sh; echo \"rc=$?\"",
        dir.display(),
        commissioning.display(),
        testing.display(),
        dir.display(),
    );
    let out = run(dir, Some(bmc), QEMU_KCS, HASWELL, &script);
    let reqs = requests(dir);
    (out, reqs)
}

fn summary(reqs: &[Recorded]) -> Vec<String> {
    reqs.iter()
        .map(|(_, _, f)| {
            let mut s = field(f, "status").unwrap_or("").to_string();
            for k in ["error", "script_name", "exit_status", "power_type"] {
                if let Some(v) = field(f, k) {
                    s += &format!(" {k}={v}");
                }
            }
            s
        })
        .collect()
}

#[test]
fn every_commissioning_script_runs_then_failed_counts_them() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bmc = LanBmc::start();
    let (out, reqs) = commission_with(
        dir.path(),
        &bmc,
        &[
            ("10-ok", "#!/bin/sh\necho fine\n"),
            ("20-broken", "#!/bin/sh\necho disk on fire\nexit 3\n"),
            ("30-after", "#!/bin/sh\necho still runs\n"),
        ],
    );
    assert!(out.contains("rc=1"), "{out}");
    for (url, header, _) in &reqs {
        assert_eq!(url, "http://meta/MAAS/metadata/2012-03-01/?op=signal");
        assert!(header.contains(r#"oauth_signature="&ts""#), "{header}");
    }
    assert_eq!(
        summary(&reqs),
        [
            "WORKING error=Resetting BMC password",
            "WORKING error=Finished setting BMC password power_type=ipmi",
            "WORKING error=Starting 10-ok",
            "WORKING script_name=10-ok exit_status=0",
            "WORKING error=Starting 20-broken",
            "WORKING script_name=20-broken exit_status=3",
            "WORKING error=Starting 30-after",
            "WORKING script_name=30-after exit_status=0",
            "FAILED error=1 commissioning scripts failed to run",
            "FAILED error=1 test scripts failed to run",
        ],
        "{out}"
    );
}

#[test]
fn a_long_script_is_covered_by_heartbeats() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bmc = LanBmc::start();
    let (out, reqs) = commission_every(
        dir.path(),
        &bmc,
        &[("10-slow", "#!/bin/sh\nsleep 3\necho done\n")],
        1,
    );
    assert!(out.contains("rc=0"), "{out}");
    let s = summary(&reqs);
    let start = s
        .iter()
        .position(|l| l == "WORKING error=Starting 10-slow")
        .unwrap();
    let result = s
        .iter()
        .position(|l| l.starts_with("WORKING script_name=10-slow"))
        .unwrap();
    assert!(
        s[start..result].iter().filter(|l| *l == "WORKING").count() >= 2,
        "bare WORKING heartbeats while the script ran: {s:#?}"
    );
}

#[test]
fn a_bmc_refusing_the_password_keeps_the_old_settings_and_commissioning_goes_on() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Every password set fails: 5 attempts of 2 passwords each.
    let bmc = LanBmc::start();
    refuse_passwords(&bmc, 1000);
    let (out, reqs) = commission_with(dir.path(), &bmc, &[("10-ok", "#!/bin/sh\necho fine\n")]);
    assert!(out.contains("rc=0"), "{out}");
    assert_eq!(
        summary(&reqs),
        [
            "WORKING error=Resetting BMC password",
            "WORKING error=Starting 10-ok",
            "WORKING script_name=10-ok exit_status=0",
            "TESTING",
            "WORKING error=Starting t-ok",
            "WORKING script_name=t-ok exit_status=0",
            "OK error=All scripts successfully ran",
        ],
        "{out}"
    );
    assert!(
        !reqs
            .iter()
            .any(|(_, _, f)| field(f, "power_parameters").is_some()),
        "no power parameters after a failed BMC configuration"
    );
}

#[test]
fn an_already_registered_machine_is_not_enlisted_again() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    write_executable(&dir.path().join("bin/wget"), STUB_WGET);
    let script = format!(
        "WGET={}/bin/wget; MAAS_URL=http://maas/MAAS; BOOT_MAC=52:54:00:00:00:01; export WGET_ANSWER=true; \
         . {FIXTURES}/enlist.sh; echo \"rc=$?\"",
        dir.path().display()
    );
    let bmc = LanBmc::start();
    let out = run(dir.path(), Some(&bmc), QEMU_KCS, "x", &script);
    assert!(out.contains("already registered"), "{out}");
    let reqs = requests(dir.path());
    assert_eq!(reqs.len(), 1, "only is_registered: {reqs:?}");
    assert_eq!(
        reqs[0].0,
        "http://maas/MAAS/api/2.0/machines/?op=is_registered&mac_address=52%3A54%3A00%3A00%3A00%3A01"
    );
    assert!(
        bmc.commands().is_empty(),
        "no autodetect: {:#?}",
        bmc.commands()
    );
}
