//! `maas-e2e bmc bench`: a load generator built on our own RMCP+ codec
//! ([`super::client`]), so it measures the BMC without the ~10 ms of CPU a
//! client process like ipmipower costs per run. It reports:
//!
//! - memory: process RSS/PSS with N BMCs bound, and with one session each;
//! - requests/s and sessions/s with C concurrent sessions, and server-side
//!   p50/p99 (datagram arrival to answer sent);
//! - server CPU per datagram and per ipmipower run (the fleet runs on one
//!   dedicated thread, whose CPU clock is read before and after);
//! - `ipmipower --stat` wall-time p50 against our BMC and against OpenIPMI's
//!   `ipmi_sim` side by side in the same run, with ipmi_sim's CPU per run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::client::ClientSession;
use super::config::{BmcConfig, FleetConfig, PrivilegeName, UserConfig};
use super::{Fleet, LatencyRecorder};
use crate::cmd::Cmd;

/// Bench options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// BMCs hosted in this process for the memory measurement.
    #[arg(long, default_value_t = 1000)]
    pub bmcs: usize,
    /// Concurrent sessions in the load phases.
    #[arg(long, default_value_t = 50)]
    pub sessions: usize,
    /// Length of each load phase.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Cipher suite of the load phases.
    #[arg(long, default_value_t = 17)]
    pub suite: u8,
    /// `ipmipower --stat` runs per peer (0 skips the comparison).
    #[arg(long, default_value_t = 50)]
    pub ipmipower_runs: usize,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl Default for BenchArgs {
    fn default() -> Self {
        BenchArgs {
            bmcs: 1000,
            sessions: 50,
            duration: Duration::from_secs(5),
            suite: 17,
            ipmipower_runs: 50,
            json: None,
        }
    }
}

/// Everything measured in one run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub bmcs: usize,
    pub rss_before_kib: u64,
    pub rss_bound_kib: u64,
    pub rss_with_sessions_kib: u64,
    pub pss_with_sessions_kib: u64,
    pub concurrent_sessions: usize,
    pub suite: u8,
    pub requests: u64,
    pub requests_per_s: f64,
    pub server_p50_us: f64,
    pub server_p99_us: f64,
    pub client_p50_us: f64,
    pub client_p99_us: f64,
    pub server_cpu_per_datagram_us: f64,
    pub sessions_opened: u64,
    pub sessions_per_s: f64,
    pub ipmipower: Vec<PeerResult>,
}

/// `ipmipower --stat` against one BMC implementation.
#[derive(Debug, Clone, Serialize)]
pub struct PeerResult {
    pub peer: String,
    pub runs: usize,
    pub failures: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    /// Server CPU per ipmipower run (one whole session, ~7 datagrams).
    pub server_cpu_per_run_ms: f64,
    /// Of that, time from each datagram's arrival to its answer being sent
    /// (decode, crypto, handler, encode, sendto), summed per run; the rest
    /// is waking up and receiving. Only measured for our BMC.
    pub server_handling_per_run_ms: Option<f64>,
    pub server_rss_kib: Option<u64>,
}

const USER: &str = "bench";
const PASSWORD: &str = "benchpass";

fn proc_kib(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64
}

fn fleet_config(n: usize) -> FleetConfig {
    let bmcs = (0..n)
        .map(|i| {
            let user = UserConfig::new(USER, PASSWORD, PrivilegeName::Administrator);
            let mut bmc = BmcConfig::loopback(&format!("bench{i}"), vec![user]);
            bmc.session_timeout = Some("60s".into());
            bmc.max_sessions = Some(63);
            bmc
        })
        .collect();
    FleetConfig {
        transcript: None,
        bmcs,
    }
}

/// A fleet served from its own thread (current-thread runtime), so that
/// thread's CPU clock is the server's CPU.
struct ServerThread {
    addrs: Vec<SocketAddr>,
    recorders: Vec<Arc<LatencyRecorder>>,
    cpu_tx: mpsc::UnboundedSender<oneshot::Sender<u64>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    fn start(cfg: FleetConfig) -> anyhow::Result<Self> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (cpu_tx, mut cpu_rx) = mpsc::unbounded_channel::<oneshot::Sender<u64>>();
        let thread = std::thread::Builder::new()
            .name("bmc-fleet".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let handle = match Fleet::start(cfg).await {
                        Ok(h) => h,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let mut addrs = Vec::new();
                    for name in handle.names() {
                        let rec = Arc::new(LatencyRecorder::default());
                        handle
                            .bmc(&name)
                            .expect("listed")
                            .record_latency(rec.clone());
                        addrs.push((
                            name.trim_start_matches("bench")
                                .parse::<usize>()
                                .unwrap_or(0),
                            handle.lan_addr(&name).expect("listed"),
                            rec,
                        ));
                    }
                    addrs.sort_by_key(|(i, _, _)| *i);
                    let _ = ready_tx.send(Ok(addrs
                        .into_iter()
                        .map(|(_, a, r)| (a, r))
                        .collect::<Vec<_>>()));
                    while let Some(reply) = cpu_rx.recv().await {
                        let _ = reply.send(thread_cpu_ns());
                    }
                    handle.shutdown().await;
                });
            })?;
        let pairs = ready_rx
            .recv()
            .context("fleet thread died")?
            .map_err(anyhow::Error::msg)?;
        let (addrs, recorders) = pairs.into_iter().unzip();
        Ok(ServerThread {
            addrs,
            recorders,
            cpu_tx,
            thread: Some(thread),
        })
    }

    async fn cpu_ns(&self) -> u64 {
        let (tx, rx) = oneshot::channel();
        let _ = self.cpu_tx.send(tx);
        rx.await.unwrap_or(0)
    }

    fn take_latencies(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self.recorders.iter().flat_map(|r| r.take()).collect();
        all.sort_unstable();
        all
    }

    fn stop(mut self) {
        let (tx, _) = mpsc::unbounded_channel();
        self.cpu_tx = tx; // dropping the old sender ends the server loop
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Run every measurement.
pub async fn measure(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    let rss_before = proc_kib("/proc/self/status", "VmRSS:");
    let server = ServerThread::start(fleet_config(args.bmcs.max(args.sessions).max(1)))?;
    let rss_bound = proc_kib("/proc/self/status", "VmRSS:");

    // One idle session on every BMC.
    let mut idle = Vec::new();
    for chunk in server.addrs.chunks(50) {
        let opened = futures::future::join_all(
            chunk
                .iter()
                .map(|a| ClientSession::open(*a, USER, PASSWORD, args.suite, 4)),
        )
        .await;
        for s in opened {
            idle.push(s.context("opening a session on every BMC")?);
        }
    }
    let rss_sessions = proc_kib("/proc/self/status", "VmRSS:");
    let pss_sessions = proc_kib("/proc/self/smaps_rollup", "Pss:");
    for s in idle.drain(..) {
        let _ = s.close().await;
    }
    let _ = server.take_latencies();

    // Phase A: requests over C concurrent sessions, one per BMC.
    let deadline = Instant::now() + args.duration;
    let cpu0 = server.cpu_ns().await;
    let tasks: Vec<_> = server
        .addrs
        .iter()
        .take(args.sessions)
        .map(|a| {
            let (a, suite) = (*a, args.suite);
            tokio::spawn(async move {
                let mut s = ClientSession::open(a, USER, PASSWORD, suite, 4).await?;
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let r = s.request(0x00, 0x01, &[]).await?;
                    anyhow::ensure!(r.cc == 0, "Get Chassis Status cc {:#04x}", r.cc);
                    lat.push(t.elapsed().as_nanos() as u32);
                }
                let _ = s.close().await;
                anyhow::Ok(lat)
            })
        })
        .collect();
    let started = Instant::now();
    let mut client_lat = Vec::new();
    for t in tasks {
        client_lat.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu1 = server.cpu_ns().await;
    let server_lat = server.take_latencies();
    client_lat.sort_unstable();
    let requests = client_lat.len() as u64;

    // Phase B: whole sessions (open, one request, close), C at a time.
    let deadline = Instant::now() + args.duration;
    let tasks: Vec<_> = server
        .addrs
        .iter()
        .take(args.sessions)
        .map(|a| {
            let (a, suite) = (*a, args.suite);
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let mut s = ClientSession::open(a, USER, PASSWORD, suite, 4).await?;
                    s.request(0x00, 0x01, &[]).await?;
                    s.close().await?;
                    n += 1;
                }
                anyhow::Ok(n)
            })
        })
        .collect();
    let started_b = Instant::now();
    let mut sessions_opened = 0;
    for t in tasks {
        sessions_opened += t.await??;
    }
    let elapsed_b = started_b.elapsed().as_secs_f64();
    let _ = server.take_latencies();

    // ipmipower --stat, ours and ipmi_sim's, interleaved run by run so
    // both see the same machine load.
    let mut ipmipower = Vec::new();
    if args.ipmipower_runs > 0 && crate::testing::have_program("ipmipower") {
        let sim = if crate::testing::have_program("ipmi_sim") {
            match IpmiSim::start().await {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!("ipmi_sim comparison skipped: {e:#}");
                    None
                }
            }
        } else {
            None
        };
        let (mut ours, mut theirs) = (Timings::default(), Timings::default());
        for _ in 0..args.ipmipower_runs {
            let c0 = server.cpu_ns().await;
            ours.push(ipmipower_stat(server.addrs[0]).await);
            ours.cpu_ns += server.cpu_ns().await - c0;
            if let Some(sim) = &sim {
                let c0 = sim.cpu_ns();
                theirs.push(ipmipower_stat(sim.addr).await);
                theirs.cpu_ns += sim.cpu_ns() - c0;
            }
        }
        let runs = args.ipmipower_runs as f64;
        let handling_ns: u64 = server.take_latencies().iter().map(|&n| n as u64).sum();
        let mut ours = ours.result(
            "maas-e2e bmc",
            Some(proc_kib("/proc/self/status", "VmRSS:")),
        );
        ours.server_handling_per_run_ms = Some(handling_ns as f64 / 1e6 / runs);
        ipmipower.push(ours);
        if let Some(sim) = sim {
            let rss = proc_kib(&format!("/proc/{}/status", sim.pid), "VmRSS:");
            ipmipower.push(theirs.result("OpenIPMI ipmi_sim", Some(rss)));
            sim.stop().await;
        }
    }
    server.stop();

    let datagrams = server_lat.len().max(1) as f64;
    Ok(BenchReport {
        bmcs: args.bmcs,
        rss_before_kib: rss_before,
        rss_bound_kib: rss_bound,
        rss_with_sessions_kib: rss_sessions,
        pss_with_sessions_kib: pss_sessions,
        concurrent_sessions: args.sessions,
        suite: args.suite,
        requests,
        requests_per_s: requests as f64 / elapsed,
        server_p50_us: percentile(&server_lat, 0.50) / 1e3,
        server_p99_us: percentile(&server_lat, 0.99) / 1e3,
        client_p50_us: percentile(&client_lat, 0.50) / 1e3,
        client_p99_us: percentile(&client_lat, 0.99) / 1e3,
        server_cpu_per_datagram_us: (cpu1 - cpu0) as f64 / 1e3 / datagrams,
        sessions_opened,
        sessions_per_s: sessions_opened as f64 / elapsed_b,
        ipmipower,
    })
}

/// Wall times (us) and server CPU of a series of ipmipower runs.
#[derive(Default)]
struct Timings {
    times: Vec<u32>,
    failures: usize,
    cpu_ns: u64,
}

impl Timings {
    fn push(&mut self, run: (u32, bool)) {
        self.times.push(run.0);
        self.failures += !run.1 as usize;
    }

    fn result(mut self, peer: &str, rss: Option<u64>) -> PeerResult {
        self.times.sort_unstable();
        let runs = self.times.len().max(1);
        PeerResult {
            peer: peer.into(),
            runs: self.times.len(),
            failures: self.failures,
            p50_ms: percentile(&self.times, 0.5) / 1e3,
            p90_ms: percentile(&self.times, 0.9) / 1e3,
            server_cpu_per_run_ms: self.cpu_ns as f64 / 1e6 / runs as f64,
            server_handling_per_run_ms: None,
            server_rss_kib: rss,
        }
    }
}

/// One `ipmipower --stat` with MAAS's flags: (wall time in us, success).
async fn ipmipower_stat(addr: SocketAddr) -> (u32, bool) {
    let cmd = Cmd::new("ipmipower")
        .args([
            "-W",
            "opensesspriv",
            "-l",
            "OPERATOR",
            "--driver-type",
            "LAN_2_0",
            "-h",
            &addr.to_string(),
            "-u",
            USER,
            "-p",
        ])
        .secret_arg(PASSWORD)
        .arg("--stat")
        .timeout(Duration::from_secs(30));
    let t = Instant::now();
    let ok = cmd
        .output()
        .await
        .is_ok_and(|o| o.status.success() && o.stdout.contains(": off"));
    (t.elapsed().as_micros() as u32, ok)
}

/// OpenIPMI's ipmi_sim on a free loopback port, with our bench user.
struct IpmiSim {
    child: tokio::process::Child,
    pid: u32,
    addr: SocketAddr,
    dir: PathBuf,
}

impl IpmiSim {
    async fn start() -> anyhow::Result<Self> {
        let dir = tempfile_dir()?;
        let port = std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let conf = format!(
            "name \"bench\"\nset_working_mc 0x20\n  startlan 1\n    addr 127.0.0.1 {port}\n    priv_limit admin\n    allowed_auths_callback none md5 straight\n    allowed_auths_user none md5 straight\n    allowed_auths_operator none md5 straight\n    allowed_auths_admin none md5 straight\n    guid a123456789abcdefa123456789abcdef\n  endlan\n  user 2 true \"{USER}\" \"{PASSWORD}\" admin 10 none md5 straight\n"
        );
        std::fs::write(dir.join("lan.conf"), conf)?;
        std::fs::write(
            dir.join("sim.emu"),
            "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n",
        )?;
        let child = tokio::process::Command::new("ipmi_sim")
            .arg("-c")
            .arg(dir.join("lan.conf"))
            .arg("-f")
            .arg(dir.join("sim.emu"))
            .args(["-n", "-p", "-s"])
            .arg(dir.join("state"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start ipmi_sim")?;
        let pid = child.id().context("ipmi_sim pid")?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let sim = IpmiSim {
            child,
            pid,
            addr,
            dir,
        };
        for _ in 0..50 {
            if ipmipower_stat(addr).await.1 {
                return Ok(sim);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sim.stop().await;
        Err(anyhow::anyhow!("ipmi_sim did not answer on {addr}"))
    }

    /// CPU time the simulator has used, in ns (schedstat is ns-precise).
    fn cpu_ns(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/schedstat", self.pid))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "maas-e2e-bmc-bench-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Measure and print a report (and JSON when asked).
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let r = measure(&args).await?;
    println!("{}", render(&r));
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&r)?)
            .with_context(|| format!("write {}", p.display()))?;
    }
    Ok(())
}

/// The report as a Markdown table.
pub fn render(r: &BenchReport) -> String {
    let mut s = String::new();
    s.push_str("| measure | value |\n| --- | --- |\n");
    s.push_str(&format!(
        "| RSS before fleet | {:.1} MiB |\n",
        r.rss_before_kib as f64 / 1024.0
    ));
    s.push_str(&format!(
        "| RSS with {} BMCs bound | {:.1} MiB |\n",
        r.bmcs,
        r.rss_bound_kib as f64 / 1024.0
    ));
    s.push_str(&format!(
        "| RSS / PSS with one session on each | {:.1} / {:.1} MiB |\n",
        r.rss_with_sessions_kib as f64 / 1024.0,
        r.pss_with_sessions_kib as f64 / 1024.0
    ));
    s.push_str(&format!(
        "| requests/s, {} sessions, suite {} | {:.0} |\n",
        r.concurrent_sessions, r.suite, r.requests_per_s
    ));
    s.push_str(&format!(
        "| server-side p50 / p99 | {:.1} / {:.1} us |\n",
        r.server_p50_us, r.server_p99_us
    ));
    s.push_str(&format!(
        "| client round trip p50 / p99 | {:.1} / {:.1} us |\n",
        r.client_p50_us, r.client_p99_us
    ));
    s.push_str(&format!(
        "| server CPU per datagram | {:.1} us |\n",
        r.server_cpu_per_datagram_us
    ));
    s.push_str(&format!(
        "| sessions/s (open, 1 request, close) | {:.0} |\n",
        r.sessions_per_s
    ));
    for p in &r.ipmipower {
        s.push_str(&format!(
            "| ipmipower --stat vs {}: p50 / p90, server CPU per run (of it handling), server RSS, failures | {:.1} / {:.1} ms, {:.3} ms ({}), {}, {}/{} |\n",
            p.peer,
            p.p50_ms,
            p.p90_ms,
            p.server_cpu_per_run_ms,
            p.server_handling_per_run_ms.map_or("-".into(), |h| format!("{h:.3} ms")),
            p.server_rss_kib.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
            p.failures,
            p.runs
        ));
    }
    s
}
