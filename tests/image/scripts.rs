//! The guest scripts' logic on the host, under busybox sh, with a stub
//! `bmc-config` on PATH (a stub because a BMC that fails on demand is not
//! installable here; the in-band boots use a real one).

use std::path::Path;

use maas_e2e::cmd::Cmd;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ephemeral");

/// A bmc-config that keeps users in files under $STATE and fails the
/// first $FAIL_PASSWORD_SETS password commits.
const STUB_BMC_CONFIG: &str = r#"#!/bin/sh
case "$*" in
    -L) printf 'Section1\nUser1\nUser2\nUser3\nUser4\nLan_Channel\n'; exit 0 ;;
esac
op=$1; kp=${2#--key-pair=}
key=${kp%%=*}; value=${kp#*=}
file="$STATE/$(echo "$key" | tr ':' '_')"
case "$op" in
    --checkout)
        [ "$key" = "Lan_Conf:IP_Address_Source" ] && [ -n "$FAIL_SOURCE_CHECKOUT" ] && {
            echo "ERROR: checkout failed"; exit 1; }
        param=${key#*:}
        case "$key" in
            User2:Username) echo "        $param    admin" ;;
            Lan_Conf:IP_Address) echo "        IP_Address    192.0.2.9" ;;
            *) [ -f "$file" ] && echo "        $param    $(cat "$file")" || echo "        $param" ;;
        esac ;;
    --commit)
        case "$key" in
            *:Lan_Privilege_Limit) [ -n "$READ_BACK_WRONG" ] && value=User ;;
            *:Password)
                echo x >> "$STATE/password-commits"
                n=$(cat "$STATE/fails" 2>/dev/null || echo 0)
                if [ "$n" -lt "${FAIL_PASSWORD_SETS:-0}" ]; then
                    echo $((n + 1)) > "$STATE/fails"
                    echo "ERROR: Failed to commit \`Password'" ; exit 1
                fi ;;
        esac
        echo "$value" > "$file" ;;
esac
"#;

fn run(dir: &Path, fail_password_sets: u32, cpu_model: &str, script: &str) -> String {
    run_env(dir, fail_password_sets, cpu_model, script, &[])
}

fn run_env(
    dir: &Path,
    fail_password_sets: u32,
    cpu_model: &str,
    script: &str,
    env: &[(&str, &str)],
) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let stub = bin.join("bmc-config");
    std::fs::write(&stub, STUB_BMC_CONFIG).unwrap();
    std::fs::write(
        bin.join("ipmi-locate"),
        "#!/bin/sh\nprintf '%s\\n' \"${IPMI_LOCATE_OUT:-IPMI Version: 2.0}\"\n",
    )
    .unwrap();
    std::fs::write(bin.join("bmc-info"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::write(bin.join("ipmitool"), "#!/bin/sh\necho ' 20 01 00'\n").unwrap();
    for f in ["bmc-config", "ipmi-locate", "bmc-info", "ipmitool"] {
        Cmd::new("chmod")
            .args(["+x"])
            .arg(bin.join(f).to_string_lossy())
            .run_blocking()
            .unwrap();
    }
    std::fs::write(
        dir.join("cpuinfo"),
        format!("processor\t: 0\nmodel name\t: {cpu_model}\n"),
    )
    .unwrap();
    let body = format!(
        "log() {{ echo \"LOG $*\"; }}\n. {FIXTURES}/lib.sh\nlog() {{ echo \"LOG $*\"; }}\n. {FIXTURES}/autodetect.sh\n{script}"
    );
    let mut cmd = Cmd::new("busybox").args(["sh", "-c", &body]);
    for (k, v) in env {
        cmd = cmd.env(*k, *v);
    }
    cmd.env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("STATE", dir.join("state").to_string_lossy())
        // Each run its own working files (tests run in parallel).
        .env("SCRATCH", dir.to_string_lossy())
        .env("CPUINFO", dir.join("cpuinfo").to_string_lossy())
        .env("FAIL_PASSWORD_SETS", fail_password_sets.to_string())
        .env("IPMI_RETRY_BASE_SECONDS", "0")
        .run_blocking()
        .unwrap()
}

fn have_busybox() -> bool {
    maas_e2e::testing::require_program("busybox", "busybox-static")
}

const REPORT: &str = "ipmi_autodetect; echo \"rc=$? type=$POWER_TYPE\"; echo \"params=$POWER_PARAMETERS\"; \
                      echo \"error=$AUTODETECT_ERROR\"";

#[test]
fn a_read_back_mismatch_ends_the_attempt_without_a_second_password() {
    if !have_busybox() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run_env(
        dir.path(),
        0,
        "Intel Core Processor (Haswell, no TSX)",
        REPORT,
        &[("READ_BACK_WRONG", "1")],
    );
    assert!(out.contains("rc=1"), "{out}");
    assert!(out.contains("Unable to set BMC password:"), "{out}");
    // Five attempts, one password each: MAAS tries the second password only
    // after a command error, and its verification error is not one.
    let commits = std::fs::read_to_string(dir.path().join("state/password-commits")).unwrap();
    assert_eq!(commits.lines().count(), 5, "{out}");
}

#[test]
fn a_bmc_whose_address_source_cannot_be_read_gets_no_power_type() {
    if !have_busybox() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run_env(
        dir.path(),
        0,
        "Intel Core Processor (Haswell, no TSX)",
        REPORT,
        &[("FAIL_SOURCE_CHECKOUT", "1")],
    );
    assert!(out.contains("rc=0 type="), "{out}");
    assert!(!out.contains("type=ipmi"), "{out}");
    assert!(
        !dir.path().join("state/password-commits").exists(),
        "the BMC was left alone"
    );
}

#[test]
fn ipmi_2_0_anywhere_in_ipmi_locate_means_lan_2_0() {
    if !have_busybox() {
        return;
    }
    for (locate, driver) in [
        ("IPMI Version: 1.5\nIPMI Version: 2.0", "LAN_2_0"),
        ("IPMI Version: 1.5", "LAN"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = run_env(
            dir.path(),
            0,
            "Intel Core Processor (Haswell, no TSX)",
            REPORT,
            &[("IPMI_LOCATE_OUT", locate)],
        );
        let params_line = out.lines().find_map(|l| l.strip_prefix("params=")).unwrap();
        let params: serde_json::Value = serde_json::from_str(params_line).unwrap();
        assert_eq!(params["power_driver"], driver, "{locate}: {out}");
    }
}

#[test]
fn flaky_password_sets_are_retried_and_the_first_empty_slot_is_used() {
    if !have_busybox() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Two failing password commits: the plain and the special-character
    // password of attempt 1 fail, attempt 2 succeeds.
    let out = run(
        dir.path(),
        2,
        "Intel Core Processor (Haswell, no TSX)",
        REPORT,
    );
    assert!(out.contains("rc=0 type=ipmi"), "{out}");
    assert!(
        out.contains("user maas configured in User3 (attempt 2)"),
        "User2 is taken, User3 is empty:\n{out}"
    );
    let params_line = out.lines().find_map(|l| l.strip_prefix("params=")).unwrap();
    let params: serde_json::Value = serde_json::from_str(params_line).unwrap();
    assert_eq!(params["power_address"], "192.0.2.9");
    assert_eq!(params["power_driver"], "LAN_2_0");
    let state = dir.path().join("state");
    assert_eq!(
        std::fs::read_to_string(state.join("User3_Username"))
            .unwrap()
            .trim(),
        "maas"
    );
    assert_eq!(
        std::fs::read_to_string(state.join("User3_Password"))
            .unwrap()
            .trim(),
        params["power_pass"]
    );
    assert_eq!(
        std::fs::read_to_string(state.join("User3_Lan_Privilege_Limit"))
            .unwrap()
            .trim(),
        "Administrator"
    );
    assert_eq!(
        std::fs::read_to_string(state.join("User3_Enable_User"))
            .unwrap()
            .trim(),
        "Yes"
    );
    assert_eq!(
        std::fs::read_to_string(state.join("User3_Lan_Enable_IPMI_Msgs"))
            .unwrap()
            .trim(),
        "Yes"
    );
    assert_eq!(
        std::fs::read_to_string(state.join("Lan_Channel_Volatile_Access_Mode"))
            .unwrap()
            .trim(),
        "Always_Available"
    );
}

#[test]
fn a_bmc_that_never_takes_a_password_fails_with_maas_text() {
    if !have_busybox() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        1000,
        "Intel Core Processor (Haswell, no TSX)",
        REPORT,
    );
    assert!(out.contains("rc=1 type="), "{out}");
    assert!(out.contains("error=Unable to set BMC password"), "{out}");
    assert_eq!(
        out.matches("setting the BMC password failed").count(),
        5,
        "5 attempts:\n{out}"
    );
    // Two passwords per attempt, as configure_ipmi_user tries.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state/fails"))
            .unwrap()
            .trim(),
        "10"
    );
}

#[test]
fn a_qemu_cpu_model_skips_ipmi_as_maas_does() {
    if !have_busybox() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), 0, "QEMU Virtual CPU version 2.5+", REPORT);
    assert!(out.contains("rc=0 type=\n"), "no power type: {out}");
    assert!(out.contains("QEMU"), "{out}");
    assert!(
        !dir.path().join("state/User3_Username").exists(),
        "nothing committed"
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
        0,
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
        0,
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

/// commission.sh against the stub wget, with $1 password sets refused and
/// these commissioning scripts (name, body); every testing script passes.
fn commission_with(
    dir: &Path,
    fail_password_sets: u32,
    scripts: &[(&str, &str)],
) -> (String, Vec<Recorded>) {
    commission_every(dir, fail_password_sets, scripts, 120)
}

/// `commission_with`, the heartbeat every `heartbeat` seconds.
fn commission_every(
    dir: &Path,
    fail_password_sets: u32,
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
        std::fs::write(path, body).unwrap();
        Cmd::new("chmod")
            .arg("+x")
            .arg(path.to_string_lossy())
            .run_blocking()
            .unwrap();
    }
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(dir.join("bin/wget"), STUB_WGET).unwrap();
    Cmd::new("chmod")
        .arg("+x")
        .arg(dir.join("bin/wget").to_string_lossy())
        .run_blocking()
        .unwrap();
    let script = format!(
        "WGET={}/bin/wget; METADATA_URL=http://meta/MAAS/metadata; OAUTH_KEY=ck:tk:ts; SYSTEM_ID=abc; HOSTNAME=; \
         BOOT_MAC=52:54:00:00:00:01; COMMISSIONING_D={}; TESTING_D={}; HEARTBEAT_SECONDS={heartbeat}; cd {}; \
         . {FIXTURES}/commission.sh; echo \"rc=$?\"",
        dir.display(),
        commissioning.display(),
        testing.display(),
        dir.display(),
    );
    let out = run(
        dir,
        fail_password_sets,
        "Intel Core Processor (Haswell, no TSX)",
        &script,
    );
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
    if !have_busybox() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, reqs) = commission_with(
        dir.path(),
        0,
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
    if !have_busybox() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, reqs) = commission_every(
        dir.path(),
        0,
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
    if !have_busybox() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Every password set fails: 5 attempts of 2 passwords each.
    let (out, reqs) = commission_with(dir.path(), 1000, &[("10-ok", "#!/bin/sh\necho fine\n")]);
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
    if !have_busybox() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::write(dir.path().join("bin/wget"), STUB_WGET).unwrap();
    Cmd::new("chmod")
        .arg("+x")
        .arg(dir.path().join("bin/wget").to_string_lossy())
        .run_blocking()
        .unwrap();
    let script = format!(
        "WGET={}/bin/wget; MAAS_URL=http://maas/MAAS; BOOT_MAC=52:54:00:00:00:01; export WGET_ANSWER=true; \
         . {FIXTURES}/enlist.sh; echo \"rc=$?\"",
        dir.path().display()
    );
    let out = run(dir.path(), 0, "x", &script);
    assert!(out.contains("already registered"), "{out}");
    let reqs = requests(dir.path());
    assert_eq!(reqs.len(), 1, "only is_registered: {reqs:?}");
    assert_eq!(
        reqs[0].0,
        "http://maas/MAAS/api/2.0/machines/?op=is_registered&mac_address=52%3A54%3A00%3A00%3A00%3A01"
    );
    assert!(
        !dir.path().join("state/User3_Username").exists(),
        "no autodetect"
    );
}
