//! Postgres for the chart: the container spec (testcontainers on kind's
//! docker network), the manifests exposing it as Service `postgresql`, the
//! pre-creation Postgres >= 15 needs, and the chart's db-init statements.
//!
//! Why the pre-creation: the chart's db-init job (helm-toolkit's pg db-init
//! script) creates database maasdb owned by the superuser and grants role
//! maas ALL on the database. Up to Postgres 14 everyone may CREATE in schema
//! public, so db-sync can make its tables. 15 revoked that: only the
//! database owner may. Creating maasdb owned by maas first makes db-init's
//! "create if missing" skip the creation, and maas owns the schema's
//! database, so it may create tables.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use thiserror::Error;

use super::options::{ChartOptions, PostgresMode};

/// The database the chart's region uses (endpoints.maas_db.auth.user.database).
pub const MAAS_DB: &str = "maasdb";
/// The role the region connects as (endpoints.maas_db.auth.user.username).
pub const MAAS_ROLE: &str = "maas";
/// The superuser db-init connects as (endpoints.maas_db.auth.admin.username).
pub const ADMIN_ROLE: &str = "postgres";
/// The port the chart's endpoints.maas_db expects.
pub const PORT: u16 = 5432;
/// The Service name the chart's maas_db endpoint resolves to.
pub const SERVICE_NAME: &str = "postgresql";
/// The docker network kind puts its nodes on.
pub const KIND_NETWORK: &str = "kind";
/// The line the server logs once it accepts connections.
pub const READY_LINE: &str = "database system is ready to accept connections";

/// What the harness starts as the chart's Postgres container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostgresContainerSpec {
    pub name: String,
    pub image: String,
    pub tag: String,
    pub network: String,
    pub port: u16,
    /// Environment; the password value is `<redacted>` in this spec and
    /// filled in from the run's secrets only when starting.
    pub env: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    /// Ready when this line appears on stderr.
    pub ready_line: String,
    pub precreate_maasdb: bool,
}

impl PostgresContainerSpec {
    pub fn for_options(opts: &ChartOptions) -> Self {
        PostgresContainerSpec {
            name: crate::plan::postgres_container_name(&opts.run_id),
            image: opts.postgres.image.clone(),
            tag: opts.postgres.tag.clone(),
            network: KIND_NETWORK.into(),
            port: PORT,
            env: vec![("POSTGRES_PASSWORD".into(), "<redacted>".into())],
            labels: vec![("maas-e2e.run-id".into(), opts.run_id.clone())],
            ready_line: READY_LINE.into(),
            precreate_maasdb: opts.postgres.needs_precreate(),
        }
    }
}

/// The statements the harness runs as the superuser before db-init, on
/// Postgres >= 15: role maas, and maasdb owned by it. Each is guarded so a
/// re-run (or a reused cluster) is harmless. Returns (description, SQL);
/// `CREATE DATABASE` cannot run inside a DO block, so the caller checks
/// existence with the first query of each pair first.
pub fn precreate_steps(user_password: &str) -> Vec<GuardedStatement> {
    vec![
        GuardedStatement {
            exists_query: format!("SELECT 1 FROM pg_roles WHERE rolname = '{MAAS_ROLE}'"),
            statement: format!(
                "CREATE ROLE {MAAS_ROLE} LOGIN PASSWORD {}",
                sql_literal(user_password)
            ),
        },
        GuardedStatement {
            exists_query: format!("SELECT 1 FROM pg_database WHERE datname = '{MAAS_DB}'"),
            statement: format!("CREATE DATABASE {MAAS_DB} OWNER {MAAS_ROLE}"),
        },
    ]
}

/// The chart's db-init, statement by statement, as helm-toolkit's pg
/// db-init script runs it (our rendition, for the test that proves the
/// pre-creation): create the database if missing, create the role if
/// missing, always reset its password, grant all on the database, revoke
/// all from PUBLIC.
pub fn chart_db_init_steps(user: &str, password: &str, database: &str) -> Vec<GuardedStatement> {
    vec![
        GuardedStatement {
            exists_query: format!(
                "SELECT 1 FROM pg_database WHERE datname = {}",
                sql_literal(database)
            ),
            statement: format!("CREATE DATABASE {database}"),
        },
        GuardedStatement {
            exists_query: format!(
                "SELECT 1 FROM pg_roles WHERE rolname = {}",
                sql_literal(user)
            ),
            statement: format!(
                "CREATE ROLE {user} LOGIN PASSWORD {}",
                sql_literal(password)
            ),
        },
        GuardedStatement::always(format!(
            "ALTER USER {user} WITH PASSWORD {}",
            sql_literal(password)
        )),
        GuardedStatement::always(format!(
            "GRANT ALL PRIVILEGES ON DATABASE {database} TO {user}"
        )),
        GuardedStatement::always(format!("REVOKE ALL ON DATABASE {database} FROM PUBLIC")),
    ]
}

/// A statement that runs unless `exists_query` returns a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedStatement {
    /// Empty: always run.
    pub exists_query: String,
    pub statement: String,
}

impl GuardedStatement {
    fn always(statement: String) -> Self {
        GuardedStatement {
            exists_query: String::new(),
            statement,
        }
    }
}

/// A single-quoted SQL string literal.
pub fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Service `postgresql` without a selector plus Endpoints at the
/// container's address: the chart's maas_db endpoint, and what
/// kubernetes-entrypoint waits for before db-init.
pub fn service_manifest(namespace: &str, address: &str) -> String {
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": SERVICE_NAME, "namespace": namespace, "labels": { "app.kubernetes.io/managed-by": "maas-e2e" } },
        "spec": { "ports": [{ "name": "postgresql", "port": PORT, "targetPort": PORT, "protocol": "TCP" }] },
    });
    let endpoints = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": { "name": SERVICE_NAME, "namespace": namespace, "labels": { "app.kubernetes.io/managed-by": "maas-e2e" } },
        "subsets": [{
            "addresses": [{ "ip": address }],
            "ports": [{ "name": "postgresql", "port": PORT, "protocol": "TCP" }],
        }],
    });
    yaml_documents(&[service, endpoints])
}

/// Secret maas-e2e-postgres (key `password`) for the in-cluster Postgres;
/// fed to `kubectl apply -f -` on stdin, never written to disk.
pub fn password_secret_manifest(namespace: &str, password: &str) -> String {
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": "maas-e2e-postgres", "namespace": namespace },
        "type": "Opaque",
        "stringData": { "password": password },
    });
    yaml_documents(&[secret])
}

/// Postgres inside the cluster (`--postgres in-cluster`): a one-replica
/// Deployment and Service `postgresql`. The password comes from a Secret
/// the harness creates (`kubectl create secret`, secret argument).
pub fn in_cluster_manifest(opts: &ChartOptions) -> String {
    let labels = json!({ "app.kubernetes.io/name": "maas-e2e-postgresql" });
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": SERVICE_NAME, "namespace": opts.namespace },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "containers": [{
                        "name": "postgresql",
                        "image": opts.postgres.reference(),
                        "ports": [{ "containerPort": PORT, "name": "postgresql" }],
                        "env": [{
                            "name": "POSTGRES_PASSWORD",
                            "valueFrom": { "secretKeyRef": { "name": "maas-e2e-postgres", "key": "password" } },
                        }],
                        "readinessProbe": { "tcpSocket": { "port": PORT }, "periodSeconds": 5 },
                    }],
                },
            },
        },
    });
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": SERVICE_NAME, "namespace": opts.namespace },
        "spec": { "selector": labels, "ports": [{ "name": "postgresql", "port": PORT, "targetPort": PORT }] },
    });
    yaml_documents(&[deployment, service])
}

fn yaml_documents(docs: &[serde_json::Value]) -> String {
    docs.iter()
        .map(|d| {
            format!(
                "---\n{}",
                serde_norway::to_string(d).expect("JSON serialises as YAML")
            )
        })
        .collect()
}

/// Whether this plan needs a Postgres container at all.
pub fn uses_container(opts: &ChartOptions) -> bool {
    opts.postgres.mode == PostgresMode::Container
}

/// A failure starting or preparing Postgres.
#[derive(Debug, Error)]
pub enum PostgresError {
    #[error(
        "could not start Postgres container {name} from {image} on docker network {network}: {source}; is the image built (ci/images/postgres/build.sh) and dockerd running?"
    )]
    Start {
        name: String,
        image: String,
        network: String,
        #[source]
        source: testcontainers::TestcontainersError,
    },
    #[error("Postgres container {name}: could not read its {what}: {source}")]
    Inspect {
        name: String,
        what: &'static str,
        #[source]
        source: testcontainers::TestcontainersError,
    },
    #[error("Postgres at {target}: {action} failed: {source}")]
    Sql {
        target: String,
        action: String,
        #[source]
        source: tokio_postgres::Error,
    },
}

/// A running Postgres container. Dropping it removes the container unless
/// the run keeps its environment (then `leak` it).
pub struct PostgresContainer {
    pub container: ContainerAsync<GenericImage>,
    pub name: String,
    /// Its address on `spec.network` (what the Endpoints point at).
    pub network_address: IpAddr,
    /// 5432 published on the host's loopback, for the harness's own queries.
    pub host_port: u16,
}

/// Start the container the spec describes, wait until it accepts
/// connections, and read its network address and published port.
pub async fn start_container(
    spec: &PostgresContainerSpec,
    admin_password: &str,
    startup_timeout: Duration,
) -> Result<PostgresContainer, PostgresError> {
    let image = GenericImage::new(spec.image.clone(), spec.tag.clone())
        .with_exposed_port(ContainerPort::Tcp(spec.port))
        .with_wait_for(WaitFor::message_on_stderr(spec.ready_line.clone()));
    let mut request = image
        .with_network(spec.network.clone())
        .with_container_name(spec.name.clone())
        .with_startup_timeout(startup_timeout)
        .with_env_var("POSTGRES_PASSWORD", admin_password);
    for (k, v) in &spec.labels {
        request = request.with_label(k.clone(), v.clone());
    }
    let container = request
        .start()
        .await
        .map_err(|source| PostgresError::Start {
            name: spec.name.clone(),
            image: format!("{}:{}", spec.image, spec.tag),
            network: spec.network.clone(),
            source,
        })?;
    let network_address =
        container
            .get_bridge_ip_address()
            .await
            .map_err(|source| PostgresError::Inspect {
                name: spec.name.clone(),
                what: "network address",
                source,
            })?;
    let host_port = container
        .get_host_port_ipv4(ContainerPort::Tcp(spec.port))
        .await
        .map_err(|source| PostgresError::Inspect {
            name: spec.name.clone(),
            what: "published port",
            source,
        })?;
    Ok(PostgresContainer {
        container,
        name: spec.name.clone(),
        network_address,
        host_port,
    })
}

/// Connect with tokio-postgres; the connection task runs in the background.
pub async fn connect(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
) -> Result<tokio_postgres::Client, PostgresError> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(host)
        .port(port)
        .user(user)
        .password(password)
        .dbname(database);
    cfg.connect_timeout(Duration::from_secs(10));
    let (client, conn) =
        cfg.connect(tokio_postgres::NoTls)
            .await
            .map_err(|source| PostgresError::Sql {
                target: format!("{user}@{host}:{port}/{database}"),
                action: "connect".into(),
                source,
            })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Run guarded statements in order; returns the statements that ran.
/// Passwords are never in the returned text (they are literal-redacted).
pub async fn run_guarded(
    client: &tokio_postgres::Client,
    target: &str,
    steps: &[GuardedStatement],
) -> Result<Vec<String>, PostgresError> {
    let mut ran = Vec::new();
    for step in steps {
        if !step.exists_query.is_empty() {
            let rows = client
                .query(step.exists_query.as_str(), &[])
                .await
                .map_err(|source| PostgresError::Sql {
                    target: target.into(),
                    action: step.exists_query.clone(),
                    source,
                })?;
            if !rows.is_empty() {
                continue;
            }
        }
        let shown = redact_password_literal(&step.statement);
        client
            .batch_execute(&step.statement)
            .await
            .map_err(|source| PostgresError::Sql {
                target: target.into(),
                action: shown.clone(),
                source,
            })?;
        ran.push(shown);
    }
    Ok(ran)
}

/// `... PASSWORD 'x'` -> `... PASSWORD <redacted>`.
pub fn redact_password_literal(statement: &str) -> String {
    match statement.find("PASSWORD '") {
        Some(i) => format!("{}PASSWORD <redacted>", &statement[..i]),
        None => statement.to_string(),
    }
}

/// The harness's pre-creation (Postgres >= 15), run as the superuser.
pub async fn precreate_maasdb(
    host: &str,
    port: u16,
    admin_password: &str,
    user_password: &str,
) -> Result<Vec<String>, PostgresError> {
    let client = connect(host, port, ADMIN_ROLE, admin_password, "postgres").await?;
    run_guarded(
        &client,
        &format!("{ADMIN_ROLE}@{host}:{port}"),
        &precreate_steps(user_password),
    )
    .await
}

/// The pre-creation as a psql script (for in-cluster Postgres, fed on
/// stdin to `kubectl exec ... psql`, so the password is in no argv).
pub fn precreate_psql_script(user_password: &str) -> String {
    format!(
        "SELECT 'CREATE ROLE {MAAS_ROLE} LOGIN PASSWORD ' || quote_literal({pw}) \
         WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{MAAS_ROLE}')\\gexec\n\
         SELECT 'CREATE DATABASE {MAAS_DB} OWNER {MAAS_ROLE}' \
         WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{MAAS_DB}')\\gexec\n",
        pw = sql_literal(user_password)
    )
}
