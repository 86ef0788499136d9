//! Shared set-up: a fleet on 127.0.0.1 with port 0, three users, and
//! helpers that run a client and return its output.

use std::time::Duration;

use maas_e2e::bmc::config::{BmcConfig, PrivilegeName, UserConfig};
use maas_e2e::bmc::{Fleet, FleetConfig, FleetHandle};
use maas_e2e::cmd::{Cmd, CmdOutput};

pub const ADMIN: (&str, &str) = ("admin", "adminpw1");
pub const OPERATOR: (&str, &str) = ("oper", "operpass");
pub const USER: (&str, &str) = ("viewer", "viewpass");

pub fn user(name: &str, password: &str, privilege: PrivilegeName) -> UserConfig {
    UserConfig::new(name, password, privilege)
}

/// A BMC on 127.0.0.1, a free port, in-memory power (off), three users.
pub fn bmc(name: &str) -> BmcConfig {
    let mut bmc = BmcConfig::loopback(
        name,
        vec![
            user(ADMIN.0, ADMIN.1, PrivilegeName::Administrator),
            user(OPERATOR.0, OPERATOR.1, PrivilegeName::Operator),
            user(USER.0, USER.1, PrivilegeName::User),
        ],
    );
    bmc.lan.ip = Some("192.0.2.10".parse().unwrap());
    bmc
}

pub struct Lab {
    pub fleet: FleetHandle,
    pub dir: tempfile::TempDir,
}

impl Lab {
    pub async fn start(bmcs: Vec<BmcConfig>) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let cfg = FleetConfig {
            transcript: Some(dir.path().join("transcript.jsonl")),
            bmcs,
        };
        cfg.validate(std::path::Path::new("<test>")).unwrap();
        let fleet = Fleet::start(cfg).await.unwrap();
        Lab { fleet, dir }
    }

    pub fn port(&self, bmc: &str) -> u16 {
        self.fleet.lan_addr(bmc).unwrap().port()
    }

    pub fn transcript(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("transcript.jsonl")).unwrap_or_default()
    }
}

async fn run(cmd: Cmd) -> CmdOutput {
    let cmd = cmd.timeout(Duration::from_secs(60));
    let out = cmd.output().await.unwrap();
    eprintln!(
        "$ {}\nexit {:?}\n{}{}",
        cmd.display(),
        out.status.code(),
        out.stdout,
        out.stderr
    );
    out
}

/// `ipmitool -I <iface> [-C suite] -H 127.0.0.1 -p PORT -U u -P p ARGS`.
pub async fn ipmitool(
    port: u16,
    iface: &str,
    suite: Option<u8>,
    who: (&str, &str),
    args: &[&str],
) -> CmdOutput {
    let mut c = Cmd::new("ipmitool").args(["-I", iface]);
    if let Some(s) = suite {
        c = c.args(["-C", &s.to_string()]);
    }
    c = c
        .args([
            "-N",
            "1",
            "-R",
            "2",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            who.0,
            "-P",
        ])
        .secret_arg(who.1)
        .args(args.iter().copied());
    run(c).await
}

/// A FreeIPMI tool with `-h 127.0.0.1:PORT -u U -p P` and extra args.
pub async fn freeipmi(tool: &str, port: u16, who: (&str, &str), args: &[&str]) -> CmdOutput {
    let c = Cmd::new(tool)
        .args(["-h", &format!("127.0.0.1:{port}"), "-u", who.0, "-p"])
        .secret_arg(who.1)
        .args(args.iter().copied());
    run(c).await
}

pub fn have(program: &str, package: &str) -> bool {
    maas_e2e::testing::require_program(program, package)
}

impl Lab {
    /// Transcript lines whose completion code is not 0 (for failure messages).
    pub fn failed_commands(&self) -> Vec<String> {
        self.transcript()
            .lines()
            .filter(|l| l.contains("\"cc\":") && !l.contains("\"cc\":0,"))
            .map(String::from)
            .collect()
    }
}
