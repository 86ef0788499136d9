//! `maas-e2e bmc poll`: query a list of BMCs with FreeIPMI's `ipmipower
//! --stat`, built by the sim's power driver ([`power_command`], MAAS 2.8's
//! argv), either at MAAS 2.8's power-monitor cadence or as fast as a
//! bounded pool allows, and report latency and outcomes as JSON.
//!
//! `maas` mode: every `--interval` (15 s) a batch of at most `--batch`
//! (10) BMCs never queried or last queried more than `--stale` (5 min)
//! ago, `--concurrency` (5) at a time; the first tick at once. `full`
//! mode: `--concurrency` workers take the BMCs round-robin without pause,
//! to find the ceiling. Both stop at `--duration` (bounded) or after
//! `--rounds` queries of every BMC. The poller is its own process, so the
//! BMC process's CPU and RSS are measured without it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::maas::types::PowerState;
use crate::targets::sim::power::{
    IpmiArgv, IpmiParams, PowerAction, PowerError, classify_output, parse_state, power_command,
};

/// The longest `--duration`.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// MAAS 2.8's power monitor: a batch every interval.
    Maas,
    /// As fast as `--concurrency` ipmipower runs at a time allow.
    Full,
}

/// Options of `maas-e2e bmc poll`.
#[derive(Debug, Clone, clap::Args)]
pub struct PollArgs {
    /// `NAME IP[:PORT]` per line (what `bmc fleet --addresses-out` writes).
    #[arg(long)]
    pub addresses: PathBuf,
    #[arg(long, default_value = "maas")]
    pub user: String,
    /// File whose first line is the password.
    #[arg(long)]
    pub password_file: PathBuf,
    #[arg(long, value_enum, default_value_t = Mode::Maas)]
    pub mode: Mode,
    /// Stop starting queries after this long (at most 30m).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Stop once every BMC has been queried this many times (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub rounds: usize,
    /// ipmipower runs at once (default: 5 in maas mode, as MAAS; 8 in full).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// maas mode: the monitor's tick.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// maas mode: at most this many BMCs a tick.
    #[arg(long, default_value_t = 10)]
    pub batch: usize,
    /// maas mode: a BMC is due again this long after its last query.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub stale: Duration,
    /// Kill one ipmipower run after this long.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub command_timeout: Duration,
    /// Write the report here as JSON (else to stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Put every BMC's last outcome into the report.
    #[arg(long)]
    pub states: bool,
}

/// One BMC to query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    /// As MAAS stores power_address: `IP` for port 623, else `IP:PORT`
    /// (FreeIPMI's host:port form).
    pub power_address: String,
}

/// Parse an addresses file. Pure.
pub fn parse_targets(path: &Path, text: &str) -> anyhow::Result<Vec<Target>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(name), Some(addr), None) = (parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!(
                "{}:{}: expected `NAME IP[:PORT]`, got {line:?}",
                path.display(),
                n + 1
            );
        };
        let power_address = match addr.parse::<std::net::SocketAddrV4>() {
            Ok(sa) if sa.port() == 623 => sa.ip().to_string(),
            Ok(sa) => sa.to_string(),
            Err(_) => match addr.parse::<std::net::Ipv4Addr>() {
                Ok(ip) => ip.to_string(),
                Err(_) => anyhow::bail!(
                    "{}:{}: {addr:?} is not an IPv4 address or IPv4:PORT",
                    path.display(),
                    n + 1
                ),
            },
        };
        out.push(Target {
            name: name.to_string(),
            power_address,
        });
    }
    anyhow::ensure!(!out.is_empty(), "{}: no BMCs listed", path.display());
    Ok(out)
}

/// What one `ipmipower --stat` run against `host` (the IP) gave: `on`,
/// `off`, `unknown` (exit 0 but no state line for that host), or the error
/// class MAAS would raise (`conn`, `auth`, ...).
pub fn outcome_of(
    host: &str,
    result: &Result<crate::cmd::CmdOutput, crate::cmd::CmdError>,
) -> String {
    match result {
        Err(crate::cmd::CmdError::Timeout { .. }) => "error:timeout".into(),
        Err(_) => "error:spawn".into(),
        Ok(out) => match classify_output(&out.stdout) {
            Err(e) => format!(
                "error:{}",
                match e {
                    PowerError::Settings(_) => "settings",
                    PowerError::Auth(_) => "auth",
                    PowerError::Conn(_) => "conn",
                    PowerError::Fatal(_) => "fatal",
                    _ => "failed",
                }
            ),
            Ok(()) if !out.status.success() => "error:failed".into(),
            // Only the line naming the host asked counts (`IP: on`, or
            // `IP:PORT: on` in some FreeIPMI versions).
            Ok(()) => match out
                .stdout
                .lines()
                .find(|l| l.strip_prefix(host).is_some_and(|r| r.starts_with(':')))
                .map_or(PowerState::Unknown, parse_state)
            {
                PowerState::On => "on".into(),
                PowerState::Off => "off".into(),
                _ => "unknown".into(),
            },
        },
    }
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct PollReport {
    pub mode: Mode,
    pub bmcs: usize,
    pub concurrency: usize,
    pub elapsed_s: f64,
    pub queries: usize,
    pub queries_per_s: f64,
    /// BMCs queried at least once.
    pub bmcs_queried: usize,
    pub outcomes: BTreeMap<String, usize>,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// BMC name -> last outcome (with `--states`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub states: Option<BTreeMap<String, String>>,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    outcomes: BTreeMap<String, usize>,
    last: BTreeMap<String, String>,
}

struct Poller {
    targets: Vec<Target>,
    user: String,
    password: String,
    timeout: Duration,
    tally: Mutex<Tally>,
}

impl Poller {
    async fn query(&self, t: &Target) {
        let p = IpmiParams {
            power_address: t.power_address.clone(),
            power_user: self.user.clone(),
            power_pass: self.password.clone(),
            // What MAAS stores for a BMC its autodetect configured.
            power_driver: "LAN_2_0".into(),
            power_boot_type: "auto".into(),
            power_off_mode: "hard".into(),
            k_g: String::new(),
            cipher_suite_id: String::new(),
            privilege_level: String::new(),
            workaround_flags: None,
        };
        let cmd = power_command(&p, PowerAction::Query, IpmiArgv::Maas28).timeout(self.timeout);
        let began = Instant::now();
        let result = cmd.output().await;
        let took = began.elapsed();
        let ip = t.power_address.split(':').next().unwrap_or_default();
        let outcome = outcome_of(ip, &result);
        let mut tally = self.tally.lock().expect("tally lock");
        tally.latencies_us.push(took.as_micros() as u64);
        *tally.outcomes.entry(outcome.clone()).or_default() += 1;
        tally.last.insert(t.name.clone(), outcome);
    }
}

fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() - 1) as f64 * p).round() as usize;
    (sorted_us[i] as f64 / 1000.0 * 100.0).round() / 100.0
}

/// Poll as the options say and return the report.
pub async fn poll(args: &PollArgs) -> anyhow::Result<PollReport> {
    anyhow::ensure!(
        args.duration <= MAX_DURATION,
        "--duration {:?}: allowed up to {MAX_DURATION:?}",
        args.duration
    );
    let text = std::fs::read_to_string(&args.addresses)
        .with_context(|| format!("--addresses {}: cannot read it", args.addresses.display()))?;
    let targets = parse_targets(&args.addresses, &text)?;
    let password = super::loopback::read_password_file(&args.password_file)?;
    let concurrency = args
        .concurrency
        .unwrap_or(match args.mode {
            Mode::Maas => 5,
            Mode::Full => 8,
        })
        .max(1);
    let n = targets.len();
    let poller = Arc::new(Poller {
        targets,
        user: args.user.clone(),
        password,
        timeout: args.command_timeout,
        tally: Mutex::new(Tally::default()),
    });
    let began = Instant::now();
    let deadline = began + args.duration;
    let limit = if args.rounds == 0 {
        usize::MAX
    } else {
        args.rounds.saturating_mul(n)
    };
    match args.mode {
        Mode::Full => {
            let next = Arc::new(AtomicUsize::new(0));
            let workers: Vec<_> = (0..concurrency)
                .map(|_| {
                    let poller = poller.clone();
                    let next = next.clone();
                    tokio::spawn(async move {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= limit || Instant::now() >= deadline {
                                return;
                            }
                            let t = poller.targets[i % poller.targets.len()].clone();
                            poller.query(&t).await;
                        }
                    })
                })
                .collect();
            for w in workers {
                w.await?;
            }
        }
        Mode::Maas => {
            use futures::StreamExt;
            let mut last: Vec<Option<Instant>> = vec![None; n];
            let mut done = 0usize;
            let mut tick = began;
            while tick < deadline && done < limit {
                let now = Instant::now();
                let due: Vec<usize> = (0..n)
                    .filter(|&i| last[i].is_none_or(|t| now.duration_since(t) >= args.stale))
                    .take(args.batch.max(1).min(limit - done))
                    .collect();
                for &i in &due {
                    last[i] = Some(now);
                }
                done += due.len();
                futures::stream::iter(due)
                    .for_each_concurrent(concurrency, |i| {
                        let poller = poller.clone();
                        async move {
                            let t = poller.targets[i].clone();
                            poller.query(&t).await;
                        }
                    })
                    .await;
                tick += args.interval;
                if done < limit && tick < deadline {
                    tokio::time::sleep_until(tick.into()).await;
                }
            }
        }
    }
    let elapsed = began.elapsed().as_secs_f64();
    let tally = std::mem::take(&mut *poller.tally.lock().expect("tally lock"));
    let mut lat = tally.latencies_us;
    lat.sort_unstable();
    Ok(PollReport {
        mode: args.mode,
        bmcs: n,
        concurrency,
        elapsed_s: (elapsed * 100.0).round() / 100.0,
        queries: lat.len(),
        queries_per_s: ((lat.len() as f64 / elapsed.max(1e-9)) * 10.0).round() / 10.0,
        bmcs_queried: tally.last.len(),
        outcomes: tally.outcomes,
        p50_ms: percentile_ms(&lat, 0.5),
        p90_ms: percentile_ms(&lat, 0.9),
        p99_ms: percentile_ms(&lat, 0.99),
        max_ms: percentile_ms(&lat, 1.0),
        states: args.states.then_some(tally.last),
    })
}

/// The command: poll, then write the report.
pub async fn run(args: PollArgs) -> anyhow::Result<()> {
    let report = poll(&args).await?;
    let json = serde_json::to_string_pretty(&report)?;
    match &args.json {
        Some(p) => std::fs::write(p, json + "\n")
            .with_context(|| format!("--json {}: cannot write it", p.display()))?,
        None => println!("{json}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_drop_port_623_as_maas_stores_addresses() {
        let t = parse_targets(
            Path::new("a.txt"),
            "# fleet\nbmc00001 127.100.0.1:623\n\nbmc00002 127.100.0.2:40001\nbmc00003 127.100.0.3\n",
        )
        .unwrap();
        let shown: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t.name.as_str(), t.power_address.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("bmc00001", "127.100.0.1"),
                ("bmc00002", "127.100.0.2:40001"),
                ("bmc00003", "127.100.0.3")
            ]
        );
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let e = parse_targets(Path::new("a.txt"), "bmc1 127.0.0.1\nbmc2\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("a.txt:2: expected `NAME IP[:PORT]`"), "{e}");
        let e = parse_targets(Path::new("a.txt"), "bmc1 host.example:623\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.txt:1:") && e.contains("not an IPv4"), "{e}");
        let e = parse_targets(Path::new("a.txt"), "# nothing\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no BMCs listed"), "{e}");
    }

    #[test]
    fn outcomes_follow_maas_classification() {
        use std::os::unix::process::ExitStatusExt;
        let out = |code: i32, stdout: &str| {
            Ok(crate::cmd::CmdOutput {
                status: std::process::ExitStatus::from_raw(code << 8),
                stdout: stdout.into(),
                stderr: String::new(),
            })
        };
        let h = "127.1.0.1";
        assert_eq!(outcome_of(h, &out(0, "127.1.0.1: on\n")), "on");
        assert_eq!(outcome_of(h, &out(0, "127.1.0.1:4000: off\n")), "off");
        assert_eq!(outcome_of(h, &out(0, "")), "unknown");
        // Another BMC's answer is not this one's state.
        assert_eq!(outcome_of(h, &out(0, "127.1.0.10: on\n")), "unknown");
        assert_eq!(
            outcome_of(h, &out(1, "127.1.0.1: connection timeout\n")),
            "error:conn"
        );
        assert_eq!(
            outcome_of(h, &out(1, "127.1.0.1: password invalid\n")),
            "error:auth"
        );
        assert_eq!(outcome_of(h, &out(1, "127.1.0.1: ?\n")), "error:failed");
    }
}
