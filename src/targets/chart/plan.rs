//! `ChartPlan`: every step of a chart run, computed from `ChartOptions`
//! alone (pure), and printed whole by `run --target chart --dry-run`.
//!
//! Values only known while running are `{placeholders}`: `{pid:NODE}` (a
//! node container's pid), `{postgres-ip}` (the container's address on
//! kind's network), `{rack_id}` etc. (answers of earlier MAAS calls).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cmd::Cmd;

use super::image_build::planned_builds;
use super::kind_config::{kind_config_yaml, rack_node_names, worker_names};
use super::maas_config::{
    ApiCall, ChartExpectation, chart_expectations, collect_calls, configure_calls,
};
use super::options::{ChartOptions, ChartOptionsError, ClusterSource, PostgresMode};
use super::postgres::{self, PostgresContainerSpec};
use super::prereq::TOOLS;
use super::values::{
    CONTROL_PLANE_LABEL, RACK_LABEL, images_to_load, secret_set_strings, values_override_yaml,
};
use super::waits::{WaitSpec, deployment_waits};
use super::wiring::{NodeWiring, node_pid_cmd, plan_wiring, unwire_cmds, wire_cmds};

/// A file the run writes before using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFile {
    pub path: PathBuf,
    pub purpose: &'static str,
    /// `None`: written at run time (contents depend on run-time values).
    pub contents: Option<String>,
}

/// One step of a stage.
#[derive(Debug, Clone)]
pub enum Step {
    /// Run a command; it must exit 0.
    Run(Cmd),
    /// Run a command, write its stdout (secrets redacted) to a file.
    Capture { cmd: Cmd, to: PathBuf },
    /// A long-running command kept until teardown (port-forwards).
    Background { cmd: Cmd, purpose: &'static str },
    /// Write one of the plan's files.
    WriteFile(PathBuf),
    /// Start the Postgres container (testcontainers) from `ChartPlan::postgres`.
    StartPostgres,
    /// Pre-create maasdb owned by maas through the container's published
    /// port on 127.0.0.1 (Postgres >= 15).
    PrecreateDatabase,
    /// Join the lab to one rack node (`wiring::wire_node`; the dry run
    /// shows its commands with the node's pid as a placeholder).
    Wire(NodeWiring),
    /// Wait through the Kubernetes API.
    Wait(WaitSpec),
    /// A MAAS API call.
    Api(ApiCall),
    /// A chart-specific check.
    Expect(ChartExpectation),
    /// Something for a person reading the plan.
    Note(String),
}

/// A named group of steps, run in order.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: &'static str,
    pub steps: Vec<Step>,
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct ChartPlan {
    pub run_id: String,
    pub cluster_name: String,
    pub namespace: String,
    pub release: String,
    pub kubeconfig: PathBuf,
    pub run_dir: PathBuf,
    pub files: Vec<PlanFile>,
    pub postgres: Option<PostgresContainerSpec>,
    pub wiring: Vec<NodeWiring>,
    /// Deploy, wire, configure, check, in order.
    pub stages: Vec<Stage>,
    /// On failure and on request.
    pub collect: Vec<Step>,
    /// On every exit unless the cluster is kept.
    pub teardown: Vec<Step>,
    /// The secret values, for redacting captured output. Never printed.
    secrets: Vec<String>,
}

/// File names inside the run directory.
pub mod files {
    pub const KUBECONFIG: &str = "kubeconfig";
    pub const KIND_CONFIG: &str = "kind-config.yaml";
    pub const VALUES: &str = "values-override.yaml";
    pub const NAMESPACE: &str = "namespace.yaml";
    pub const POSTGRES_SERVICE: &str = "postgres-service.yaml";
    pub const POSTGRES_IN_CLUSTER: &str = "postgres-in-cluster.yaml";
    pub const COLLECT_DIR: &str = "collected";
}

fn kubectl(plan_kubeconfig: &Path, namespace: &str) -> Cmd {
    Cmd::new("kubectl").args([
        "--kubeconfig",
        &plan_kubeconfig.display().to_string(),
        "--namespace",
        namespace,
    ])
}

fn namespace_manifest(ns: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    app.kubernetes.io/managed-by: maas-e2e\n"
    )
}

impl ChartPlan {
    /// Plan a run; fails on options that cannot work, naming the field.
    pub fn new(opts: &ChartOptions) -> Result<ChartPlan, ChartOptionsError> {
        opts.validate()?;
        let run_dir = opts.run_dir.clone();
        let kubeconfig = run_dir.join(files::KUBECONFIG);
        let cluster = opts.cluster_name();
        let ns = opts.namespace.clone();
        let k = |ns: &str| kubectl(&kubeconfig, ns);
        let path = |name: &str| run_dir.join(name);
        let mut plan_files = Vec::new();
        let mut stages = Vec::new();

        // --- preflight
        stages.push(Stage {
            name: "preflight",
            steps: vec![Step::Note(format!(
                "check programs on PATH: {}",
                TOOLS
                    .iter()
                    .map(|t| t.program)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))],
        });

        // --- images: built from the checkout before anything else exists
        // (a failed build leaves nothing to tear down).
        let builds = planned_builds(opts);
        if !builds.is_empty() {
            stages.push(Stage {
                name: "images",
                steps: builds.iter().map(|b| Step::Run(b.command())).collect(),
            });
        }

        // --- cluster
        let mut steps = Vec::new();
        match &opts.cluster {
            ClusterSource::Create { config } => {
                let config_path = match config {
                    Some(p) => p.clone(),
                    None => {
                        plan_files.push(PlanFile {
                            path: path(files::KIND_CONFIG),
                            purpose: "kind cluster config",
                            contents: Some(kind_config_yaml(opts)),
                        });
                        steps.push(Step::WriteFile(path(files::KIND_CONFIG)));
                        path(files::KIND_CONFIG)
                    }
                };
                steps.push(Step::Run(Cmd::new("kind").args([
                    "create",
                    "cluster",
                    "--name",
                    &cluster,
                    "--config",
                    &config_path.display().to_string(),
                    "--kubeconfig",
                    &kubeconfig.display().to_string(),
                    "--wait",
                    "5m",
                ])));
            }
            ClusterSource::Reuse { .. } => {
                steps.push(Step::Run(Cmd::new("kind").args([
                    "export",
                    "kubeconfig",
                    "--name",
                    &cluster,
                    "--kubeconfig",
                    &kubeconfig.display().to_string(),
                ])));
            }
        }
        // Labels again with kubectl: a reused cluster or a user's kind
        // config may not carry them; --overwrite makes it idempotent.
        let racks = rack_node_names(opts);
        for node in worker_names(opts) {
            let mut cmd = k(&ns).args([
                "label",
                "node",
                &node,
                &format!("{}={}", CONTROL_PLANE_LABEL.0, CONTROL_PLANE_LABEL.1),
            ]);
            if racks.contains(&node) {
                cmd = cmd.arg(format!("{}={}", RACK_LABEL.0, RACK_LABEL.1));
            }
            steps.push(Step::Run(cmd.arg("--overwrite")));
        }
        // Every image the workloads run (chart check proves the list against
        // the render; preflight that each is present locally): no registry.
        for image in images_to_load(opts) {
            steps.push(Step::Run(Cmd::new("kind").args([
                "load",
                "docker-image",
                &image,
                "--name",
                &cluster,
            ])));
        }
        plan_files.push(PlanFile {
            path: path(files::NAMESPACE),
            purpose: "release namespace",
            contents: Some(namespace_manifest(&ns)),
        });
        steps.push(Step::WriteFile(path(files::NAMESPACE)));
        steps.push(Step::Run(k(&ns).args([
            "apply",
            "--filename",
            &path(files::NAMESPACE).display().to_string(),
        ])));
        stages.push(Stage {
            name: "cluster",
            steps,
        });

        // --- postgres
        let mut steps = Vec::new();
        let mut postgres_spec = None;
        match opts.postgres.mode {
            PostgresMode::Container => {
                let spec = PostgresContainerSpec::for_options(opts);
                steps.push(Step::StartPostgres);
                if spec.precreate_maasdb {
                    steps.push(Step::PrecreateDatabase);
                }
                plan_files.push(PlanFile {
                    path: path(files::POSTGRES_SERVICE),
                    purpose: "Service postgresql + Endpoints at the container",
                    contents: Some(postgres::service_manifest(&ns, "{postgres-ip}")),
                });
                steps.push(Step::WriteFile(path(files::POSTGRES_SERVICE)));
                steps.push(Step::Run(k(&ns).args([
                    "apply",
                    "--filename",
                    &path(files::POSTGRES_SERVICE).display().to_string(),
                ])));
                postgres_spec = Some(spec);
            }
            PostgresMode::InCluster => {
                // `apply` with the manifest on stdin: idempotent on a reused
                // cluster, and the password is in no argv and no file.
                steps.push(Step::Run(k(&ns).args(["apply", "--filename", "-"]).stdin(
                    postgres::password_secret_manifest(&ns, &opts.secrets.db_admin_password),
                )));
                plan_files.push(PlanFile {
                    path: path(files::POSTGRES_IN_CLUSTER),
                    purpose: "Postgres Deployment + Service postgresql",
                    contents: Some(postgres::in_cluster_manifest(opts)),
                });
                steps.push(Step::WriteFile(path(files::POSTGRES_IN_CLUSTER)));
                steps.push(Step::Run(k(&ns).args([
                    "apply",
                    "--filename",
                    &path(files::POSTGRES_IN_CLUSTER).display().to_string(),
                ])));
                steps.push(Step::Run(k(&ns).args([
                    "rollout",
                    "status",
                    "deployment/postgresql",
                    "--timeout",
                    "5m",
                ])));
                if opts.postgres.needs_precreate() {
                    steps.push(Step::Run(
                        k(&ns)
                            .args([
                                "exec",
                                "--stdin",
                                "deployment/postgresql",
                                "--",
                                "psql",
                                "--username",
                                "postgres",
                                "--set",
                                "ON_ERROR_STOP=1",
                            ])
                            .stdin(postgres::precreate_psql_script(
                                &opts.secrets.db_user_password,
                            )),
                    ));
                }
            }
        }
        stages.push(Stage {
            name: "postgres",
            steps,
        });

        // --- wiring (before the chart: the rack sees the bridge when it registers)
        let wiring = plan_wiring(opts);
        let mut steps = vec![Step::Note(match &opts.wiring.lab_netns {
            Some(ns) => format!("lab network namespace {ns} must exist (lab stage)"),
            None => "the lab bridges must exist in the host namespace (lab stage)".into(),
        })];
        steps.extend(wiring.iter().cloned().map(Step::Wire));
        stages.push(Stage {
            name: "wiring",
            steps,
        });

        // --- deploy
        let mut steps = Vec::new();
        plan_files.push(PlanFile {
            path: path(files::VALUES),
            purpose: "values override",
            contents: Some(values_override_yaml(opts)),
        });
        steps.push(Step::WriteFile(path(files::VALUES)));
        // `update`, not `build`: the 3.6 pin's requirements.lock names a
        // helm-toolkit its own tools/helm_tk.sh no longer fetches; upstream
        // runs `dep up` too. The file:// dependency needs no network.
        steps.push(Step::Run(Cmd::new("helm").args([
            "dependency",
            "update",
            "--skip-refresh",
            &opts.chart_path.display().to_string(),
        ])));
        let mut helm = Cmd::new("helm").args([
            "upgrade",
            "--install",
            &opts.release,
            &opts.chart_path.display().to_string(),
            "--namespace",
            &ns,
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            "--values",
            &path(files::VALUES).display().to_string(),
        ]);
        for extra in &opts.values_files {
            helm = helm.args(["--values", &extra.display().to_string()]);
        }
        for (key, value) in secret_set_strings(opts) {
            helm = helm
                .arg("--set-string")
                .secret_arg(format!("{key}={value}"));
        }
        // No --wait: the chart's jobs are not hooks; the waits below follow the flow.
        steps.push(Step::Run(helm.args(["--timeout", "15m"])));
        steps.extend(deployment_waits(opts).into_iter().map(Step::Wait));
        steps.push(Step::Background {
            cmd: k(&ns).args([
                "port-forward",
                "--address",
                "127.0.0.1",
                "service/maas-region",
                ":80",
            ]),
            purpose: "the region API (5240) on loopback for the MAAS client",
        });
        steps.push(Step::Background {
            cmd: k(&ns).args([
                "port-forward",
                "--address",
                "127.0.0.1",
                "pod/maas-rack-0",
                ":5249",
            ]),
            purpose: "the rack's 5249 on loopback for the header check",
        });
        stages.push(Stage {
            name: "deploy",
            steps,
        });

        // --- configure MAAS, then the chart checks
        stages.push(Stage {
            name: "configure",
            steps: configure_calls(opts).into_iter().map(Step::Api).collect(),
        });
        stages.push(Stage {
            name: "chart-checks",
            steps: chart_expectations(opts)
                .into_iter()
                .map(Step::Expect)
                .collect(),
        });

        // --- collection
        let out = run_dir.join(files::COLLECT_DIR);
        let o = |name: &str| out.join(name);
        let mut collect = vec![
            Step::Capture {
                cmd: k(&ns).args(["get", "all,pvc,jobs,endpoints", "--output", "wide"]),
                to: o("resources.txt"),
            },
            Step::Capture {
                cmd: k(&ns).args([
                    "get",
                    "events",
                    "--sort-by",
                    ".lastTimestamp",
                    "--output",
                    "wide",
                ]),
                to: o("events.txt"),
            },
            Step::Capture {
                cmd: k(&ns).args(["describe", "pods,jobs,statefulsets"]),
                to: o("describe.txt"),
            },
            Step::Capture {
                cmd: k(&ns).args(["get", "pods", "--output", "name"]),
                to: o("pods.txt"),
            },
            Step::Note("per pod in pods.txt: logs of all containers, current and previous".into()),
        ];
        collect.extend(pod_log_steps(&kubeconfig, &ns, "{pod}", &out));
        collect.extend([
            Step::Capture {
                cmd: Cmd::new("helm").args([
                    "status",
                    &opts.release,
                    "--namespace",
                    &ns,
                    "--kubeconfig",
                    &kubeconfig.display().to_string(),
                ]),
                to: o("helm-status.txt"),
            },
            Step::Capture {
                cmd: Cmd::new("helm").args([
                    "get",
                    "values",
                    &opts.release,
                    "--all",
                    "--namespace",
                    &ns,
                    "--kubeconfig",
                    &kubeconfig.display().to_string(),
                ]),
                to: o("helm-values.yaml"),
            },
            Step::Run(Cmd::new("kind").args([
                "export",
                "logs",
                &o("kind-logs").display().to_string(),
                "--name",
                &cluster,
            ])),
            Step::Note("every collected file is redacted of the run's secrets".into()),
        ]);
        if let Some(spec) = &postgres_spec {
            collect.push(Step::Capture {
                cmd: Cmd::new("docker").args(["logs", &spec.name]),
                to: o("postgres.log"),
            });
        }
        collect.extend(collect_calls().into_iter().map(Step::Api));

        // --- teardown
        let mut teardown = vec![Step::Note(
            "stop the port-forwards (their process groups)".into(),
        )];
        for w in &wiring {
            teardown.extend(unwire_cmds(w).into_iter().map(Step::Run));
        }
        if let Some(spec) = &postgres_spec {
            teardown.push(Step::Run(Cmd::new("docker").args([
                "rm",
                "--force",
                "--volumes",
                &spec.name,
            ])));
        }
        match (&opts.cluster, opts.keep_cluster) {
            (ClusterSource::Create { .. }, false) => {
                teardown.push(Step::Run(
                    Cmd::new("kind").args(["delete", "cluster", "--name", &cluster]),
                ));
            }
            (ClusterSource::Reuse { .. }, false) => {
                teardown.push(Step::Run(Cmd::new("helm").args([
                    "uninstall",
                    &opts.release,
                    "--namespace",
                    &ns,
                    "--kubeconfig",
                    &kubeconfig.display().to_string(),
                ])));
                teardown.push(Step::Run(k(&ns).args([
                    "delete",
                    "namespace",
                    &ns,
                    "--wait=false",
                ])));
            }
            (_, true) => teardown.push(Step::Note(format!(
                "--keep-cluster: cluster {cluster} and namespace {ns} stay"
            ))),
        }

        Ok(ChartPlan {
            run_id: opts.run_id.clone(),
            cluster_name: cluster,
            namespace: ns,
            release: opts.release.clone(),
            kubeconfig,
            run_dir,
            files: plan_files,
            postgres: postgres_spec,
            wiring,
            stages,
            collect,
            teardown,
            secrets: opts
                .secrets
                .values()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        })
    }

    /// Replace every secret of the run in `text` (for captured output).
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if !s.is_empty() {
                out = out.replace(s.as_str(), "<redacted>");
            }
        }
        out
    }

    /// The steps of a stage by name (empty when there is no such stage).
    pub fn stage(&self, name: &str) -> &[Step] {
        self.stages
            .iter()
            .find(|s| s.name == name)
            .map_or(&[], |s| &s.steps)
    }

    /// The MAAS calls that configure the PXE network (stage `configure`),
    /// for the MAAS client to perform after `deploy`.
    pub fn maas_calls(&self) -> Vec<ApiCall> {
        api_calls(self.stage("configure"))
    }

    /// The chart-specific checks (stage `chart-checks`).
    pub fn expectations(&self) -> Vec<ChartExpectation> {
        self.stage("chart-checks")
            .iter()
            .filter_map(|s| match s {
                Step::Expect(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    /// The MAAS calls of collection.
    pub fn collect_calls(&self) -> Vec<ApiCall> {
        api_calls(&self.collect)
    }

    /// A plan file's contents by file name.
    pub fn file(&self, name: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|f| f.path.file_name().is_some_and(|n| n == name))
            .and_then(|f| f.contents.as_deref())
    }

    /// The dry run: every command, every file, the Postgres spec, the
    /// wiring, the waits, the MAAS calls, collection and teardown.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# chart target plan for run {}", self.run_id);
        let _ = writeln!(out, "cluster: {}", self.cluster_name);
        let _ = writeln!(
            out,
            "release: {} in namespace {}",
            self.release, self.namespace
        );
        let _ = writeln!(out, "kubeconfig: {}", self.kubeconfig.display());
        if let Some(pg) = &self.postgres {
            let _ = writeln!(out, "\n## postgres container");
            let _ = write!(
                out,
                "{}",
                serde_norway::to_string(pg).expect("spec serialises")
            );
        }
        let _ = writeln!(out, "\n## wiring");
        let _ = write!(
            out,
            "{}",
            serde_norway::to_string(&self.wiring).expect("wiring serialises")
        );
        for stage in &self.stages {
            let _ = writeln!(out, "\n## stage {}", stage.name);
            for step in &stage.steps {
                render_step(&mut out, step);
            }
        }
        let _ = writeln!(out, "\n## collect (on failure or on request)");
        for step in &self.collect {
            render_step(&mut out, step);
        }
        let _ = writeln!(out, "\n## teardown");
        for step in &self.teardown {
            render_step(&mut out, step);
        }
        for f in &self.files {
            let _ = writeln!(out, "\n## file {} ({})", f.path.display(), f.purpose);
            match &f.contents {
                Some(c) => out.push_str(c),
                None => out.push_str("(written at run time)\n"),
            }
        }
        self.redact(&out)
    }
}

/// The MAAS API calls among some steps, in order.
fn api_calls(steps: &[Step]) -> Vec<ApiCall> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Api(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn render_step(out: &mut String, step: &Step) {
    let _ = match step {
        Step::Run(cmd) => {
            let _ = writeln!(out, "$ {}", cmd.display());
            if let Some(data) = cmd.stdin_data() {
                // Shown for the reader; the plan's redaction hides the secrets in it.
                let _ = writeln!(out, "  <<stdin");
                for line in String::from_utf8_lossy(data).lines() {
                    let _ = writeln!(out, "  | {line}");
                }
            }
            Ok(())
        }
        Step::Capture { cmd, to } => writeln!(out, "$ {} > {}", cmd.display(), to.display()),
        Step::Background { cmd, purpose } => writeln!(out, "$ {} &   # {purpose}", cmd.display()),
        Step::WriteFile(p) => writeln!(out, "write {}", p.display()),
        Step::Wire(w) => {
            let lab = w.lab_netns.as_deref().map_or_else(
                || "the host namespace".to_string(),
                |ns| format!("lab netns {ns}"),
            );
            let _ = writeln!(out, "# wire node {} to {lab}", w.node_container);
            let _ = writeln!(out, "$ {}", node_pid_cmd(&w.node_container).display());
            for cmd in wire_cmds(w, &format!("{{pid:{}}}", w.node_container)) {
                let _ = writeln!(out, "$ {}", cmd.display());
            }
            Ok(())
        }
        Step::StartPostgres => writeln!(
            out,
            "start the postgres container (spec above), wait for its ready line"
        ),
        Step::PrecreateDatabase => writeln!(
            out,
            "pre-create (Postgres >= 15) through 127.0.0.1:{{published 5432}}: role {} (password <redacted>), database {} owned by {}",
            postgres::MAAS_ROLE,
            postgres::MAAS_DB,
            postgres::MAAS_ROLE
        ),
        Step::Wait(w) => writeln!(
            out,
            "wait {} (timeout {}): {}",
            w.target.object(),
            humantime::format_duration(w.timeout),
            w.why
        ),
        Step::Api(c) => {
            let params = c
                .params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&");
            let mut line = format!("maas {:?} {}", c.method, c.path)
                .replace("maas Get", "maas GET")
                .replace("maas Post", "maas POST")
                .replace("maas Put", "maas PUT");
            if !params.is_empty() {
                line.push_str(&format!(" [{params}]"));
            }
            for (name, rule) in &c.captures {
                line.push_str(&format!(" -> {{{name}}} = {rule}"));
            }
            if let Some(u) = &c.until {
                line.push_str(&format!(" until {u}"));
            }
            writeln!(out, "{line}   # {}", c.why)
        }
        Step::Expect(e) => writeln!(
            out,
            "expect {}",
            serde_json::to_string(e).expect("expectation serialises")
        ),
        Step::Note(n) => writeln!(out, "# {n}"),
    };
}

/// Logs of one pod: all containers, current and previous (the previous
/// may not exist; its failure is ignored).
pub fn pod_log_steps(kubeconfig: &Path, namespace: &str, pod: &str, out_dir: &Path) -> Vec<Step> {
    let safe = pod.trim_start_matches("pod/").replace(['/', '{', '}'], "");
    let base = kubectl(kubeconfig, namespace).args([
        "logs",
        pod,
        "--all-containers",
        "--prefix",
        "--timestamps",
    ]);
    vec![
        Step::Capture {
            cmd: base.clone(),
            to: out_dir.join(format!("logs-{safe}.txt")),
        },
        Step::Capture {
            cmd: base.arg("--previous"),
            to: out_dir.join(format!("logs-{safe}-previous.txt")),
        },
    ]
}
