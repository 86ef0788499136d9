//! Carrying out a `ChartPlan` on a host with docker, kind, helm and
//! kubectl: `ChartRun::deploy` runs the stages up to a deployed, wired
//! MAAS; the caller's MAAS client then performs `plan.maas_calls()` and
//! checks `plan.expectations()`; `collect` gathers evidence; `teardown`
//! undoes everything (unless the cluster is kept) and runs on every exit
//! path, also after a partial deploy, because the run's state grows in
//! `self` step by step.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cmd::{Cmd, CmdError};

use super::options::ChartOptions;
use super::plan::{ChartPlan, Step, files, pod_log_steps};
use super::postgres::{self, PostgresContainer, PostgresError};
use super::prereq::{self, MissingTools};
use super::waits::{self, WaitError};
use super::wiring::{self, NodeWiring, WiringError};

/// Why a chart run stopped.
#[derive(Debug, Error)]
pub enum ChartError {
    #[error(transparent)]
    Prerequisites(#[from] MissingTools),
    #[error("stage {stage}: {source}")]
    Step {
        stage: &'static str,
        #[source]
        source: CmdError,
    },
    #[error("stage postgres: {0}")]
    Postgres(#[from] Box<PostgresError>),
    #[error("stage wiring: {0}")]
    Wiring(#[from] WiringError),
    #[error("stage deploy: {0}")]
    Wait(#[from] WaitError),
    #[error("Kubernetes client from {kubeconfig}: {source}")]
    Kube {
        kubeconfig: PathBuf,
        #[source]
        source: kube::Error,
    },
    #[error("reading secret {namespace}/maas-api-key: {detail}")]
    ApiKey { namespace: String, detail: String },
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("port-forward for {purpose} did not report its local port: {detail}")]
    PortForward {
        purpose: &'static str,
        detail: String,
    },
}

/// The admin's API key from Secret maas-api-key (consumer:token:secret).
#[derive(Clone)]
pub struct ApiKey(pub String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// A running `kubectl port-forward`, stopped with its process group.
pub struct PortForward {
    pub purpose: &'static str,
    pub local_port: u16,
    child: tokio::process::Child,
}

impl PortForward {
    /// Its process id (the leader of its own process group), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// What the MAAS client needs once `deploy` returned.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// http://127.0.0.1:PORT/MAAS (region API via port-forward).
    pub maas_url: String,
    /// The 127.0.0.1 port forwarded to the region's 5240 (in `maas_url`).
    pub region_port: u16,
    /// 127.0.0.1 port forwarded to the rack's 5249.
    pub rack_rpc_port: u16,
    pub api_key: ApiKey,
}

/// One chart run's state.
pub struct ChartRun {
    pub plan: ChartPlan,
    keep: bool,
    admin_password: String,
    user_password: String,
    pub postgres: Option<PostgresContainer>,
    wired: Vec<NodeWiring>,
    pub port_forwards: Vec<PortForward>,
    client: Option<Client>,
    /// How often waits poll.
    pub poll: Duration,
}

/// Read `Forwarding from 127.0.0.1:PORT -> N` (kubectl's first line).
pub fn parse_forwarded_port(line: &str) -> Option<u16> {
    let rest = line.trim().strip_prefix("Forwarding from ")?;
    let addr = rest.split_whitespace().next()?;
    addr.rsplit_once(':')?.1.parse().ok()
}

impl ChartRun {
    pub fn new(plan: ChartPlan, opts: &ChartOptions) -> Self {
        ChartRun {
            plan,
            keep: opts.keep_cluster,
            admin_password: opts.secrets.db_admin_password.clone(),
            user_password: opts.secrets.db_user_password.clone(),
            postgres: None,
            wired: Vec::new(),
            port_forwards: Vec::new(),
            client: None,
            poll: Duration::from_secs(5),
        }
    }

    fn write(&self, path: &Path, contents: &str) -> Result<(), ChartError> {
        let io = |source| ChartError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(path, contents).map_err(io)
    }

    async fn client(&mut self) -> Result<Client, ChartError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let kubeconfig = self.plan.kubeconfig.clone();
        let c = waits::client_from_kubeconfig(&kubeconfig, None)
            .await
            .map_err(|source| ChartError::Kube { kubeconfig, source })?;
        self.client = Some(c.clone());
        Ok(c)
    }

    /// Check prerequisites, then run every stage up to and including
    /// `deploy`. Call `teardown` afterwards whatever this returns.
    pub async fn deploy(&mut self) -> Result<Deployed, ChartError> {
        prereq::check()?;
        // The lab comes first (lab stage): fail before a cluster exists.
        if let Some(w) = self.plan.wiring.first() {
            wiring::check_lab(w)?;
        }
        std::fs::create_dir_all(&self.plan.run_dir).map_err(|source| ChartError::Io {
            path: self.plan.run_dir.clone(),
            source,
        })?;
        let stages: Vec<(&'static str, Vec<Step>)> = self
            .plan
            .stages
            .iter()
            .filter(|s| !matches!(s.name, "configure" | "chart-checks"))
            .map(|s| (s.name, s.steps.clone()))
            .collect();
        for (stage, steps) in stages {
            tracing::info!(stage, "chart stage");
            for step in steps {
                self.step(stage, step).await?;
            }
        }
        let region = self.forwarded("the region API")?;
        let rack = self.forwarded("the rack's 5249")?;
        let api_key = self.api_key().await?;
        Ok(Deployed {
            maas_url: format!("http://127.0.0.1:{region}/MAAS"),
            region_port: region,
            rack_rpc_port: rack,
            api_key,
        })
    }

    fn forwarded(&self, prefix: &str) -> Result<u16, ChartError> {
        self.port_forwards
            .iter()
            .find(|p| p.purpose.starts_with(prefix))
            .map(|p| p.local_port)
            .ok_or(ChartError::PortForward {
                purpose: "deploy",
                detail: format!("no port-forward for {prefix}"),
            })
    }

    async fn step(&mut self, stage: &'static str, step: Step) -> Result<(), ChartError> {
        match step {
            Step::Run(cmd) => {
                cmd.run()
                    .await
                    .map_err(|source| ChartError::Step { stage, source })?;
            }
            Step::Capture { cmd, to } => {
                let out = cmd
                    .run()
                    .await
                    .map_err(|source| ChartError::Step { stage, source })?;
                self.write(&to, &self.plan.redact(&out))?;
            }
            Step::WriteFile(path) => {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let contents = if name == files::POSTGRES_SERVICE {
                    let ip = self
                        .postgres
                        .as_ref()
                        .map(|p| p.network_address.to_string())
                        .unwrap_or_default();
                    postgres::service_manifest(&self.plan.namespace, &ip)
                } else {
                    self.plan.file(name).unwrap_or_default().to_string()
                };
                self.write(&path, &contents)?;
            }
            Step::StartPostgres => {
                if let Some(spec) = self.plan.postgres.clone() {
                    self.postgres = Some(
                        postgres::start_container(
                            &spec,
                            &self.admin_password,
                            Duration::from_secs(180),
                        )
                        .await
                        .map_err(Box::new)?,
                    );
                }
            }
            Step::PrecreateDatabase => {
                if let Some(pg) = &self.postgres {
                    let ran = postgres::precreate_maasdb(
                        "127.0.0.1",
                        pg.host_port,
                        &self.admin_password,
                        &self.user_password,
                    )
                    .await
                    .map_err(Box::new)?;
                    tracing::info!(?ran, "pre-created maasdb");
                }
            }
            Step::Wire(w) => {
                wiring::wire_node(&w).await?;
                self.wired.push(w);
            }
            Step::Wait(spec) => {
                let client = self.client().await?;
                let state =
                    waits::wait_for(&client, &self.plan.namespace, &spec, self.poll).await?;
                tracing::info!(object = %spec.target.object(), %state, "ready");
            }
            Step::Background { cmd, purpose } => {
                let pf = start_port_forward(&cmd, purpose).await?;
                self.port_forwards.push(pf);
            }
            Step::Api(_) | Step::Expect(_) | Step::Note(_) => {}
        }
        Ok(())
    }

    /// The token from Secret maas-api-key.
    pub async fn api_key(&mut self) -> Result<ApiKey, ChartError> {
        let ns = self.plan.namespace.clone();
        let client = self.client().await?;
        let secret = Api::<Secret>::namespaced(client, &ns)
            .get("maas-api-key")
            .await
            .map_err(|e| ChartError::ApiKey {
                namespace: ns.clone(),
                detail: e.to_string(),
            })?;
        let token = secret
            .data
            .and_then(|d| d.get("token").cloned())
            .ok_or_else(|| ChartError::ApiKey {
                namespace: ns.clone(),
                detail: "no key `token`".into(),
            })?;
        let text = String::from_utf8(token.0).map_err(|_| ChartError::ApiKey {
            namespace: ns,
            detail: "token is not UTF-8".into(),
        })?;
        Ok(ApiKey(text.trim().to_string()))
    }

    /// Gather evidence into `<run dir>/collected`; every failure is noted
    /// and skipped (a broken cluster is when this matters most).
    pub async fn collect(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let out_dir = self.plan.run_dir.join(files::COLLECT_DIR);
        let mut steps = self.plan.collect.clone();
        // Per-pod log steps replace the `{pod}` template.
        steps
            .retain(|s| !matches!(s, Step::Capture { cmd, .. } if cmd.display().contains("{pod}")));
        for step in steps {
            match step {
                Step::Capture { cmd, to } => {
                    let text = match cmd.output().await {
                        Ok(o) => format!(
                            "{}{}",
                            o.stdout,
                            if o.stderr.is_empty() {
                                String::new()
                            } else {
                                format!("\n--- stderr ---\n{}", o.stderr)
                            }
                        ),
                        Err(e) => format!("{e}"),
                    };
                    if let Err(e) = self.write(&to, &self.plan.redact(&text)) {
                        problems.push(e.to_string());
                    }
                    if to.ends_with("pods.txt") {
                        for pod in text.lines().filter(|l| l.starts_with("pod/")) {
                            for s in pod_log_steps(
                                &self.plan.kubeconfig,
                                &self.plan.namespace,
                                pod,
                                &out_dir,
                            ) {
                                if let Step::Capture { cmd, to } = s {
                                    let text = cmd
                                        .output()
                                        .await
                                        .map(|o| format!("{}{}", o.stdout, o.stderr))
                                        .unwrap_or_else(|e| e.to_string());
                                    let _ = self.write(&to, &self.plan.redact(&text));
                                }
                            }
                        }
                    }
                }
                Step::Run(cmd) => {
                    if let Err(e) = cmd.run().await {
                        problems.push(e.to_string());
                    }
                }
                _ => {}
            }
        }
        // kind's exported logs hold job output with `set -x` lines: redact in place.
        redact_tree(&out_dir, &|t| self.plan.redact(t));
        problems
    }

    /// Undo what the run made (unless the cluster is kept); never fails,
    /// returns what could not be undone.
    pub async fn teardown(mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for mut pf in self.port_forwards.drain(..) {
            if let Some(pid) = pf.child.id() {
                crate::process::terminate_group(pid as i32, Duration::from_secs(2));
            }
            let _ = pf.child.wait().await;
        }
        if self.keep {
            if let Some(pg) = self.postgres.take() {
                // Left running with the cluster: forget the handle so its drop does not remove it.
                std::mem::forget(pg);
            }
            return problems;
        }
        for w in self.wired.drain(..) {
            wiring::unwire_node(&w).await;
        }
        if let Some(pg) = self.postgres.take()
            && let Err(e) = pg.container.rm().await
        {
            problems.push(format!("removing Postgres container {}: {e}", pg.name));
        }
        for step in self.plan.teardown.clone() {
            if let Step::Run(cmd) = step {
                // Wiring and Postgres are gone already; their commands may fail harmlessly.
                let expected_gone = cmd.program() == "ip" || cmd.program() == "docker";
                if let Err(e) = cmd.run().await
                    && !expected_gone
                {
                    problems.push(e.to_string());
                }
            }
        }
        problems
    }
}

async fn start_port_forward(cmd: &Cmd, purpose: &'static str) -> Result<PortForward, ChartError> {
    let mut tokio_cmd = cmd.to_tokio();
    tokio_cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    let mut child = tokio_cmd.spawn().map_err(|e| ChartError::PortForward {
        purpose,
        detail: format!("{}: {e}", cmd.display()),
    })?;
    let stdout = child.stdout.take().ok_or(ChartError::PortForward {
        purpose,
        detail: "no stdout".into(),
    })?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .map_err(|_| ChartError::PortForward {
            purpose,
            detail: "nothing printed within 30 s".into(),
        })?
        .map_err(|e| ChartError::PortForward {
            purpose,
            detail: e.to_string(),
        })?
        .unwrap_or_default();
    let local_port = parse_forwarded_port(&first).ok_or_else(|| ChartError::PortForward {
        purpose,
        detail: format!("first line {first:?}"),
    })?;
    // Keep draining stdout so kubectl never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(PortForward {
        purpose,
        local_port,
        child,
    })
}

/// Apply `redact` to every regular file under `dir` (text files only; a
/// file that is not UTF-8 is left as it is).
pub fn redact_tree(dir: &Path, redact: &dyn Fn(&str) -> String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            redact_tree(&path, redact);
        } else if kind.is_file()
            && let Ok(text) = std::fs::read_to_string(&path)
        {
            let clean = redact(&text);
            if clean != text {
                let _ = std::fs::write(&path, clean);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_forward_lines() {
        assert_eq!(
            parse_forwarded_port("Forwarding from 127.0.0.1:43567 -> 5240\n"),
            Some(43567)
        );
        assert_eq!(
            parse_forwarded_port("Forwarding from [::1]:40001 -> 5249"),
            Some(40001)
        );
        assert_eq!(parse_forwarded_port("error: unable to forward"), None);
    }

    #[test]
    fn redact_tree_rewrites_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(
            dir.path().join("a/b/job.log"),
            "+ psql --command=ALTER USER maas with password 'hunter22'",
        )
        .unwrap();
        std::fs::write(dir.path().join("plain.txt"), "nothing here").unwrap();
        redact_tree(dir.path(), &|t| t.replace("hunter22", "<redacted>"));
        let text = std::fs::read_to_string(dir.path().join("a/b/job.log")).unwrap();
        assert!(text.contains("<redacted>") && !text.contains("hunter22"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("plain.txt")).unwrap(),
            "nothing here"
        );
    }
}
