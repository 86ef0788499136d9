//! The chart's deployment flow, waited for through the Kubernetes API.
//!
//! The chart's jobs are not helm hooks, so `helm --wait` does not wait for
//! them; kubernetes-entrypoint orders them inside the cluster. The harness
//! polls each object in the flow's order until its condition holds, fails
//! fast on a failed job, and on a deadline names the object and the last
//! state it saw. Each object is read with a GET; a 404 means "not yet".

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::{Api, Client};
use serde::Serialize;
use thiserror::Error;

use super::options::ChartOptions;

/// One object of the flow and the state it must reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitTarget {
    /// Job condition Complete=True; Failed=True fails the wait at once.
    JobComplete { name: String },
    /// readyReplicas == replicas (and > 0).
    StatefulSetReady { name: String },
    /// Pods `<statefulset>-0..replicas` Ready: for the rack, its readiness
    /// probe is `ls /tmp/maas-rack.done`, touched once it registered.
    PodsReady { statefulset: String, replicas: u32 },
    /// Secret present with a non-empty key.
    SecretKey { name: String, key: String },
}

impl WaitTarget {
    /// `job/maas-db-init` etc., for messages.
    pub fn object(&self) -> String {
        match self {
            WaitTarget::JobComplete { name } => format!("job/{name}"),
            WaitTarget::StatefulSetReady { name } => format!("statefulset/{name}"),
            WaitTarget::PodsReady { statefulset, .. } => {
                format!("pods of statefulset/{statefulset}")
            }
            WaitTarget::SecretKey { name, key } => format!("secret/{name} key {key}"),
        }
    }
}

/// A wait with its deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitSpec {
    pub target: WaitTarget,
    #[serde(serialize_with = "as_humantime")]
    pub timeout: Duration,
    /// What it means, for the plan and the docs.
    pub why: &'static str,
}

fn as_humantime<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

/// The flow in dependency order: db-init, db-sync, region, API key secret
/// (export-api-key job; the rack needs it), rack registered, import done.
pub fn deployment_waits(opts: &ChartOptions) -> Vec<WaitSpec> {
    let t = &opts.timeouts;
    let job = |name: &str| WaitTarget::JobComplete { name: name.into() };
    vec![
        WaitSpec {
            target: job("maas-db-init"),
            timeout: t.db_jobs,
            why: "database maasdb and role maas exist",
        },
        WaitSpec {
            target: job("maas-db-sync"),
            timeout: t.db_jobs,
            why: "maas-region dbupgrade ran",
        },
        WaitSpec {
            target: WaitTarget::StatefulSetReady {
                name: "maas-region".into(),
            },
            timeout: t.region,
            why: "the region answers on 5240",
        },
        WaitSpec {
            target: WaitTarget::SecretKey {
                name: "maas-api-key".into(),
                key: "token".into(),
            },
            timeout: t.api_key,
            why: "export-api-key wrote the admin's API key",
        },
        WaitSpec {
            target: WaitTarget::PodsReady {
                statefulset: "maas-rack".into(),
                replicas: opts.rack_replicas,
            },
            timeout: t.rack,
            why: "every rack registered (/tmp/maas-rack.done)",
        },
        WaitSpec {
            target: job("maas-import-resources"),
            timeout: t.import,
            why: "boot images imported and synced to the racks",
        },
    ]
}

/// Where an object stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Done(String),
    Pending(String),
    /// A terminal failure: stop waiting.
    Failed {
        condition: String,
        reason: String,
        message: String,
    },
}

/// A wait that did not end well.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WaitError {
    #[error(
        "{object} in namespace {namespace} failed: condition {condition}, reason {reason}: {message}; \
         see `kubectl -n {namespace} describe {object}` and the collected pod logs"
    )]
    Failed {
        object: String,
        namespace: String,
        condition: String,
        reason: String,
        message: String,
    },
    #[error("timed out after {} waiting for {object} in namespace {namespace} ({why}); last seen: {last}", humantime::format_duration(*.timeout))]
    Timeout {
        object: String,
        namespace: String,
        why: String,
        timeout: Duration,
        last: String,
    },
}

/// Judge a Job.
pub fn job_progress(job: &Job) -> Progress {
    let status = job.status.as_ref();
    let conditions = status
        .and_then(|s| s.conditions.as_ref())
        .cloned()
        .unwrap_or_default();
    for c in &conditions {
        if c.status == "True" && c.type_ == "Failed" {
            return Progress::Failed {
                condition: "Failed=True".into(),
                reason: c.reason.clone().unwrap_or_else(|| "(none)".into()),
                message: c.message.clone().unwrap_or_else(|| "(no message)".into()),
            };
        }
    }
    if conditions
        .iter()
        .any(|c| c.status == "True" && c.type_ == "Complete")
    {
        return Progress::Done("Complete=True".into());
    }
    let counts = status.map_or_else(String::new, |s| {
        format!(
            "active {} succeeded {} failed {}",
            s.active.unwrap_or(0),
            s.succeeded.unwrap_or(0),
            s.failed.unwrap_or(0)
        )
    });
    match conditions.last() {
        Some(c) => Progress::Pending(format!(
            "{}={} ({}){}",
            c.type_,
            c.status,
            c.reason.clone().unwrap_or_default(),
            if counts.is_empty() {
                String::new()
            } else {
                format!(", {counts}")
            }
        )),
        None if counts.is_empty() => Progress::Pending("no status yet".into()),
        None => Progress::Pending(format!("no conditions, {counts}")),
    }
}

/// Judge a StatefulSet.
pub fn statefulset_progress(sts: &StatefulSet) -> Progress {
    let want = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = sts
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let text = format!("ready {ready}/{want}");
    if want > 0 && ready >= want {
        Progress::Done(text)
    } else {
        Progress::Pending(text)
    }
}

/// Judge a Pod by its Ready condition.
pub fn pod_progress(pod: &Pod) -> Progress {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref();
    let phase = status
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".into());
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready").cloned());
    match ready {
        Some(c) if c.status == "True" => Progress::Done(format!("pod {name} Ready=True")),
        Some(c) => Progress::Pending(format!(
            "pod {name} phase {phase}, Ready={}{}{}",
            c.status,
            c.reason.map(|r| format!(" ({r})")).unwrap_or_default(),
            c.message.map(|m| format!(": {m}")).unwrap_or_default(),
        )),
        None => Progress::Pending(format!("pod {name} phase {phase}, no Ready condition yet")),
    }
}

/// Judge a Secret: the key must be there and non-empty. The value is never
/// part of the result.
pub fn secret_progress(secret: &Secret, key: &str) -> Progress {
    let len = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| v.0.len());
    match len {
        Some(n) if n > 0 => Progress::Done(format!("key {key} present ({n} bytes)")),
        Some(_) => Progress::Pending(format!("key {key} is empty")),
        None => {
            let keys: Vec<String> = secret
                .data
                .as_ref()
                .map(|d| d.keys().cloned().collect())
                .unwrap_or_default();
            Progress::Pending(format!(
                "present, but without key {key} (keys: [{}])",
                keys.join(", ")
            ))
        }
    }
}

fn read_error(e: kube::Error) -> Progress {
    Progress::Pending(format!("API error: {e}"))
}

/// Read the target once.
pub async fn check(client: &Client, namespace: &str, target: &WaitTarget) -> Progress {
    match target {
        WaitTarget::JobComplete { name } => match Api::<Job>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await
        {
            Ok(Some(job)) => job_progress(&job),
            Ok(None) => Progress::Pending("not found (not created yet)".into()),
            Err(e) => read_error(e),
        },
        WaitTarget::StatefulSetReady { name } => {
            match Api::<StatefulSet>::namespaced(client.clone(), namespace)
                .get_opt(name)
                .await
            {
                Ok(Some(sts)) => statefulset_progress(&sts),
                Ok(None) => Progress::Pending("not found (not created yet)".into()),
                Err(e) => read_error(e),
            }
        }
        WaitTarget::PodsReady {
            statefulset,
            replicas,
        } => {
            let api = Api::<Pod>::namespaced(client.clone(), namespace);
            let mut done = Vec::new();
            for i in 0..*replicas {
                let name = format!("{statefulset}-{i}");
                match api.get_opt(&name).await {
                    Ok(Some(pod)) => match pod_progress(&pod) {
                        Progress::Done(d) => done.push(d),
                        other => return other,
                    },
                    Ok(None) => {
                        return Progress::Pending(format!(
                            "pod {name} not found (not created yet)"
                        ));
                    }
                    Err(e) => return read_error(e),
                }
            }
            Progress::Done(done.join(", "))
        }
        WaitTarget::SecretKey { name, key } => {
            match Api::<Secret>::namespaced(client.clone(), namespace)
                .get_opt(name)
                .await
            {
                Ok(Some(secret)) => secret_progress(&secret, key),
                Ok(None) => Progress::Pending("not found".into()),
                Err(e) => read_error(e),
            }
        }
    }
}

/// Poll until the target is done, has failed, or the deadline passes.
/// Returns the final state's description.
pub async fn wait_for(
    client: &Client,
    namespace: &str,
    spec: &WaitSpec,
    poll: Duration,
) -> Result<String, WaitError> {
    let deadline = tokio::time::Instant::now() + spec.timeout;
    loop {
        let last = match check(client, namespace, &spec.target).await {
            Progress::Done(d) => return Ok(d),
            Progress::Failed {
                condition,
                reason,
                message,
            } => {
                return Err(WaitError::Failed {
                    object: spec.target.object(),
                    namespace: namespace.into(),
                    condition,
                    reason,
                    message,
                });
            }
            Progress::Pending(p) => p,
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(WaitError::Timeout {
                object: spec.target.object(),
                namespace: namespace.into(),
                why: spec.why.into(),
                timeout: spec.timeout,
                last,
            });
        }
        tokio::time::sleep(poll.min(deadline - now)).await;
    }
}

/// Every wait in order; stops at the first failure.
pub async fn wait_all(
    client: &Client,
    namespace: &str,
    specs: &[WaitSpec],
    poll: Duration,
) -> Result<Vec<String>, WaitError> {
    let mut states = Vec::new();
    for spec in specs {
        tracing::info!(object = %spec.target.object(), timeout = ?spec.timeout, "waiting");
        states.push(wait_for(client, namespace, spec, poll).await?);
    }
    Ok(states)
}

/// Install ring as rustls's process-wide provider (kube pulls ring,
/// reqwest would otherwise pick another). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A kube client from the run's kubeconfig (kind writes one per cluster).
pub async fn client_from_kubeconfig(
    path: &std::path::Path,
    context: Option<String>,
) -> Result<Client, kube::Error> {
    install_crypto_provider();
    let kc = kube::config::Kubeconfig::read_from(path).map_err(kube::Error::InferKubeconfig)?;
    let cfg = kube::Config::from_custom_kubeconfig(
        kc,
        &kube::config::KubeConfigOptions {
            context,
            ..Default::default()
        },
    )
    .await
    .map_err(kube::Error::InferKubeconfig)?;
    Client::try_from(cfg)
}
