//! What a chart run is asked to do: the options `run --target chart` maps its
//! flags and the scenario onto, and their validation.
//!
//! Everything here is plain data; `ChartPlan::new` turns it into commands.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;
use thiserror::Error;

use super::pin::ChartMeta;

/// Where the kind cluster comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterSource {
    /// Create a cluster for this run. `config`: a kind config the user gave
    /// (`--kind-config`); `None` generates one from the options.
    Create { config: Option<PathBuf> },
    /// Use a cluster that already exists (`--reuse-cluster NAME`); never deleted.
    Reuse { name: String },
}

/// Where Postgres runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PostgresMode {
    /// A container on kind's docker network, exposed as Service + Endpoints.
    Container,
    /// A Deployment + Service inside the release namespace.
    InCluster,
}

/// The Postgres the chart's db-init job connects to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostgresOptions {
    pub mode: PostgresMode,
    /// Image repository, e.g. `postgres` or `maas-e2e/postgres`.
    pub image: String,
    /// Image tag; its leading number is the major version (`14`, `15-bookworm`).
    pub tag: String,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        // The chart's GRANT model works unchanged up to 14 (see docs/chart.md).
        PostgresOptions {
            mode: PostgresMode::Container,
            image: "postgres".into(),
            tag: "14".into(),
        }
    }
}

impl PostgresOptions {
    /// From `--postgres-image IMAGE:TAG` (the tag is required: a
    /// registry's default tag says nothing about the major version).
    pub fn from_reference(mode: PostgresMode, reference: &str) -> Result<Self, ChartOptionsError> {
        // A registry port (`host:5000/pg:15`) has a ':' before the last '/'.
        let split = reference
            .rfind(':')
            .filter(|&i| !reference[i..].contains('/'));
        match split {
            Some(i) if i > 0 && i + 1 < reference.len() => Ok(PostgresOptions {
                mode,
                image: reference[..i].into(),
                tag: reference[i + 1..].into(),
            }),
            _ => Err(bad(
                "postgres_image",
                reference,
                "IMAGE:TAG with an explicit tag, e.g. postgres:14",
            )),
        }
    }

    /// `image:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }

    /// The major version read from the tag's leading digits, if any.
    pub fn major_version(&self) -> Option<u32> {
        let digits: String = self.tag.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }

    /// Whether the harness pre-creates maasdb owned by role maas. Postgres 15
    /// revoked CREATE on schema public from ordinary users; an unknown
    /// version gets the pre-creation too (it is harmless on older ones).
    pub fn needs_precreate(&self) -> bool {
        self.major_version().is_none_or(|v| v >= 15)
    }
}

/// An IPv4 address with its prefix length, e.g. `10.40.0.2/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct Ipv4Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Cidr {
    pub fn network(&self) -> Ipv4Addr {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        };
        Ipv4Addr::from(u32::from(self.addr) & mask)
    }

    /// The subnet in CIDR form (`10.40.0.0/24`), as MAAS names subnets.
    pub fn subnet(&self) -> String {
        format!("{}/{}", self.network(), self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        };
        u32::from(ip) & mask == u32::from(self.network())
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl From<Ipv4Cidr> for String {
    fn from(c: Ipv4Cidr) -> String {
        c.to_string()
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not ADDRESS/PREFIX"))?;
        let addr = addr.parse().map_err(|e| format!("`{addr}`: {e}"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|e| format!("prefix `{prefix}`: {e}"))?;
        if prefix > 32 {
            return Err(format!("prefix {prefix} is over 32"));
        }
        Ok(Ipv4Cidr { addr, prefix })
    }
}

/// One lab bridge joined to the rack's kind node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabLink {
    /// The bridge in the lab network namespace (made by the lab stage).
    pub lab_bridge: String,
    /// The Linux bridge created inside the rack's node; it carries `rack_address`.
    pub node_bridge: String,
    /// The rack's address on this network, e.g. `10.40.0.2/24`.
    pub rack_address: Ipv4Cidr,
}

/// Where the lab is and how the rack joins it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WiringOptions {
    /// The network namespace that holds every `lab_bridge`; `None`: the
    /// host's own, where the lab stage makes its bridges (libvirt attaches
    /// VM NICs there).
    pub lab_netns: Option<String>,
    /// The PXE network first; others (e.g. the BMC network) after it.
    pub links: Vec<LabLink>,
    /// The dynamic range MAAS hands out on the PXE network.
    pub dynamic_range: (Ipv4Addr, Ipv4Addr),
    /// Gateway MAAS announces on the PXE subnet, if any.
    pub gateway: Option<Ipv4Addr>,
}

/// Passwords and keys the deployment needs. Never printed: commands carry
/// them as secret arguments, snapshots see `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct ChartSecrets {
    /// Postgres superuser `postgres`.
    pub db_admin_password: String,
    /// Postgres role `maas`.
    pub db_user_password: String,
    /// The region's shared secret (racks register with it).
    pub region_secret: String,
    /// The MAAS admin user's password.
    pub admin_password: String,
}

impl fmt::Debug for ChartSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChartSecrets(<redacted>)")
    }
}

impl ChartSecrets {
    /// Fresh random secrets for one run (the region secret: 16 random bytes
    /// in hex; a run derives it from its seed instead, `region_secret_from_seed`).
    pub fn generate() -> Self {
        use rand::RngExt;
        let bytes: [u8; 16] = rand::rng().random();
        ChartSecrets {
            db_admin_password: random_token(24),
            db_user_password: random_token(24),
            region_secret: hex::encode(bytes),
            admin_password: random_token(20),
        }
    }

    /// Well-formed stand-ins for rendering the chart (`chart check`): the
    /// same shapes as a run's secrets, values that are nobody's secret.
    pub fn placeholders() -> Self {
        ChartSecrets {
            db_admin_password: "placeholderdbadmin0000000".into(),
            db_user_password: "placeholderdbuser00000000".into(),
            region_secret: region_secret_from_seed(0),
            admin_password: "placeholderadmin0000".into(),
        }
    }

    /// Each secret value, for redaction.
    pub fn values(&self) -> [&str; 4] {
        [
            &self.db_admin_password,
            &self.db_user_password,
            &self.region_secret,
            &self.admin_password,
        ]
    }
}

/// The region's shared secret for a run: 16 bytes from the seed, as 32
/// lowercase hex digits. MAAS reads /var/lib/maas/secret with a2b_hex, so
/// anything else leaves the rack unable to register. From the seed like the
/// plan's BMC passwords: a repro gets the same one.
pub fn region_secret_from_seed(seed: u64) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"maas-e2e/chart/region-secret");
    h.update(seed.to_le_bytes());
    hex::encode(&h.finalize()[..16])
}

/// What MAAS accepts as a region secret here: 32 lowercase hex digits.
pub fn is_region_secret(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn random_token(len: usize) -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Every input of a chart run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartOptions {
    /// Names everything the run creates (`me2e-<run_id>-...`).
    pub run_id: String,
    /// Where the run's files, logs and kubeconfig go.
    pub run_dir: PathBuf,
    /// The release namespace; also the credentials secret namespace.
    pub namespace: String,
    /// The helm release name.
    pub release: String,
    /// A checkout of the chart (charts/maas with helm-toolkit in charts/deps).
    pub chart_path: PathBuf,
    /// Extra `--values` files, applied after the generated override.
    pub values_files: Vec<PathBuf>,
    /// Registry/repository for the MAAS images, e.g. `quay.io/airshipit`.
    pub image_repo: Option<String>,
    /// Tag for the MAAS images.
    pub image_tag: Option<String>,
    /// `images.tags.dep_check` (kubernetes-entrypoint, every pod's init
    /// container); `None`: the chart's own.
    pub dep_check_image: Option<String>,
    /// `kind load docker-image` the MAAS images (built locally, not pullable).
    pub load_images: bool,
    /// Build the MAAS images from the checkout's images/ first (`docker build`).
    pub build_images: bool,
    /// `--build-arg FROM=` for those builds: a base image in the local docker.
    pub image_base: Option<String>,
    pub cluster: ClusterSource,
    /// Leave the cluster (and Postgres) running after the run.
    pub keep_cluster: bool,
    pub postgres: PostgresOptions,
    /// `conf.cache.enabled`: the maas-cache sidecar in the region pod.
    pub cache: bool,
    /// `pod.replicas.rack`; each rack needs its own labelled worker.
    pub rack_replicas: u32,
    /// Workers in a generated kind config (at least `rack_replicas`).
    pub workers: u32,
    /// The host has AppArmor; when false the chart's annotations are turned off.
    pub apparmor: bool,
    pub wiring: WiringOptions,
    /// How many machines the scenario boots (sizes the dynamic range check).
    pub machines: u32,
    pub secrets: ChartSecrets,
    pub timeouts: ChartTimeouts,
    /// The chart's Chart.yaml and image tags (`pin::ChartMeta::read`).
    pub chart_meta: ChartMeta,
    /// The host mounts cgroup v2 (unified) at /sys/fs/cgroup.
    pub host_cgroup_v2: bool,
}

/// How long each wait of the deployment flow may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChartTimeouts {
    #[serde(with = "humantime_secs")]
    pub db_jobs: std::time::Duration,
    #[serde(with = "humantime_secs")]
    pub region: std::time::Duration,
    #[serde(with = "humantime_secs")]
    pub api_key: std::time::Duration,
    #[serde(with = "humantime_secs")]
    pub rack: std::time::Duration,
    /// The import job downloads boot images: the longest wait.
    #[serde(with = "humantime_secs")]
    pub import: std::time::Duration,
    /// Each wait of the MAAS configuration after deploy (the region's
    /// import, the rack's boot images synced): `--configure-timeout`.
    #[serde(with = "humantime_secs")]
    pub configure: std::time::Duration,
}

impl Default for ChartTimeouts {
    fn default() -> Self {
        use std::time::Duration;
        ChartTimeouts {
            db_jobs: Duration::from_secs(600),
            region: Duration::from_secs(900),
            api_key: Duration::from_secs(900),
            // The rack's readiness probe runs once a minute after a 60 s delay.
            rack: Duration::from_secs(900),
            // The chart's own import timeout is 900 s; allow for retries.
            import: Duration::from_secs(2700),
            // The import job finished; the rack may still be syncing.
            configure: Duration::from_secs(2700),
        }
    }
}

mod humantime_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

/// An option that cannot be planned, with the field and what is allowed.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("chart option `{field}` = {value:?}: {allowed}")]
pub struct ChartOptionsError {
    pub field: &'static str,
    pub value: String,
    pub allowed: String,
}

/// A chart that is not a pin we know is a bad `--chart`.
impl From<super::pin::PinError> for ChartOptionsError {
    fn from(e: super::pin::PinError) -> Self {
        ChartOptionsError {
            field: "chart",
            value: e.file,
            allowed: e.allowed,
        }
    }
}

fn bad(
    field: &'static str,
    value: impl fmt::Display,
    allowed: impl Into<String>,
) -> ChartOptionsError {
    ChartOptionsError {
        field,
        value: value.to_string(),
        allowed: allowed.into(),
    }
}

fn dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn ifname_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 15 && !s.contains(['/', ' ', ':']) && s != "." && s != ".."
}

impl ChartOptions {
    /// Defaults for everything but the run id, the run dir and the chart path;
    /// a lab with one PXE network 10.40.0.0/24 in netns `me2e-<run_id>-lab`.
    pub fn new(
        run_id: impl Into<String>,
        run_dir: impl Into<PathBuf>,
        chart_path: impl Into<PathBuf>,
    ) -> Self {
        let run_id = run_id.into();
        ChartOptions {
            wiring: WiringOptions {
                lab_netns: Some(crate::plan::chart_lab_netns_name(&run_id)),
                links: vec![LabLink {
                    lab_bridge: "br-pxe".into(),
                    node_bridge: "maas-pxe".into(),
                    rack_address: "10.40.0.2/24".parse().expect("literal"),
                }],
                dynamic_range: (Ipv4Addr::new(10, 40, 0, 100), Ipv4Addr::new(10, 40, 0, 199)),
                gateway: None,
            },
            run_id,
            run_dir: run_dir.into(),
            namespace: "maas".into(),
            release: "maas".into(),
            chart_path: chart_path.into(),
            values_files: Vec::new(),
            image_repo: None,
            image_tag: None,
            dep_check_image: None,
            load_images: true,
            build_images: false,
            image_base: None,
            cluster: ClusterSource::Create { config: None },
            keep_cluster: false,
            postgres: PostgresOptions::default(),
            cache: false,
            rack_replicas: 1,
            workers: 1,
            apparmor: false,
            machines: 1,
            secrets: ChartSecrets::generate(),
            timeouts: ChartTimeouts::default(),
            chart_meta: ChartMeta::maas_2_8(),
            host_cgroup_v2: false,
        }
    }

    /// The kind cluster's name.
    pub fn cluster_name(&self) -> String {
        match &self.cluster {
            ClusterSource::Reuse { name } => name.clone(),
            ClusterSource::Create { .. } => crate::plan::kind_cluster_name(&self.run_id),
        }
    }

    /// Check every field; the first problem is returned.
    pub fn validate(&self) -> Result<(), ChartOptionsError> {
        // Cluster name `me2e-<id>` plus `-worker10` must stay a short DNS label.
        if !dns_label(&self.run_id, 20) {
            return Err(bad(
                "run_id",
                &self.run_id,
                "1-20 of a-z, 0-9, '-', not starting or ending with '-'",
            ));
        }
        if !dns_label(&self.namespace, 63) {
            return Err(bad(
                "namespace",
                &self.namespace,
                "a DNS label: a-z, 0-9, '-', at most 63",
            ));
        }
        if !dns_label(&self.release, 53) {
            return Err(bad(
                "release",
                &self.release,
                "a helm release name: a-z, 0-9, '-', at most 53",
            ));
        }
        if let ClusterSource::Reuse { name } = &self.cluster
            && !dns_label(name, 50)
        {
            return Err(bad(
                "reuse_cluster",
                name,
                "an existing kind cluster name (a-z, 0-9, '-')",
            ));
        }
        if self.rack_replicas == 0 {
            return Err(bad("rack_replicas", self.rack_replicas, "at least 1"));
        }
        if matches!(self.cluster, ClusterSource::Create { config: None })
            && self.workers < self.rack_replicas
        {
            return Err(bad(
                "workers",
                self.workers,
                format!(
                    "at least rack_replicas ({}): the chart's rack anti-affinity is required, one rack per node",
                    self.rack_replicas
                ),
            ));
        }
        if self.workers > 9 {
            return Err(bad("workers", self.workers, "at most 9"));
        }
        if self.timeouts.configure.is_zero() {
            return Err(bad(
                "configure_timeout",
                "0s",
                "a duration above zero, e.g. 30s or 45m",
            ));
        }
        if self.postgres.image.is_empty() || self.postgres.tag.is_empty() {
            return Err(bad(
                "postgres",
                self.postgres.reference(),
                "IMAGE:TAG, both non-empty",
            ));
        }
        if matches!(&self.image_repo, Some(r) if r.is_empty() || r.ends_with('/')) {
            return Err(bad(
                "image_repo",
                self.image_repo.clone().unwrap_or_default(),
                "a repository without a trailing '/', e.g. quay.io/airshipit",
            ));
        }
        if self.chart_meta.takes_region_secret() && !is_region_secret(&self.secrets.region_secret) {
            return Err(bad(
                "secrets.region_secret",
                "<redacted>",
                "32 lowercase hex digits (16 bytes): MAAS reads the secret with a2b_hex",
            ));
        }
        self.validate_wiring()
    }

    fn validate_wiring(&self) -> Result<(), ChartOptionsError> {
        let w = &self.wiring;
        if let Some(ns) = &w.lab_netns
            && (ns.is_empty() || ns.contains('/'))
        {
            return Err(bad(
                "wiring.lab_netns",
                ns,
                "a network namespace name (or none: the host's)",
            ));
        }
        let Some(pxe) = w.links.first() else {
            return Err(bad(
                "wiring.links",
                "[]",
                "at least one link: the PXE network first",
            ));
        };
        for (i, l) in w.links.iter().enumerate() {
            if !ifname_ok(&l.lab_bridge) {
                return Err(bad(
                    "wiring.links[].lab_bridge",
                    &l.lab_bridge,
                    "an interface name, 1-15 characters",
                ));
            }
            if !ifname_ok(&l.node_bridge) || l.node_bridge.starts_with("cali") {
                return Err(bad(
                    "wiring.links[].node_bridge",
                    &l.node_bridge,
                    "an interface name, 1-15 characters, not cali* (the rack leaves those out)",
                ));
            }
            if w.links[..i].iter().any(|o| o.node_bridge == l.node_bridge) {
                return Err(bad(
                    "wiring.links[].node_bridge",
                    &l.node_bridge,
                    "each link its own node bridge",
                ));
            }
            if l.rack_address.prefix == 0 || l.rack_address.prefix > 30 {
                return Err(bad(
                    "wiring.links[].rack_address",
                    l.rack_address,
                    "a prefix from /1 to /30",
                ));
            }
        }
        let (start, end) = w.dynamic_range;
        let subnet = pxe.rack_address;
        if !subnet.contains(start) || !subnet.contains(end) || u32::from(start) > u32::from(end) {
            return Err(bad(
                "wiring.dynamic_range",
                format!("{start}-{end}"),
                format!(
                    "START-END inside the PXE subnet {}, START <= END",
                    subnet.subnet()
                ),
            ));
        }
        // Rack i takes the link's address + i (see wiring::plan_wiring).
        for i in 0..self.rack_replicas {
            let rack = Ipv4Addr::from(u32::from(subnet.addr).wrapping_add(i));
            if !subnet.contains(rack) {
                return Err(bad(
                    "wiring.links[].rack_address",
                    subnet,
                    format!("rack {i} would get {rack}, outside the subnet"),
                ));
            }
            if (u32::from(start)..=u32::from(end)).contains(&u32::from(rack)) {
                return Err(bad(
                    "wiring.dynamic_range",
                    format!("{start}-{end}"),
                    format!("must not contain rack {i}'s address {rack}"),
                ));
            }
        }
        let size = u32::from(end) - u32::from(start) + 1;
        if size < self.machines {
            return Err(bad(
                "wiring.dynamic_range",
                format!("{start}-{end}"),
                format!("at least {} addresses, one per machine", self.machines),
            ));
        }
        if let Some(gw) = w.gateway
            && !subnet.contains(gw)
        {
            return Err(bad(
                "wiring.gateway",
                gw,
                format!("an address inside {}", subnet.subnet()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_references_and_versions() {
        let p = PostgresOptions::from_reference(
            PostgresMode::Container,
            "localhost:5000/pg/postgres:15-bookworm",
        )
        .unwrap();
        assert_eq!(
            (p.image.as_str(), p.tag.as_str()),
            ("localhost:5000/pg/postgres", "15-bookworm")
        );
        assert_eq!(p.major_version(), Some(15));
        assert!(p.needs_precreate());
        let p = PostgresOptions::from_reference(PostgresMode::InCluster, "postgres:14").unwrap();
        assert!(!p.needs_precreate());
        let p =
            PostgresOptions::from_reference(PostgresMode::Container, "postgres:latest").unwrap();
        assert!(
            p.needs_precreate(),
            "unknown version: pre-create to be safe"
        );
        for bad in ["postgres", "localhost:5000/postgres", "postgres:", ":14"] {
            let e = PostgresOptions::from_reference(PostgresMode::Container, bad).unwrap_err();
            assert_eq!(e.field, "postgres_image", "{bad}");
        }
    }

    #[test]
    fn cidr_parsing_and_membership() {
        let c: Ipv4Cidr = "10.40.0.2/24".parse().unwrap();
        assert_eq!(c.subnet(), "10.40.0.0/24");
        assert!(c.contains(Ipv4Addr::new(10, 40, 0, 254)));
        assert!(!c.contains(Ipv4Addr::new(10, 40, 1, 1)));
        assert!("10.40.0.2".parse::<Ipv4Cidr>().is_err());
        assert!("10.40.0.2/33".parse::<Ipv4Cidr>().is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = ChartSecrets::generate();
        let shown = format!("{s:?}");
        assert!(
            s.values()
                .iter()
                .all(|v| !shown.contains(v) && v.len() >= 20)
        );
    }
}
