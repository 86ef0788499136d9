//! `maas-e2e bmc fleet`: N of our BMCs in a process of their own, one per
//! loopback address, with no VM, no sim and no lab, so a real client (the
//! poller in [`super::poll`], ipmitool) can load them and the process's
//! RSS and CPU are the BMCs' alone (ci/bench/bmc-fleet.sh).
//!
//! Only loopback: every address is inside 127.0.0.0/8, which Linux routes
//! to `lo` whole, so N BMCs can each have their own address and MAAS's
//! port 623 without a network namespace. The process stops by itself after
//! `--for` (bounded, so a forgotten bench cannot outlive its run) or on
//! SIGTERM/SIGINT. The password comes from a file and is never printed.
//!
//! `--redfish SHARE` makes that share of the BMCs (spread evenly) also
//! serve Redfish over HTTPS on their own address (the per-machine BMC's
//! Redfish service, src/bmc/redfish: same state as IPMI, Basic auth and
//! sessions), with one certificate made for this process; `--cert-out`
//! writes the certificate (never its key) for a peer to verify against.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::Fleet;
use super::config::{BmcConfig, FleetConfig, PrivilegeName, UserConfig};

/// The most BMCs one process serves: the stretch figure is 10,000, and
/// each BMC holds a socket (one file descriptor).
pub const MAX_COUNT: usize = 20_000;

/// The longest `--for`: benches are bounded in minutes.
pub const MAX_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Options of `maas-e2e bmc fleet`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoopbackFleetArgs {
    /// How many BMCs (1 to 20,000).
    #[arg(long)]
    pub count: usize,
    /// The first BMC's address; the others follow it (127.A.B.C, 127.A.B.C+1,
    /// ...), all inside 127.0.0.0/8.
    #[arg(long, default_value = "127.100.0.1")]
    pub first_address: Ipv4Addr,
    /// UDP port of every BMC: 623 as MAAS expects; 0 picks a free one each.
    #[arg(long, default_value_t = 623)]
    pub port: u16,
    /// The one user of every BMC (administrator).
    #[arg(long, default_value = "maas")]
    pub user: String,
    /// File whose first line is the user's password.
    #[arg(long)]
    pub password_file: PathBuf,
    /// Written once every BMC is bound: one `NAME IP:PORT` line per BMC.
    #[arg(long)]
    pub addresses_out: PathBuf,
    /// Stop after this long (at most 1h).
    #[arg(long = "for", default_value = "10m", value_parser = humantime::parse_duration)]
    pub lifetime: Duration,
    /// The share of BMCs (0 to 1, spread evenly) that also serve Redfish
    /// over HTTPS on their address.
    #[arg(long, default_value_t = 0.0)]
    pub redfish: f64,
    /// TCP port of every Redfish service: 443 as MAAS's redfish driver
    /// expects; 0 picks a free one each.
    #[arg(long, default_value_t = 443)]
    pub redfish_port: u16,
    /// Written with the addresses: one `NAME https://IP:PORT` line per
    /// Redfish BMC (needed with --redfish).
    #[arg(long)]
    pub redfish_out: Option<PathBuf>,
    /// Where to write the Redfish certificate (PEM, without its key).
    #[arg(long)]
    pub cert_out: Option<PathBuf>,
}

/// Why the loopback fleet's options are unusable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LoopbackError {
    #[error("--count {0}: allowed 1 to {MAX_COUNT}")]
    Count(usize),
    #[error(
        "--first-address {first} with --count {count}: the addresses must stay inside \
         127.0.0.1-127.255.255.254 (loopback only); the last would be past 127.255.255.254"
    )]
    OutOfLoopback { first: Ipv4Addr, count: usize },
    #[error("--first-address {0}: must be a loopback address (127.0.0.0/8, not 127.0.0.0)")]
    NotLoopback(Ipv4Addr),
    #[error("--for {0:?}: allowed up to {MAX_LIFETIME:?}")]
    Lifetime(Duration),
    #[error("--redfish {0}: allowed a share from 0 to 1, e.g. 0.25")]
    RedfishShare(f64),
    #[error("--redfish {0} needs --redfish-out (where the Redfish addresses are listed)")]
    RedfishOut(f64),
}

/// Whether BMC `i` (0-based) is in the first `share` of the fleet, spread
/// evenly (as a scenario fleet's redfish share is).
pub fn serves_redfish(share: f64, i: usize) -> bool {
    crate::scenario::FleetSpec::picks(share, i as u32)
}

/// `count` consecutive addresses from `first`, all loopback. Pure.
pub fn loopback_addresses(first: Ipv4Addr, count: usize) -> Result<Vec<Ipv4Addr>, LoopbackError> {
    if count == 0 || count > MAX_COUNT {
        return Err(LoopbackError::Count(count));
    }
    let start = u32::from(first);
    if first.octets()[0] != 127 || start == u32::from(Ipv4Addr::new(127, 0, 0, 0)) {
        return Err(LoopbackError::NotLoopback(first));
    }
    let last = start as u64 + count as u64 - 1;
    if last > u32::from(Ipv4Addr::new(127, 255, 255, 254)) as u64 {
        return Err(LoopbackError::OutOfLoopback { first, count });
    }
    Ok((start..=last as u32).map(Ipv4Addr::from).collect())
}

/// The name of BMC `i` (0-based): `bmc00001` for the first.
pub fn bmc_name(i: usize) -> String {
    format!("bmc{:05}", i + 1)
}

/// The first line of a password file; an empty one is an error naming it.
pub fn read_password_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--password-file {}: cannot read it", path.display()))?;
    let pw = text.lines().next().unwrap_or("").to_string();
    anyhow::ensure!(
        !pw.is_empty() && pw.len() <= 20,
        "--password-file {}: the first line must be a password of 1 to 20 characters (IPMI 2.0's limit)",
        path.display()
    );
    Ok(pw)
}

/// Raise this process's soft RLIMIT_NOFILE to at least `need` (up to the
/// hard limit); one socket per BMC needs more than the usual 1,024.
fn raise_nofile(need: u64) -> anyhow::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
    }
    if lim.rlim_cur >= need {
        return Ok(());
    }
    anyhow::ensure!(
        lim.rlim_max >= need,
        "{need} file descriptors needed (a socket per BMC, a listener per Redfish BMC) but the hard RLIMIT_NOFILE is {}; \
         raise it for this process (e.g. `prlimit --nofile={need}:{need} -- maas-e2e bmc fleet ...`)",
        lim.rlim_max
    );
    lim.rlim_cur = need;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setrlimit(RLIMIT_NOFILE)");
    }
    Ok(())
}

/// The fleet's configuration: one BMC per address, powered off, in memory;
/// the `redfish` share also serves Redfish on `IP:redfish_port`.
pub fn fleet_config(
    addrs: &[Ipv4Addr],
    port: u16,
    user: &str,
    password: &str,
    redfish: f64,
    redfish_port: u16,
) -> FleetConfig {
    let bmcs = addrs
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let u = UserConfig::new(user, password, PrivilegeName::Administrator);
            let mut b = BmcConfig::loopback(&bmc_name(i), vec![u]);
            b.lan.address = format!("{ip}:{port}");
            if serves_redfish(redfish, i) {
                b.redfish = Some(super::config::RedfishEndpoint {
                    address: format!("{ip}:{redfish_port}"),
                });
            }
            b
        })
        .collect();
    FleetConfig {
        transcript: None,
        bmcs,
    }
}

/// Written whole then renamed: a reader that sees the file sees all of it.
fn write_whole(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Serve until `--for` runs out or a signal comes.
pub async fn run(args: LoopbackFleetArgs) -> anyhow::Result<()> {
    let addrs = loopback_addresses(args.first_address, args.count)?;
    if args.lifetime > MAX_LIFETIME {
        return Err(LoopbackError::Lifetime(args.lifetime).into());
    }
    if !(0.0..=1.0).contains(&args.redfish) {
        return Err(LoopbackError::RedfishShare(args.redfish).into());
    }
    if args.redfish > 0.0 && args.redfish_out.is_none() {
        return Err(LoopbackError::RedfishOut(args.redfish).into());
    }
    let password = read_password_file(&args.password_file)?;
    // A socket per BMC, and a listener per Redfish BMC.
    let listeners = (0..args.count)
        .filter(|&i| serves_redfish(args.redfish, i))
        .count();
    raise_nofile((args.count + listeners) as u64 + 256)?;
    let started = Instant::now();
    let handle = Fleet::start(fleet_config(
        &addrs,
        args.port,
        &args.user,
        &password,
        args.redfish,
        args.redfish_port,
    ))
    .await?;
    if let Some(path) = &args.cert_out {
        let pem = handle.redfish_cert_pem().unwrap_or_default();
        std::fs::write(path, pem).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut lines = String::new();
    let mut redfish_lines = String::new();
    for name in handle.names() {
        lines.push_str(&format!("{name} {}\n", handle.lan_addr(&name)?));
        if let Some(a) = handle.redfish_addr(&name) {
            redfish_lines.push_str(&format!("{name} https://{a}\n"));
        }
    }
    if let Some(path) = &args.redfish_out {
        write_whole(path, &redfish_lines)?;
    }
    // Last: a reader that sees this file sees every BMC and the others.
    write_whole(&args.addresses_out, &lines)?;
    eprintln!(
        "bmc fleet: {} BMCs bound on {}..{} port {} ({} with Redfish) in {} ms; serving for {:?} or until SIGTERM",
        args.count,
        addrs[0],
        addrs[addrs.len() - 1],
        args.port,
        redfish_lines.lines().count(),
        started.elapsed().as_millis(),
        args.lifetime
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let why = tokio::select! {
        _ = tokio::time::sleep(args.lifetime) => "time is up",
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    };
    handle.shutdown().await;
    eprintln!("bmc fleet: stopped ({why})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_consecutive_and_cross_octets() {
        let a = loopback_addresses(Ipv4Addr::new(127, 100, 0, 254), 4).unwrap();
        let shown: Vec<String> = a.iter().map(|x| x.to_string()).collect();
        assert_eq!(
            shown,
            [
                "127.100.0.254",
                "127.100.0.255",
                "127.100.1.0",
                "127.100.1.1"
            ]
        );
    }

    #[test]
    fn addresses_outside_loopback_are_refused() {
        assert_eq!(
            loopback_addresses(Ipv4Addr::new(10, 0, 0, 1), 1),
            Err(LoopbackError::NotLoopback(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert_eq!(
            loopback_addresses(Ipv4Addr::new(127, 0, 0, 0), 1),
            Err(LoopbackError::NotLoopback(Ipv4Addr::new(127, 0, 0, 0)))
        );
        let first = Ipv4Addr::new(127, 255, 255, 250);
        assert!(loopback_addresses(first, 5).is_ok());
        assert_eq!(
            loopback_addresses(first, 6),
            Err(LoopbackError::OutOfLoopback { first, count: 6 })
        );
        assert_eq!(
            loopback_addresses(Ipv4Addr::new(127, 1, 0, 1), 0),
            Err(LoopbackError::Count(0))
        );
        assert_eq!(
            loopback_addresses(Ipv4Addr::new(127, 1, 0, 1), MAX_COUNT + 1),
            Err(LoopbackError::Count(MAX_COUNT + 1))
        );
    }

    #[test]
    fn config_puts_each_bmc_on_its_address_and_port() {
        let addrs = loopback_addresses(Ipv4Addr::new(127, 9, 0, 1), 2).unwrap();
        let cfg = fleet_config(&addrs, 623, "maas", "pw", 0.0, 443);
        let shown: Vec<(String, String, String)> = cfg
            .bmcs
            .iter()
            .map(|b| {
                (
                    b.name.clone(),
                    b.lan.address.clone(),
                    b.users[0].name.clone(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("bmc00001".into(), "127.9.0.1:623".into(), "maas".into()),
                ("bmc00002".into(), "127.9.0.2:623".into(), "maas".into())
            ]
        );
    }

    #[test]
    fn a_redfish_share_serves_redfish_on_the_bmcs_own_address() {
        let addrs = loopback_addresses(Ipv4Addr::new(127, 9, 0, 1), 8).unwrap();
        let cfg = fleet_config(&addrs, 623, "maas", "pw", 0.25, 443);
        let redfish: Vec<(String, String)> = cfg
            .bmcs
            .iter()
            .filter_map(|b| Some((b.name.clone(), b.redfish.as_ref()?.address.clone())))
            .collect();
        assert_eq!(
            redfish,
            [
                ("bmc00004".into(), "127.9.0.4:443".into()),
                ("bmc00008".into(), "127.9.0.8:443".into())
            ]
        );
    }

    #[test]
    fn password_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "\n").unwrap();
        let e = read_password_file(&p).unwrap_err().to_string();
        assert!(
            e.contains(&p.display().to_string()) && e.contains("1 to 20"),
            "{e}"
        );
        std::fs::write(&p, "s3cret\nignored\n").unwrap();
        assert_eq!(read_password_file(&p).unwrap(), "s3cret");
        let missing = dir.path().join("none");
        let e = format!("{:#}", read_password_file(&missing).unwrap_err());
        assert!(e.contains("none") && e.contains("cannot read"), "{e}");
    }
}
