//! The guest scripts' logic on the host, under busybox sh: helpers, the
//! cloud-config loader, commissioning and enlistment signalling (with a
//! recording wget), and MAAS's skip of IPMI on a QEMU CPU. No IPMI tool is
//! on PATH: everything that talks to a BMC runs in a guest against our
//! BMC with the real FreeIPMI and ipmitool (own_bmc.rs).

use std::path::Path;

use maas_e2e::cmd::Cmd;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ephemeral");

/// Run `script` after sourcing lib.sh and autodetect.sh. PATH has the
/// test's bin directory, /usr/bin and /bin: no FreeIPMI (it is in /usr/sbin).
fn run(dir: &Path, cpu_model: &str, script: &str) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
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
        .env("CPUINFO", dir.join("cpuinfo").to_string_lossy())
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
fn a_qemu_cpu_model_skips_ipmi_as_maas_does() {
    if !have_busybox() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), "QEMU Virtual CPU version 2.5+", REPORT);
    assert!(out.contains("rc=0 type=\n"), "no power type: {out}");
    assert!(out.contains("QEMU"), "{out}");
    assert!(
        !out.contains("not found"),
        "no IPMI tool was even tried: {out}"
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
n=$(ls "$STATE" | grep -c '^req-')
out="$STATE/req-$n"
header=""; post=""; url=""
while [ $# -gt 0 ]; do
    case "$1" in
        --header) header=$2; shift ;;
        --post-file) post=$2; shift ;;
        -q) ;;
        -O) shift ;;
        *) url=$1 ;;
    esac
    shift
done
{ echo "URL $url"; echo "HEADER $header"; [ -n "$post" ] && echo "FORM $(cat "$post")"; } > "$out"
printf '%s' "${WGET_ANSWER:-OK}"
"#;

/// One request the stub wget saw: URL, Authorization header, form fields.
type Recorded = (String, String, Vec<(String, String)>);

fn requests(dir: &Path) -> Vec<Recorded> {
    let state = dir.join("state");
    let mut names: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("req-"))
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
            (
                get("URL "),
                get("HEADER "),
                crate::contract::parse_form(&get("FORM ")),
            )
        })
        .collect()
}

fn field<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn a_failing_commissioning_script_signals_failed_with_its_output() {
    if !have_busybox() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scripts = dir.path().join("commissioning.d");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::write(scripts.join("10-ok"), "#!/bin/sh\necho fine\n").unwrap();
    std::fs::write(
        scripts.join("20-broken"),
        "#!/bin/sh\necho disk on fire\nexit 3\n",
    )
    .unwrap();
    std::fs::write(scripts.join("30-never"), "#!/bin/sh\necho must not run\n").unwrap();
    for f in ["10-ok", "20-broken", "30-never"] {
        Cmd::new("chmod")
            .arg("+x")
            .arg(scripts.join(f).to_string_lossy())
            .run_blocking()
            .unwrap();
    }
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::write(dir.path().join("bin/wget"), STUB_WGET).unwrap();
    Cmd::new("chmod")
        .arg("+x")
        .arg(dir.path().join("bin/wget").to_string_lossy())
        .run_blocking()
        .unwrap();
    let script = format!(
        "WGET={}/bin/wget; METADATA_URL=http://meta/MAAS/metadata; OAUTH_KEY=ck:tk:ts; SYSTEM_ID=abc; HOSTNAME=; \
         BOOT_MAC=52:54:00:00:00:01; COMMISSIONING_D={}; cd {}; . {FIXTURES}/commission.sh; echo \"rc=$?\"",
        dir.path().display(),
        scripts.display(),
        dir.path().display(),
    );
    // A QEMU CPU: autodetect is skipped, as MAAS does, so no BMC is needed.
    let out = run(dir.path(), "QEMU Virtual CPU version 2.5+", &script);
    assert!(out.contains("rc=1"), "{out}");
    let reqs = requests(dir.path());
    let statuses: Vec<_> = reqs
        .iter()
        .map(|(_, _, f)| field(f, "status").unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        ["WORKING", "WORKING", "WORKING", "FAILED"],
        "{reqs:?}\n{out}"
    );
    for (url, header, _) in &reqs {
        assert_eq!(url, "http://meta/MAAS/metadata/2012-03-01/?op=signal");
        assert!(header.contains(r#"oauth_signature="&ts""#), "{header}");
    }
    assert_eq!(
        field(&reqs[0].2, "power_type"),
        None,
        "no BMC on a QEMU CPU"
    );
    assert_eq!(field(&reqs[1].2, "script_name"), Some("10-ok"));
    assert_eq!(field(&reqs[2].2, "script_name"), Some("20-broken"));
    assert_eq!(field(&reqs[2].2, "exit_status"), Some("3"));
    let error = field(&reqs[3].2, "error").unwrap();
    assert!(
        error.starts_with("20-broken exited 3: disk on fire"),
        "{error}"
    );
    assert!(
        !reqs
            .iter()
            .any(|(_, _, f)| field(f, "script_name") == Some("30-never"))
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
    let out = run(dir.path(), "x", &script);
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
