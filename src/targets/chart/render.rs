//! The chart rendered by Helm with exactly the values a run passes: the
//! generated override, the user's `--values` files, and the secret
//! `--set-string`s (well-formed placeholders, never the run's secrets).
//!
//! `helm template` runs wherever the harness runs: the real helm binary on
//! nightly hosts; here ci/bin/helm, Helm's engine as a library. The chart is
//! copied first (with its `file://` dependencies at the same relative
//! places) and its dependencies resolved in the copy: a checkout stays
//! untouched, a read-only one works.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use crate::cmd::{Cmd, CmdError};

use super::options::{ChartOptions, ChartSecrets};
use super::values::{secret_set_strings, values_override_yaml};

/// One object of the render, with the template it came from.
#[derive(Debug, Clone)]
pub struct RenderedObject {
    /// `maas/templates/job-db-init.yaml`, as helm's `# Source:` names it.
    pub source: String,
    pub kind: String,
    pub name: String,
    /// Set by the template itself (most leave it to the release's).
    pub namespace: Option<String>,
    pub value: Value,
}

/// What rendering needed and could not have.
#[derive(Debug, Error)]
pub enum RenderError {
    #[error("chart {chart}: {problem}")]
    Chart { chart: PathBuf, problem: String },
    #[error("copying the chart to {to}: {source}")]
    Copy {
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("helm could not resolve the chart's dependencies: {0}")]
    Dependencies(#[source] CmdError),
    #[error("helm template failed (the chart with the run's values does not render): {0}")]
    Template(#[source] CmdError),
    #[error(
        "helm is not on PATH (nightly: the helm binary; this project's CI: ci/bin/helm, see docs/chart.md): {0}"
    )]
    NoHelm(#[source] CmdError),
    #[error("rendered output of {source_file}: not YAML: {problem}")]
    Parse {
        source_file: String,
        problem: String,
    },
}

#[derive(Deserialize, Default)]
struct Dependencies {
    #[serde(default)]
    dependencies: Vec<Dependency>,
}

#[derive(Deserialize)]
struct Dependency {
    name: String,
    #[serde(default)]
    repository: String,
}

/// The `file://` dependencies of a chart (requirements.yaml for apiVersion
/// v1, Chart.yaml for v2), as (name, path relative to the chart).
pub fn file_dependencies(chart: &Path) -> Result<Vec<(String, PathBuf)>, RenderError> {
    let mut out = Vec::new();
    for file in ["requirements.yaml", "Chart.yaml"] {
        let Ok(text) = std::fs::read_to_string(chart.join(file)) else {
            continue;
        };
        let deps: Dependencies = serde_norway::from_str(&text).map_err(|e| RenderError::Chart {
            chart: chart.into(),
            problem: format!("{file}: dependencies: {e}"),
        })?;
        for d in deps.dependencies {
            if let Some(rel) = d.repository.strip_prefix("file://") {
                out.push((d.name, PathBuf::from(rel)));
            }
        }
    }
    Ok(out)
}

/// Copy `chart` to `work/charts/NAME` and each `file://` dependency to the
/// same relative place; returns the copy's chart directory.
pub fn copy_chart(chart: &Path, work: &Path) -> Result<PathBuf, RenderError> {
    let name = chart
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(PathBuf::from))
        .ok_or_else(|| RenderError::Chart {
            chart: chart.into(),
            problem: "not a directory".into(),
        })?;
    let dest = work.join("charts").join(&name);
    copy_dir(chart, &dest, &["charts"])?;
    for (dep, rel) in file_dependencies(chart)? {
        let from = chart.join(&rel);
        if !from.join("Chart.yaml").is_file() {
            return Err(RenderError::Chart {
                chart: chart.into(),
                problem: format!(
                    "requirements.yaml: dependency {dep} (file://{}) is not at {}; the chart checkout's tools/helm_tk.sh puts it there",
                    rel.display(),
                    normalize(&from).display()
                ),
            });
        }
        let to = normalize(&dest.join(&rel));
        if !to.starts_with(work) {
            return Err(RenderError::Chart {
                chart: chart.into(),
                problem: format!(
                    "dependency {dep}: file://{} leaves the chart's tree",
                    rel.display()
                ),
            });
        }
        copy_dir(&from, &to, &[])?;
    }
    Ok(dest)
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Recursive copy; `skip` names top-level entries left out (a chart's
/// charts/ is rebuilt by helm).
fn copy_dir(from: &Path, to: &Path, skip: &[&str]) -> Result<(), RenderError> {
    let err = |source| RenderError::Copy {
        to: to.into(),
        source,
    };
    std::fs::create_dir_all(to).map_err(err)?;
    for entry in std::fs::read_dir(from).map_err(err)? {
        let entry = entry.map_err(err)?;
        let name = entry.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        let ty = entry.file_type().map_err(err)?;
        if ty.is_dir() {
            copy_dir(&src, &dst, &[])?;
        } else {
            // Files only: a read-only source must not make the copy read-only.
            let data = std::fs::read(&src).map_err(err)?;
            std::fs::write(&dst, data).map_err(err)?;
        }
    }
    Ok(())
}

/// The `helm template` a run's install corresponds to: same release,
/// namespace, values files and `--set-string` keys, with `secrets`' values.
pub fn template_cmd(
    helm: &str,
    opts: &ChartOptions,
    chart: &Path,
    override_file: &Path,
    secrets: &ChartSecrets,
) -> Cmd {
    let mut cmd = Cmd::new(helm).args([
        "template",
        &opts.release,
        &chart.display().to_string(),
        "--namespace",
        &opts.namespace,
        "--values",
        &override_file.display().to_string(),
    ]);
    for extra in &opts.values_files {
        cmd = cmd.args(["--values", &extra.display().to_string()]);
    }
    let mut with = opts.clone();
    with.secrets = secrets.clone();
    for (key, value) in secret_set_strings(&with) {
        cmd = cmd.arg("--set-string").secret_arg(format!("{key}={value}"));
    }
    cmd
}

/// Copy, resolve dependencies, render with placeholder secrets, parse.
/// `helm`: the program (`helm` on PATH unless a test names ci/bin/helm).
pub fn render(
    helm: &str,
    opts: &ChartOptions,
    work: &Path,
) -> Result<Vec<RenderedObject>, RenderError> {
    let chart = copy_chart(&opts.chart_path, work)?;
    let dep = Cmd::new(helm).args([
        "dependency",
        "update",
        "--skip-refresh",
        &chart.display().to_string(),
    ]);
    dep.run_blocking().map_err(|e| match e {
        CmdError::Spawn { .. } => RenderError::NoHelm(e),
        e => RenderError::Dependencies(e),
    })?;
    let override_file = work.join("values-override.yaml");
    std::fs::write(&override_file, values_override_yaml(opts)).map_err(|source| {
        RenderError::Copy {
            to: override_file.clone(),
            source,
        }
    })?;
    let out = template_cmd(
        helm,
        opts,
        &chart,
        &override_file,
        &ChartSecrets::placeholders(),
    )
    .run_blocking()
    .map_err(|e| match e {
        CmdError::Spawn { .. } => RenderError::NoHelm(e),
        e => RenderError::Template(e),
    })?;
    parse_stream(&out)
}

/// Split helm's output into objects: documents separated by `---` lines,
/// each after a `# Source: PATH` comment (later documents of the same
/// template inherit it). Empty documents are dropped.
pub fn parse_stream(text: &str) -> Result<Vec<RenderedObject>, RenderError> {
    let mut out = Vec::new();
    let mut source = String::new();
    let mut doc = String::new();
    let mut flush = |source: &str, doc: &mut String| -> Result<(), RenderError> {
        if !doc.trim().is_empty() {
            let value: Value = serde_norway::from_str(doc).map_err(|e| RenderError::Parse {
                source_file: source.to_string(),
                problem: e.to_string(),
            })?;
            if !value.is_null() {
                out.push(RenderedObject {
                    source: source.to_string(),
                    kind: value["kind"].as_str().unwrap_or_default().to_string(),
                    name: value["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    namespace: value["metadata"]["namespace"].as_str().map(String::from),
                    value,
                });
            }
        }
        doc.clear();
        Ok(())
    };
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") {
            flush(&source, &mut doc)?;
        } else if let Some(s) = line.strip_prefix("# Source: ") {
            source = s.trim().to_string();
        } else {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    flush(&source, &mut doc)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_splits_documents_and_keeps_their_template() {
        let text = "---\n# Source: maas/templates/a.yaml\nkind: Service\nmetadata:\n  name: one\n\
                    ---\nkind: Secret\nmetadata:\n  name: two\n  namespace: other\n\
                    ---\n# Source: maas/templates/b.yaml\n\n---\n# Source: maas/templates/c.yaml\nkind: Job\nmetadata: {name: three}\n";
        let objs = parse_stream(text).unwrap();
        let got: Vec<(&str, &str, &str, Option<&str>)> = objs
            .iter()
            .map(|o| {
                (
                    o.source.as_str(),
                    o.kind.as_str(),
                    o.name.as_str(),
                    o.namespace.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("maas/templates/a.yaml", "Service", "one", None),
                ("maas/templates/a.yaml", "Secret", "two", Some("other")),
                ("maas/templates/c.yaml", "Job", "three", None),
            ]
        );
        let e =
            parse_stream("---\n# Source: maas/templates/x.yaml\nkind: [unclosed\n").unwrap_err();
        assert!(e.to_string().contains("maas/templates/x.yaml"), "{e}");
    }

    #[test]
    fn copy_takes_file_dependencies_and_names_a_missing_one() {
        let src = tempfile::tempdir().unwrap();
        let chart = src.path().join("charts/maas");
        let dep = src.path().join("charts/deps/tk");
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::create_dir_all(chart.join("charts")).unwrap();
        std::fs::create_dir_all(&dep).unwrap();
        std::fs::write(chart.join("Chart.yaml"), "name: maas\nversion: 0.1.2\n").unwrap();
        std::fs::write(chart.join("charts/stale.tgz"), "old").unwrap();
        std::fs::write(
            chart.join("requirements.yaml"),
            "dependencies:\n- name: tk\n  repository: file://../deps/tk\n  version: '>= 0'\n",
        )
        .unwrap();
        std::fs::write(dep.join("Chart.yaml"), "name: tk\nversion: 1.0.0\n").unwrap();
        let work = tempfile::tempdir().unwrap();
        let copy = copy_chart(&chart, work.path()).unwrap();
        assert_eq!(copy, work.path().join("charts/maas"));
        assert!(copy.join("requirements.yaml").is_file());
        assert!(
            !copy.join("charts/stale.tgz").exists(),
            "helm rebuilds charts/"
        );
        assert!(work.path().join("charts/deps/tk/Chart.yaml").is_file());

        std::fs::remove_dir_all(&dep).unwrap();
        let e = copy_chart(&chart, tempfile::tempdir().unwrap().path()).unwrap_err();
        assert!(
            e.to_string()
                .contains("dependency tk (file://../deps/tk) is not at"),
            "{e}"
        );
    }
}
