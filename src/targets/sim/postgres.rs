//! Postgres for the sim's state: a local server process by default, or a
//! URL to a server someone else runs (`--postgres container`, the chart
//! helper's testcontainers set-up, hands its URL in here).
//!
//! Debian's initdb and postgres refuse to run as root, so when the harness
//! is root they run as the `postgres` user (`runuser`) on a data directory
//! that user owns, outside /root (which the postgres user cannot enter).

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::cmd::{Cmd, CmdError};

/// Where the sim's Postgres comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostgresMode {
    /// Start a local server process (`LocalPostgres`).
    Local,
    /// Use a running server at this libpq URL or key=value string
    /// (a testcontainers container, for `--postgres container`).
    Container(String),
}

impl PostgresMode {
    /// Bring the database up: start a local server (with `opts`), or just
    /// hand the container's URL on. Keep the result alive while the region
    /// runs; dropping it stops a local server.
    pub async fn start(&self, opts: LocalPostgresOptions) -> Result<SimDatabase, PostgresError> {
        match self {
            PostgresMode::Local => Ok(SimDatabase::Local(LocalPostgres::start(opts).await?)),
            PostgresMode::Container(url) => Ok(SimDatabase::External(url.clone())),
        }
    }
}

/// The sim's database, whichever way it came.
// One per run: boxing the larger variant would save nothing worth the API change.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum SimDatabase {
    Local(LocalPostgres),
    /// Run by someone else (a testcontainers container); not stopped here.
    External(String),
}

impl SimDatabase {
    /// What `SimRegionConfig::new` takes.
    pub fn connection_string(&self) -> &str {
        match self {
            SimDatabase::Local(pg) => pg.connection_string(),
            SimDatabase::External(url) => url,
        }
    }
}

/// How the local server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgListen {
    /// TCP on `addr`; port 0 picks a free port.
    Tcp { addr: IpAddr, port: u16 },
    /// Only a unix socket in `dir` (no TCP at all).
    Unix { dir: PathBuf },
}

impl Default for PgListen {
    fn default() -> Self {
        PgListen::Tcp {
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
        }
    }
}

/// Options of `LocalPostgres::start`.
#[derive(Debug, Clone)]
pub struct LocalPostgresOptions {
    /// Holds data/, sock/ and postgres.log; created, and chowned to postgres.
    /// Must not be under /root. E.g. /var/lib/maas-e2e/<run-id>/postgres.
    pub base_dir: PathBuf,
    pub listen: PgListen,
    /// Run the server inside this network namespace (a lab address).
    pub netns: Option<String>,
    /// Database created for the sim.
    pub database: String,
    /// Where a cluster made once by initdb is kept and copied from (a cache:
    /// deleting it only costs the next run an initdb). None: initdb every time.
    pub template_dir: Option<PathBuf>,
}

/// The default `template_dir`, beside the image cache.
pub const DEFAULT_TEMPLATE_DIR: &str = "/var/lib/maas-e2e/postgres-template";

impl LocalPostgresOptions {
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        LocalPostgresOptions {
            base_dir: base_dir.into(),
            listen: PgListen::default(),
            netns: None,
            database: "maas_sim".into(),
            template_dir: Some(PathBuf::from(DEFAULT_TEMPLATE_DIR)),
        }
    }
}

/// A failure starting, reaching or migrating Postgres.
#[derive(Debug, Error)]
pub enum PostgresError {
    #[error(
        "no Postgres server binaries: looked for {looked}; install the Debian package postgresql (ci/setup-host.sh does)"
    )]
    NoBinaries { looked: String },
    #[error(
        "the postgres system user does not exist (initdb refuses root); install the Debian package postgresql"
    )]
    NoPostgresUser,
    #[error(
        "base directory {path} is under /root, which the postgres user cannot enter; use e.g. /var/lib/maas-e2e/..."
    )]
    UnderRoot { path: PathBuf },
    #[error("preparing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("initdb failed: {0}")]
    Initdb(#[source] CmdError),
    #[error("copying the template cluster {from} to {to}: {source}")]
    CopyTemplate {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: Box<CmdError>,
    },
    #[error("no template cluster at {0} after another run made it")]
    NoTemplate(PathBuf),
    #[error("could not start postgres: {0}")]
    Spawn(#[source] std::io::Error),
    #[error(
        "postgres did not accept connections within {waited:?} ({why}); its log {log}:\n{log_tail}"
    )]
    NotReady {
        waited: Duration,
        why: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error("connecting to Postgres ({target}): {source}")]
    Connect {
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("{what}: {source}")]
    Sql {
        what: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("schema migration {version} failed: {source}")]
    Migration {
        version: String,
        #[source]
        source: tokio_postgres::Error,
    },
}

/// A Postgres server process this harness started; stopped on drop.
#[derive(Debug)]
pub struct LocalPostgres {
    base_dir: PathBuf,
    data_dir: PathBuf,
    log_path: PathBuf,
    connection: String,
    /// The runuser (or postgres) child; leader of the server's process group.
    child: Option<tokio::process::Child>,
    pgid: Option<i32>,
}

/// Debian's newest server binaries: /usr/lib/postgresql/<ver>/bin.
pub fn find_bin_dir() -> Result<PathBuf, PostgresError> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, b)| b)
        .ok_or_else(|| PostgresError::NoBinaries {
            looked: format!("{}/<version>/bin/initdb", root.display()),
        })
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PostgresError + '_ {
    move |source| PostgresError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether server commands must switch to the postgres user.
fn need_postgres_user() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn chown_tree(
    path: &Path,
    uid: nix::unistd::Uid,
    gid: nix::unistd::Gid,
) -> Result<(), PostgresError> {
    nix::unistd::chown(path, Some(uid), Some(gid)).map_err(|e| PostgresError::Io {
        path: path.into(),
        source: e.into(),
    })?;
    if path.is_dir() {
        for entry in fs::read_dir(path).map_err(io_err(path))? {
            chown_tree(&entry.map_err(io_err(path))?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// initdb into `data_dir`. Trust auth: the server listens only on loopback,
/// a lab address or a socket directory only this harness uses.
async fn initdb(
    bin: &Path,
    data_dir: &Path,
    wrap: &impl Fn(Cmd) -> Cmd,
) -> Result<(), PostgresError> {
    wrap(Cmd::new(bin.join("initdb").display().to_string()))
        .args([
            "-D",
            &data_dir.display().to_string(),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ])
        .timeout(Duration::from_secs(120))
        .run()
        .await
        .map_err(PostgresError::Initdb)?;
    Ok(())
}

/// The name of the template for this server version and locale: initdb's
/// output depends on both, and on nothing else this harness varies.
pub fn template_key(bin: &Path, env: impl Fn(&str) -> Option<String>) -> String {
    let major = bin
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unknown".into());
    let locale = ["LC_ALL", "LC_CTYPE", "LC_COLLATE", "LANG"]
        .iter()
        .find_map(|k| env(k).filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "C".into());
    let safe: String = locale
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("pg{major}-{safe}-v1")
}

/// The template cluster under `root`, made by initdb the first time. Runs
/// started together may race to make it: each initdb's into its own
/// directory and the first rename wins.
async fn ensure_template(
    bin: &Path,
    root: &Path,
    owner: Option<&nix::unistd::User>,
    wrap: &impl Fn(Cmd) -> Cmd,
) -> Result<PathBuf, PostgresError> {
    let dir = root.join(template_key(bin, |k| std::env::var(k).ok()));
    if dir.join("PG_VERSION").exists() {
        return Ok(dir);
    }
    fs::create_dir_all(root).map_err(io_err(root))?;
    remove_abandoned_templates(root);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let making = root.join(format!(".making-{}-{nanos}", std::process::id()));
    fs::create_dir_all(&making).map_err(io_err(&making))?;
    if let Some(u) = owner {
        chown_tree(&making, u.uid, u.gid)?;
    }
    let made = initdb(bin, &making, wrap).await;
    if let Err(e) = made {
        let _ = fs::remove_dir_all(&making);
        return Err(e);
    }
    if fs::rename(&making, &dir).is_err() {
        // Another run's template got there first; it is as good as ours.
        let _ = fs::remove_dir_all(&making);
        if !dir.join("PG_VERSION").exists() {
            return Err(PostgresError::NoTemplate(dir));
        }
    }
    Ok(dir)
}

/// Half-made templates (`.making-PID-N`) of runs killed during initdb:
/// removed once their process is gone; a live one's is left to finish.
fn remove_abandoned_templates(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(".making-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let gone = matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        );
        if gone {
            let path = entry.path();
            match fs::remove_dir_all(&path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed a half-made Postgres template")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove a half-made Postgres template")
                }
            }
        }
    }
}

/// `cp -a`: owner, modes (data/ must stay 0700) and all.
async fn copy_cluster(template: &Path, data_dir: &Path) -> Result<(), PostgresError> {
    Cmd::new("cp")
        .arg("-a")
        .arg(template.display().to_string())
        .arg(data_dir.display().to_string())
        .timeout(Duration::from_secs(60))
        .run()
        .await
        .map_err(|source| PostgresError::CopyTemplate {
            from: template.into(),
            to: data_dir.into(),
            source: Box::new(source),
        })?;
    Ok(())
}

/// A free TCP port on `addr` inside `netns` (bound then released; a small
/// race is accepted).
fn free_port(netns: Option<&str>, addr: IpAddr) -> Result<u16, PostgresError> {
    let io = |source| PostgresError::Io {
        path: PathBuf::from(addr.to_string()),
        source,
    };
    let l = crate::lab::netns::bind_tcp(netns, std::net::SocketAddr::new(addr, 0)).map_err(io)?;
    Ok(l.local_addr().map_err(io)?.port())
}

impl LocalPostgres {
    /// initdb (first time), start the server, wait until it answers, and
    /// create the sim's database. Migrations are the caller's (`migrate`).
    pub async fn start(opts: LocalPostgresOptions) -> Result<LocalPostgres, PostgresError> {
        let bin = find_bin_dir()?;
        let base = opts.base_dir.clone();
        if base.starts_with("/root") {
            return Err(PostgresError::UnderRoot { path: base });
        }
        let as_postgres = need_postgres_user();
        let owner = if as_postgres {
            Some(
                nix::unistd::User::from_name("postgres")
                    .ok()
                    .flatten()
                    .ok_or(PostgresError::NoPostgresUser)?,
            )
        } else {
            None
        };
        let data_dir = base.join("data");
        let sock_dir = match &opts.listen {
            PgListen::Unix { dir } => dir.clone(),
            PgListen::Tcp { .. } => base.join("sock"),
        };
        fs::create_dir_all(&base).map_err(io_err(&base))?;
        fs::create_dir_all(&sock_dir).map_err(io_err(&sock_dir))?;
        if let Some(u) = &owner {
            chown_tree(&base, u.uid, u.gid)?;
            chown_tree(&sock_dir, u.uid, u.gid)?;
        }
        let wrap = |c: Cmd| -> Cmd {
            let c = if as_postgres {
                c.as_user("postgres")
            } else {
                c
            };
            match &opts.netns {
                Some(ns) => c.in_netns(ns.clone()),
                None => c,
            }
        };
        if !data_dir.join("PG_VERSION").exists() {
            // initdb was most of a one-machine run's own CPU (about 0.5 s,
            // creating a thousand files): copy a cluster made once instead.
            let copied = match &opts.template_dir {
                None => false,
                Some(root) => {
                    let made = match ensure_template(&bin, root, owner.as_ref(), &wrap).await {
                        Ok(template) => copy_cluster(&template, &data_dir).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = &made {
                        tracing::warn!(error = %e, "no Postgres template cluster; running initdb for this run");
                    }
                    made.is_ok()
                }
            };
            if !copied {
                let _ = fs::remove_dir_all(&data_dir);
                initdb(&bin, &data_dir, &wrap).await?;
            }
        }
        let (listen_addresses, port, host) = match &opts.listen {
            PgListen::Tcp { addr, port } => {
                let port = if *port == 0 {
                    free_port(opts.netns.as_deref(), *addr)?
                } else {
                    *port
                };
                (addr.to_string(), port, addr.to_string())
            }
            PgListen::Unix { dir } => (String::new(), 5432, dir.display().to_string()),
        };
        let log_path = base.join("postgres.log");
        let server = wrap(Cmd::new(bin.join("postgres").display().to_string())).args([
            "-D".to_string(),
            data_dir.display().to_string(),
            "-p".into(),
            port.to_string(),
            "-k".into(),
            sock_dir.display().to_string(),
            "-c".into(),
            format!("listen_addresses={listen_addresses}"),
            // Test state: durability is not worth the fsyncs.
            "-c".into(),
            "fsync=off".into(),
            "-c".into(),
            "synchronous_commit=off".into(),
            "-c".into(),
            "full_page_writes=off".into(),
            "-c".into(),
            "shared_buffers=16MB".into(),
            "-c".into(),
            "max_connections=40".into(),
        ]);
        let log = fs::File::create(&log_path).map_err(io_err(&log_path))?;
        let log2 = log.try_clone().map_err(io_err(&log_path))?;
        let mut cmd = server.to_tokio();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        tracing::info!(command = %server.display(), "starting postgres");
        let child = cmd.spawn().map_err(PostgresError::Spawn)?;
        let pgid = child.id().map(|p| p as i32);
        let mut pg = LocalPostgres {
            base_dir: base,
            data_dir,
            log_path,
            connection: format!(
                "host={host} port={port} user=postgres dbname={}",
                opts.database
            ),
            child: Some(child),
            pgid,
        };
        let admin = format!("host={host} port={port} user=postgres dbname=postgres");
        let client = pg.wait_ready(&admin, Duration::from_secs(60)).await?;
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&opts.database],
            )
            .await
            .map_err(|source| PostgresError::Sql {
                what: "looking up the sim database".into(),
                source,
            })?;
        if exists.is_none() {
            // A database name cannot be a bind parameter; it is quoted here.
            client
                .batch_execute(&format!(
                    "CREATE DATABASE \"{}\"",
                    opts.database.replace('"', "")
                ))
                .await
                .map_err(|source| PostgresError::Sql {
                    what: format!("creating database {}", opts.database),
                    source,
                })?;
        }
        Ok(pg)
    }

    async fn wait_ready(
        &mut self,
        conn: &str,
        within: Duration,
    ) -> Result<tokio_postgres::Client, PostgresError> {
        let start = Instant::now();
        let mut last = String::from("not tried");
        while start.elapsed() < within {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(
                    self.not_ready(start.elapsed(), format!("the server exited with {status}"))
                );
            }
            match connect(conn).await {
                Ok(c) => return Ok(c),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(self.not_ready(start.elapsed(), last))
    }

    fn not_ready(&self, waited: Duration, why: String) -> PostgresError {
        let text = fs::read_to_string(&self.log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        PostgresError::NotReady {
            waited,
            why,
            log: self.log_path.clone(),
            log_tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        }
    }

    /// libpq key=value string for the sim's database.
    pub fn connection_string(&self) -> &str {
        &self.connection
    }

    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The postmaster's pid, from its pid file.
    fn postmaster_pid(&self) -> Option<i32> {
        fs::read_to_string(self.data_dir.join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Fast shutdown (SIGINT to the postmaster), then SIGKILL the process
    /// group if it is still there after 10 s. Idempotent.
    pub fn stop(&mut self) {
        let Some(pgid) = self.pgid.take() else { return };
        if let Some(pid) = self.postmaster_pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGINT,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while crate::process::is_alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        crate::process::terminate_group(pgid, Duration::from_secs(2));
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.try_wait();
        }
    }

    /// Stop the server and delete its directory.
    pub fn destroy(mut self) -> Result<(), PostgresError> {
        self.stop();
        fs::remove_dir_all(&self.base_dir).map_err(io_err(&self.base_dir))
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Connect and drive the connection on a background task.
pub async fn connect(conn: &str) -> Result<tokio_postgres::Client, PostgresError> {
    let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls)
        .await
        .map_err(|source| PostgresError::Connect {
            target: redact_conn(conn),
            source,
        })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection closed");
        }
    });
    Ok(client)
}

/// A connection string without its password, for messages.
pub fn redact_conn(conn: &str) -> String {
    if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        // postgres://user:pass@host -> postgres://user:<redacted>@host
        if let Some((scheme_user, rest)) = conn.split_once('@')
            && let Some((head, _pw)) = scheme_user.rsplit_once(':')
            && !head.ends_with('/')
        {
            return format!("{head}:<redacted>@{rest}");
        }
        return conn.to_string();
    }
    conn.split_whitespace()
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=<redacted>"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The schema migrations, in order (compiled in; a test checks the list
/// matches migrations/*.sql).
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../../../migrations/0001_init.sql"),
    ),
    (
        "0002_config_names",
        include_str!("../../../migrations/0002_config_names.sql"),
    ),
    (
        "0003_testing_and_power_monitor",
        include_str!("../../../migrations/0003_testing_and_power_monitor.sql"),
    ),
    (
        "0004_user_scripts",
        include_str!("../../../migrations/0004_user_scripts.sql"),
    ),
];

/// Apply every migration not yet recorded in schema_migrations, in order,
/// each in its own transaction. Returns the versions applied now.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<Vec<String>, PostgresError> {
    let sql_err = |what: &str| {
        let what = what.to_string();
        move |source| PostgresError::Sql { what, source }
    };
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version TEXT PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            SELECT pg_advisory_lock(54240);",
        )
        .await
        .map_err(sql_err("creating schema_migrations"))?;
    let mut applied = Vec::new();
    let result: Result<(), PostgresError> = async {
        for (version, sql) in MIGRATIONS {
            let done = client
                .query_opt(
                    "SELECT 1 FROM schema_migrations WHERE version = $1",
                    &[version],
                )
                .await
                .map_err(sql_err("reading schema_migrations"))?;
            if done.is_some() {
                continue;
            }
            let tx = client
                .transaction()
                .await
                .map_err(sql_err("opening a migration transaction"))?;
            tx.batch_execute(sql)
                .await
                .map_err(|source| PostgresError::Migration {
                    version: version.to_string(),
                    source,
                })?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await
            .map_err(|source| PostgresError::Migration {
                version: version.to_string(),
                source,
            })?;
            tx.commit()
                .await
                .map_err(|source| PostgresError::Migration {
                    version: version.to_string(),
                    source,
                })?;
            applied.push(version.to_string());
        }
        Ok(())
    }
    .await;
    let _ = client
        .batch_execute("SELECT pg_advisory_unlock(54240)")
        .await;
    result.map(|_| applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_list_matches_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut on_disk: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".sql")
                    .map(String::from)
            })
            .collect();
        on_disk.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|(v, _)| v.to_string()).collect();
        assert_eq!(
            listed, on_disk,
            "add new migrations/*.sql files to MIGRATIONS"
        );
    }

    #[test]
    fn half_made_templates_of_dead_processes_are_removed_and_live_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let abandoned = root.path().join(format!(".making-{dead}-17"));
        let live = root
            .path()
            .join(format!(".making-{}-18", std::process::id()));
        let template = root.path().join("15-C.UTF-8");
        for d in [&abandoned, &live, &template] {
            fs::create_dir_all(d.join("base")).unwrap();
        }
        remove_abandoned_templates(root.path());
        assert!(!abandoned.exists(), "a dead run's half-made template stays");
        assert!(live.exists(), "a live run's half-made template was removed");
        assert!(template.exists(), "a finished template was removed");
    }

    #[test]
    fn template_key_follows_the_server_version_and_the_locale() {
        let bin = Path::new("/usr/lib/postgresql/15/bin");
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(template_key(bin, env(&[])), "pg15-C-v1");
        assert_eq!(
            template_key(bin, env(&[("LANG", "en_US.UTF-8")])),
            "pg15-en_US.UTF-8-v1"
        );
        // LC_ALL wins over LANG, as it does for initdb; an empty one does not count.
        assert_eq!(
            template_key(bin, env(&[("LC_ALL", "C.UTF-8"), ("LANG", "de_DE.UTF-8")])),
            "pg15-C.UTF-8-v1"
        );
        assert_eq!(
            template_key(bin, env(&[("LC_ALL", ""), ("LANG", "de_DE.UTF-8")])),
            "pg15-de_DE.UTF-8-v1"
        );
        assert_eq!(
            template_key(
                Path::new("/usr/lib/postgresql/16/bin"),
                env(&[("LANG", "a/b")])
            ),
            "pg16-a_b-v1"
        );
    }

    #[test]
    fn connection_strings_lose_their_password() {
        assert_eq!(
            redact_conn("postgres://maas:pw@10.0.0.2:5432/maasdb"),
            "postgres://maas:<redacted>@10.0.0.2:5432/maasdb"
        );
        assert_eq!(
            redact_conn("host=x password=pw user=u"),
            "host=x password=<redacted> user=u"
        );
    }

    #[test]
    fn refuses_a_base_under_root() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        if !crate::testing::require(
            "Postgres server binaries",
            find_bin_dir().is_ok(),
            "apt-get install postgresql",
        ) {
            return;
        }
        let e = rt
            .block_on(LocalPostgres::start(LocalPostgresOptions::new("/root/x")))
            .unwrap_err();
        assert!(matches!(e, PostgresError::UnderRoot { .. }), "{e}");
    }
}
