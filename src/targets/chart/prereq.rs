//! Before anything starts: the host programs the chart target needs, with
//! what to install when one is missing.

use thiserror::Error;

/// A program the chart target runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub program: &'static str,
    pub used_for: &'static str,
    pub install: &'static str,
}

/// Everything `run --target chart` shells out to.
pub const TOOLS: &[Tool] = &[
    Tool {
        program: "docker",
        used_for: "kind's nodes and the Postgres container",
        install: "apt-get install docker.io, then start dockerd (ci/setup-host.sh --docker)",
    },
    Tool {
        program: "kind",
        used_for: "the Kubernetes cluster",
        install: "the kind release binary from https://kind.sigs.k8s.io/docs/user/quick-start/#installation (or `go install sigs.k8s.io/kind@latest`)",
    },
    Tool {
        program: "helm",
        used_for: "installing the chart",
        install: "Helm 3 from https://helm.sh/docs/intro/install/",
    },
    Tool {
        program: "kubectl",
        used_for: "labels, manifests, port-forwards and log collection",
        install: "kubectl from https://kubernetes.io/docs/tasks/tools/ (Debian: apt-get install kubectl where packaged)",
    },
    Tool {
        program: "ip",
        used_for: "wiring the lab to the rack's node",
        install: "apt-get install iproute2",
    },
];

/// Programs missing from the host.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("the chart target needs programs this host lacks:\n{}\nnothing was started", render(.missing))]
pub struct MissingTools {
    pub missing: Vec<Tool>,
}

fn render(missing: &[Tool]) -> String {
    missing
        .iter()
        .map(|t| format!("  - {} ({}): install {}", t.program, t.used_for, t.install))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Check with a given lookup (`have("kind")` -> on PATH?).
pub fn check_with(have: impl Fn(&str) -> bool) -> Result<(), MissingTools> {
    let missing: Vec<Tool> = TOOLS.iter().filter(|t| !have(t.program)).cloned().collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MissingTools { missing })
    }
}

/// Check the real PATH.
pub fn check() -> Result<(), MissingTools> {
    check_with(crate::testing::have_program)
}
