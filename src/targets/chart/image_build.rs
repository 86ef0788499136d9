//! `--build-images`: the MAAS images built from the chart checkout's own
//! `images/` Dockerfiles (region, rack and, with the cache, sstream-cache),
//! tagged as the override names them, so `kind load` finds them locally.
//!
//! Nothing may be pulled on a CI host without a registry, so before any
//! build the base image each Dockerfile starts FROM must already be in the
//! local docker; `base_of` reads it (the chart's Dockerfiles take it from
//! `ARG FROM=...`, which `--image-base` overrides with `--build-arg`).

use std::path::{Path, PathBuf};

use crate::cmd::Cmd;

use super::options::ChartOptions;
use super::values::maas_image_overrides;

/// One `docker build` of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBuild {
    /// The tag it gets, as the override names it (`REPO/NAME:TAG`).
    pub image: String,
    /// `CHECKOUT/images/NAME`: the build context, with its Dockerfile.
    pub context: PathBuf,
    /// `--build-arg FROM=...`, when `--image-base` is given.
    pub base_override: Option<String>,
}

impl ImageBuild {
    pub fn dockerfile(&self) -> PathBuf {
        self.context.join("Dockerfile")
    }

    /// The command the run executes.
    pub fn command(&self) -> Cmd {
        let mut cmd = Cmd::new("docker").args(["build", "--tag", &self.image]);
        if let Some(base) = &self.base_override {
            cmd = cmd.args(["--build-arg", &format!("FROM={base}")]);
        }
        cmd.args([
            "--file",
            &self.dockerfile().display().to_string(),
            &self.context.display().to_string(),
        ])
    }
}

/// The builds a run makes: one per distinct MAAS image of the override
/// (several `images.tags` keys share the region image); none without
/// `--build-images`.
pub fn planned_builds(opts: &ChartOptions) -> Vec<ImageBuild> {
    if !opts.build_images {
        return Vec::new();
    }
    let mut builds: Vec<ImageBuild> = Vec::new();
    for (name, image) in maas_image_overrides(opts) {
        if builds.iter().any(|b| b.image == image) {
            continue;
        }
        builds.push(ImageBuild {
            image,
            context: images_dir(&opts.chart_path).join(name),
            base_override: opts.image_base.clone(),
        });
    }
    builds
}

/// The checkout's images/: `--chart` is CHECKOUT/charts/maas.
pub fn images_dir(chart_path: &Path) -> PathBuf {
    let checkout = chart_path
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    checkout.join("images")
}

/// Why a planned build cannot start; each names the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildInputError {
    #[error(
        "{dockerfile}: not found (--build-images builds from CHECKOUT/images/, beside the CHECKOUT/charts/maas that --chart names)"
    )]
    NoDockerfile { dockerfile: String },
    #[error("{dockerfile}: no FROM line to take the base image from")]
    NoBase { dockerfile: String },
}

/// The base image a Dockerfile's first stage starts from: its `FROM`,
/// with `${VAR}`/`$VAR` taken from `--build-arg` (`base_override` for
/// `FROM`) or the `ARG VAR=default` lines before it.
pub fn base_of(dockerfile_text: &str, base_override: Option<&str>) -> Option<String> {
    let mut args: Vec<(String, String)> = Vec::new();
    for line in dockerfile_text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
        match keyword.as_str() {
            "ARG" => {
                if let Some((name, default)) = words.next().and_then(|a| a.split_once('=')) {
                    args.push((name.to_string(), default.trim_matches('"').to_string()));
                }
            }
            "FROM" => {
                // `FROM [--platform=...] image [AS name]`
                let image = words.find(|w| !w.starts_with("--"))?;
                return Some(expand(image, &args, base_override));
            }
            _ => {}
        }
    }
    None
}

fn expand(word: &str, args: &[(String, String)], base_override: Option<&str>) -> String {
    let name = word
        .strip_prefix("${")
        .and_then(|w| w.strip_suffix('}'))
        .or_else(|| word.strip_prefix('$'));
    let Some(name) = name else {
        return word.to_string();
    };
    if name == "FROM"
        && let Some(base) = base_override
    {
        return base.to_string();
    }
    args.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The base image a build needs, read from its Dockerfile.
pub fn required_base(build: &ImageBuild) -> Result<String, BuildInputError> {
    let dockerfile = build.dockerfile();
    let shown = dockerfile.display().to_string();
    let text = std::fs::read_to_string(&dockerfile).map_err(|_| BuildInputError::NoDockerfile {
        dockerfile: shown.clone(),
    })?;
    base_of(&text, build.base_override.as_deref())
        .filter(|b| !b.is_empty())
        .ok_or(BuildInputError::NoBase { dockerfile: shown })
}

/// Whether `image` is in the local docker.
pub fn present_locally(image: &str) -> bool {
    Cmd::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .run_blocking()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_comes_from_the_arg_default_or_the_override() {
        let text = "ARG FROM=ubuntu:18.04\nFROM ${FROM}\nRUN true\n";
        assert_eq!(base_of(text, None).as_deref(), Some("ubuntu:18.04"));
        assert_eq!(
            base_of(text, Some("maas-e2e/debian-base:bookworm")).as_deref(),
            Some("maas-e2e/debian-base:bookworm")
        );
    }

    #[test]
    fn a_literal_from_with_platform_and_stage_name() {
        let text = "# syntax\nFROM --platform=linux/amd64 debian:12 AS build\nFROM scratch\n";
        assert_eq!(base_of(text, Some("ignored")).as_deref(), Some("debian:12"));
    }

    #[test]
    fn no_from_no_base() {
        assert_eq!(base_of("ARG FROM=x\nRUN true\n", None), None);
    }
}
