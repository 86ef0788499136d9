//! Which MaaS chart a run installs, read from its Chart.yaml (and the image
//! tags its values.yaml ships), and what the override must do differently
//! for it. Two pins are known (see ../shared/sut/PROVENANCE):
//!
//! - chart 0.1.x: airshipit/maas 2d5b698, MAAS 2.8.7 on bionic. The region
//!   secret comes from `secrets.maas_region.value`; no cgroup switch.
//! - chart 0.2.x: airshipit/maas 53233a5, appVersion 3.6.4 on noble. The
//!   region makes its own secret (export-secret-key in its pod) and the
//!   value key is gone; `conf.maas.cgroups.disable_cgroups_{region,rack}`.
//!
//! An unknown version is planned like the newest known pin and said so.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A chart directory whose Chart.yaml or values.yaml cannot be read as a
/// MaaS chart pin: the file, and what is allowed there.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}: {allowed}")]
pub struct PinError {
    pub file: String,
    pub allowed: String,
}

/// The chart generation, by Chart.yaml's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartPin {
    /// 0.1.x: MAAS 2.8.
    Maas28,
    /// 0.2.x (and anything newer, until told otherwise): MAAS 3.6.
    Maas36,
}

impl ChartPin {
    /// The pin's name in a qualification matrix (`pins`, a cell's `pin`).
    pub fn label(self) -> &'static str {
        match self {
            ChartPin::Maas28 => "2.8",
            ChartPin::Maas36 => "3.6",
        }
    }
}

/// What the plan knows of the chart before rendering it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChartMeta {
    pub name: String,
    pub version: String,
    pub app_version: Option<String>,
    pub pin: ChartPin,
    /// `images.tags` of the chart's values.yaml (key -> reference).
    pub image_tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct ChartYaml {
    name: Option<String>,
    version: Option<String>,
    #[serde(rename = "appVersion")]
    app_version: Option<serde_norway::Value>,
}

#[derive(Deserialize, Default)]
struct ValuesImages {
    #[serde(default)]
    images: ImagesSection,
}

#[derive(Deserialize, Default)]
struct ImagesSection {
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl ChartMeta {
    /// The 2.8 pin as the plan's tests and defaults assume it (no file read).
    pub fn maas_2_8() -> ChartMeta {
        let tags = [
            ("db_init", "docker.io/postgres:9.5"),
            ("db_sync", "quay.io/airshipit/maas-region-controller:latest"),
            ("maas_rack", "quay.io/airshipit/maas-rack-controller:latest"),
            (
                "maas_region",
                "quay.io/airshipit/maas-region-controller:latest",
            ),
            (
                "bootstrap",
                "quay.io/airshipit/maas-region-controller:latest",
            ),
            (
                "export_api_key",
                "quay.io/airshipit/maas-region-controller:latest",
            ),
            ("maas_cache", "quay.io/airshipit/sstream-cache:latest"),
            (
                "dep_check",
                "quay.io/stackanetes/kubernetes-entrypoint:v0.3.1",
            ),
            (
                "ingress",
                "quay.io/kubernetes-ingress-controller/nginx-ingress-controller:0.26.1",
            ),
            ("ingress_vip", "docker.io/busybox:latest"),
            (
                "error_pages",
                "gcr.io/google_containers/ingress-gce-404-server-with-metrics-amd64:v1.6.0",
            ),
            (
                "maas_syslog",
                "quay.io/airshipit/maas-region-controller:latest",
            ),
        ];
        ChartMeta {
            name: "maas".into(),
            version: "0.1.2".into(),
            app_version: None,
            pin: ChartPin::Maas28,
            image_tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Read `CHART/Chart.yaml` and the image tags of `CHART/values.yaml`.
    pub fn read(chart: &Path) -> Result<ChartMeta, PinError> {
        let bad = |file: &str, allowed: String| PinError {
            file: chart.join(file).display().to_string(),
            allowed,
        };
        let text = std::fs::read_to_string(chart.join("Chart.yaml")).map_err(|e| {
            bad(
                "Chart.yaml",
                format!("not readable ({e}); --chart is the chart directory of a checkout, e.g. CHECKOUT/charts/maas"),
            )
        })?;
        let y: ChartYaml = serde_norway::from_str(&text)
            .map_err(|e| bad("Chart.yaml", format!("not a Chart.yaml: {e}")))?;
        let version = y
            .version
            .ok_or_else(|| bad("Chart.yaml", "field `version` is missing".into()))?;
        let pin = pin_of(&version).ok_or_else(|| {
            bad(
                "Chart.yaml",
                format!("version {version}: a MaaS chart 0.1.x (MAAS 2.8) or 0.2.x (MAAS 3.6)"),
            )
        })?;
        let values = std::fs::read_to_string(chart.join("values.yaml"))
            .map_err(|e| bad("values.yaml", format!("not readable: {e}")))?;
        let v: ValuesImages = serde_norway::from_str(&values).map_err(|e| {
            bad(
                "values.yaml",
                format!("images.tags is not a map of strings: {e}"),
            )
        })?;
        Ok(ChartMeta {
            name: y.name.unwrap_or_else(|| "maas".into()),
            version,
            app_version: y.app_version.and_then(|v| match v {
                serde_norway::Value::String(s) => Some(s),
                serde_norway::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
            pin,
            image_tags: v.images.tags,
        })
    }

    /// The MAAS version the images build (the pins' own, or appVersion).
    pub fn maas_version(&self) -> &str {
        match self.pin {
            ChartPin::Maas28 => "2.8.7",
            ChartPin::Maas36 => self.app_version.as_deref().unwrap_or("3.6.4"),
        }
    }

    /// The chart passes the region secret from `secrets.maas_region.value`.
    pub fn takes_region_secret(&self) -> bool {
        self.pin == ChartPin::Maas28
    }

    /// The chart can leave /sys/fs/cgroup unmounted (for cgroup v2 hosts).
    pub fn has_cgroup_switch(&self) -> bool {
        self.pin == ChartPin::Maas36
    }
}

/// 0.1.x -> 2.8; 0.2.x and later -> 3.6; 0.0.x or garbage -> none.
fn pin_of(version: &str) -> Option<ChartPin> {
    let mut parts = version.trim_start_matches('v').split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    match (major, minor) {
        (0, 1) => Some(ChartPin::Maas28),
        (0, m) if m >= 2 => Some(ChartPin::Maas36),
        (m, _) if m >= 1 => Some(ChartPin::Maas36),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_map_to_pins() {
        assert_eq!(pin_of("0.1.2"), Some(ChartPin::Maas28));
        assert_eq!(pin_of("0.2.0"), Some(ChartPin::Maas36));
        assert_eq!(pin_of("1.0.0"), Some(ChartPin::Maas36));
        assert_eq!(pin_of("0.0.9"), None);
        assert_eq!(pin_of("banana"), None);
    }
}
