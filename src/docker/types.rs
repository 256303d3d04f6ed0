//! Plain data the rest of pullpilot sees of Docker, and the pure conversions from bollard's models.
//!
//! Owns: [`EngineInfo`], [`ContainerSummary`], [`ContainerFacts`], [`ContainerSnapshot`],
//! [`ImageFacts`] and friends. Must not: do I/O. No bollard type is reachable from outside
//! `src/docker/` (the snapshot keeps its inspect data private).
//! Over 500 lines: one conversion per kind of object Docker returns, each beside the data it fills.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use bollard::models;
use serde::{Deserialize, Serialize};

/// The label compose puts on every container of a project.
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";

const CONTAINERD_SNAPSHOTTER: &str = "io.containerd.snapshotter.v1";

/// What the daemon is and how it stores images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineInfo {
    /// Docker Engine version, e.g. `28.5.1`.
    pub server_version: String,
    /// The newest API version the daemon speaks, e.g. `1.51`.
    pub api_version: String,
    /// The API version this client uses with it (the lower of the daemon's and bollard's).
    pub client_api_version: String,
    /// `GOOS` of the daemon, e.g. `linux`.
    pub os: String,
    /// `GOARCH` of the daemon, e.g. `amd64` (the spelling image platforms use).
    pub arch: String,
    /// Storage driver, e.g. `overlay2` (classic) or `overlayfs` (containerd snapshotter).
    pub driver: String,
    /// True when images live in containerd's store: image IDs are then manifest or index
    /// digests, and `RepoDigests` holds `repo@<image ID>`.
    pub containerd_image_store: bool,
}

/// A container's state as Docker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Stopping,
    Exited,
    Dead,
    /// Docker reported no state.
    Unknown,
}

impl ContainerStatus {
    /// The word Docker uses (`running`, `exited`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Paused => "paused",
            ContainerStatus::Restarting => "restarting",
            ContainerStatus::Removing => "removing",
            ContainerStatus::Stopping => "stopping",
            ContainerStatus::Exited => "exited",
            ContainerStatus::Dead => "dead",
            ContainerStatus::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict of a container's healthcheck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        })
    }
}

/// One row of `docker ps -a`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSummary {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    /// The reference the container was created from (`Config.Image`), as Docker lists it.
    pub image: String,
    /// The ID of the image the container runs.
    pub image_id: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerStatus,
}

/// What the planner, the updater and the health gate need to know about one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerFacts {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    /// The ID of the image the container runs (`Image`).
    pub image_id: String,
    /// The reference it was created from (`Config.Image`), e.g. `nginx:1.27` or an image ID.
    pub config_image: String,
    /// Merged labels (image labels included), compose's among them.
    pub labels: BTreeMap<String, String>,
    pub status: ContainerStatus,
    /// True for running and restarting containers (Docker's `State.Running`).
    pub running: bool,
    pub exit_code: i64,
    pub restart_count: i64,
    /// RFC 3339, as Docker reports it; `None` when never started.
    pub started_at: Option<String>,
    /// `None` when there is no healthcheck or it has not reported yet.
    pub health: Option<HealthStatus>,
    /// True when the effective config has a healthcheck that is not `NONE`.
    pub has_healthcheck: bool,
    /// `HostConfig.NetworkMode`: `bridge`, `host`, `none`, `container:<id>`, a network name…
    pub network_mode: String,
    /// `HostConfig.PidMode`: empty, `host` or `container:<id or name>`.
    pub pid_mode: String,
    /// `HostConfig.IpcMode`: `private`, `shareable`, `host`, `container:<id or name>`…
    pub ipc_mode: String,
    /// `HostConfig.VolumesFrom`: `<id or name>[:ro|:rw]` entries.
    pub volumes_from: Vec<String>,
    /// Names of the networks the container is attached to, sorted.
    pub networks: Vec<String>,
    /// `Platform` (the OS, e.g. `linux`), when reported.
    pub platform: Option<String>,
    /// `os/arch[/variant]` of the image manifest the container was created from (API ≥ 1.48).
    pub image_platform: Option<String>,
    /// The digest of that platform manifest (`ImageManifestDescriptor.digest`, API ≥ 1.48 on
    /// the containerd image store): what the container runs, whatever the index around it.
    pub image_manifest_digest: Option<String>,
    /// `Config.StopTimeout` in seconds, when set on the container.
    pub stop_timeout: Option<i64>,
    /// RFC 3339 creation time.
    pub created: String,
}

/// What a follower takes from another container, so that it must be recreated with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Sharing {
    /// `NetworkMode: container:<it>` (compose `network_mode: service:<it>`).
    Network,
    /// `PidMode: container:<it>` (compose `pid: service:<it>`).
    Pid,
    /// `IpcMode: container:<it>` (compose `ipc: service:<it>`).
    Ipc,
    /// A `VolumesFrom` entry naming it (compose `volumes_from: [<it>]`).
    Volumes,
}

impl Sharing {
    /// What is shared, for messages: "network", "process namespace"…
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Sharing::Network => "network",
            Sharing::Pid => "process namespace",
            Sharing::Ipc => "IPC namespace",
            Sharing::Volumes => "volumes",
        }
    }
}

impl ContainerFacts {
    /// What this container takes from the container with ID `id` (and name `name`, when
    /// given), in a fixed order; empty when it is independent of it.
    #[must_use]
    pub fn shares_with(&self, id: &str, name: Option<&str>) -> Vec<Sharing> {
        let joins = |mode: &str| {
            mode.strip_prefix("container:")
                .is_some_and(|r| names_container(r, id, name))
        };
        let mut shared = Vec::new();
        if joins(&self.network_mode) {
            shared.push(Sharing::Network);
        }
        if joins(&self.pid_mode) {
            shared.push(Sharing::Pid);
        }
        if joins(&self.ipc_mode) {
            shared.push(Sharing::Ipc);
        }
        if self
            .volumes_from
            .iter()
            .any(|v| names_container(volumes_from_source(v), id, name))
        {
            shared.push(Sharing::Volumes);
        }
        shared
    }
}

/// The container part of a `VolumesFrom` entry (`<id or name>[:ro|:rw]`; names cannot hold a
/// colon).
pub(crate) fn volumes_from_source(entry: &str) -> &str {
    entry.split_once(':').map_or(entry, |(source, _)| source)
}

/// Whether `reference` (as a user or compose wrote it in a `container:` mode or `VolumesFrom`)
/// names the container with ID `id` and name `name`. Docker accepts the full ID, the name, or
/// an ID prefix; prefixes shorter than the 12-digit short ID are not trusted, because a name
/// like `db` is also hex and would then match by accident.
pub(crate) fn names_container(reference: &str, id: &str, name: Option<&str>) -> bool {
    let reference = reference.trim_start_matches('/');
    if reference.is_empty() {
        return false;
    }
    if name.is_some_and(|n| n.trim_start_matches('/') == reference) {
        return true;
    }
    reference.len() >= 12
        && reference.bytes().all(|b| b.is_ascii_hexdigit())
        && id.starts_with(reference)
}

/// A follower's parent was recreated: every reference the follower holds to the old parent
/// (network, PID and IPC modes, `VolumesFrom`) points at the new one in its replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewParent {
    pub old_id: String,
    pub old_name: String,
    pub new_id: String,
}

impl NewParent {
    fn is_old(&self, reference: &str) -> bool {
        names_container(reference, &self.old_id, Some(&self.old_name))
    }

    /// A `container:<ref>` network, PID or IPC mode naming the old parent, pointed at the new
    /// one; `None` for any other mode.
    #[must_use]
    pub fn repoint_mode(&self, mode: &str) -> Option<String> {
        mode.strip_prefix("container:")
            .filter(|r| self.is_old(r))
            .map(|_| format!("container:{}", self.new_id))
    }

    /// A `VolumesFrom` entry naming the old parent, pointed at the new one with the same
    /// `:ro`/`:rw`; `None` for an entry naming another container.
    #[must_use]
    pub fn repoint_volumes_from(&self, entry: &str) -> Option<String> {
        let source = volumes_from_source(entry);
        self.is_old(source)
            .then(|| format!("{}{}", self.new_id, &entry[source.len()..]))
    }
}

/// The full inspect data of a container, kept for a faithful recreate and journaled as JSON.
/// Only `src/docker/` can look inside; others get [`ContainerFacts`] from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContainerSnapshot {
    inspect: models::ContainerInspectResponse,
}

impl ContainerSnapshot {
    /// A snapshot that records only an ID: what the in-memory runtime hands out, since it
    /// recreates from its own model.
    #[cfg(test)]
    pub(crate) fn of_id(id: &str) -> ContainerSnapshot {
        ContainerSnapshot::new(models::ContainerInspectResponse {
            id: Some(id.to_owned()),
            ..models::ContainerInspectResponse::default()
        })
    }

    pub(crate) fn new(inspect: models::ContainerInspectResponse) -> ContainerSnapshot {
        ContainerSnapshot { inspect }
    }

    #[allow(dead_code, reason = "the recreate spec reads the raw inspect data")]
    pub(crate) fn inspect(&self) -> &models::ContainerInspectResponse {
        &self.inspect
    }

    /// The replacement is created from `reference` instead of the old container's image
    /// reference (a version move: `app:1.2.3` → `app:1.2.10`).
    pub fn set_image(&mut self, reference: &str) {
        self.inspect
            .config
            .get_or_insert_with(Default::default)
            .image = Some(reference.to_owned());
    }

    /// The image reference the replacement is created from, when [`Self::set_image`] set one
    /// on a snapshot that records only an ID.
    #[cfg(test)]
    pub(crate) fn image_override(&self) -> Option<&str> {
        self.inspect.config.as_ref()?.image.as_deref()
    }

    /// The facts this snapshot records.
    #[must_use]
    pub fn facts(&self) -> ContainerFacts {
        container_facts(&self.inspect)
    }
}

/// The defaults an image contributes to a container's config (what `docker inspect IMAGE`
/// shows under `Config`). Empty values mean "the image sets nothing".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ImageDefaults {
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub healthcheck: Option<Healthcheck>,
    pub working_dir: String,
    pub user: String,
    /// `80/tcp`-style keys, sorted.
    pub exposed_ports: Vec<String>,
    /// Mount points, sorted.
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
}

/// A healthcheck definition. Durations are nanoseconds; 0 means "inherit / Docker's default".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Healthcheck {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]`, or `["NONE"]` (disabled).
    pub test: Vec<String>,
    pub interval_ns: i64,
    pub timeout_ns: i64,
    pub start_period_ns: i64,
    pub start_interval_ns: i64,
    pub retries: i64,
}

impl Healthcheck {
    /// True when the test actually checks something (not empty, not `NONE`).
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.test.first().is_some_and(|t| t != "NONE")
    }
}

/// What the updater needs to know about a local image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageFacts {
    /// `sha256:…`: the config digest (classic store) or the manifest/index digest (containerd).
    pub id: String,
    pub repo_tags: Vec<String>,
    /// `repo@sha256:…` entries; on the classic store possibly several per repository, in no
    /// particular order.
    pub repo_digests: Vec<String>,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    /// RFC 3339 build time (set by the publisher; never use it as a clock).
    pub created: Option<String>,
    pub config: ImageDefaults,
}

impl ImageFacts {
    /// `os/arch[/variant]`, the form the pull `platform` parameter takes.
    #[must_use]
    pub fn platform(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// What a non-forced image removal did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ImageRemoval {
    /// Untagged and/or deleted.
    Removed,
    /// Kept because a container uses it or other references point at it (HTTP 409); benign.
    InUse { message: String },
    /// It was already gone.
    NotFound,
}

fn sorted_labels(labels: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    labels
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn non_empty(value: Option<&String>) -> Option<String> {
    value.filter(|v| !v.is_empty()).cloned()
}

fn sorted(values: Option<&Vec<String>>) -> Vec<String> {
    let mut values = values.cloned().unwrap_or_default();
    values.sort();
    values
}

/// `/web-1` → `web-1`.
pub(crate) fn strip_slash(name: &str) -> String {
    name.strip_prefix('/').unwrap_or(name).to_owned()
}

pub(crate) fn engine_info(
    version: &models::SystemVersion,
    info: &models::SystemInfo,
    client_api_version: String,
) -> EngineInfo {
    let driver = info.driver.clone().unwrap_or_default();
    let driver_type_is_containerd = info.driver_status.as_ref().is_some_and(|rows| {
        rows.iter().any(|row| {
            row.len() == 2 && row[0] == "driver-type" && row[1] == CONTAINERD_SNAPSHOTTER
        })
    });
    // Older containerd-store daemons did not report `driver-type`; their drivers carry
    // snapshotter names that the classic graph drivers never use.
    let snapshotter_name = info.driver_status.as_ref().is_none_or(Vec::is_empty)
        && matches!(driver.as_str(), "overlayfs" | "stargz" | "native");
    EngineInfo {
        server_version: info
            .server_version
            .clone()
            .or_else(|| version.version.clone())
            .unwrap_or_default(),
        api_version: version.api_version.clone().unwrap_or_default(),
        client_api_version,
        os: version
            .os
            .clone()
            .or_else(|| info.os_type.clone())
            .unwrap_or_default(),
        arch: version.arch.clone().unwrap_or_default(),
        driver,
        containerd_image_store: driver_type_is_containerd || snapshotter_name,
    }
}

fn summary_status(state: Option<models::ContainerSummaryStateEnum>) -> ContainerStatus {
    use models::ContainerSummaryStateEnum as S;
    match state {
        Some(S::CREATED) => ContainerStatus::Created,
        Some(S::RUNNING) => ContainerStatus::Running,
        Some(S::PAUSED) => ContainerStatus::Paused,
        Some(S::RESTARTING) => ContainerStatus::Restarting,
        Some(S::REMOVING) => ContainerStatus::Removing,
        Some(S::STOPPING) => ContainerStatus::Stopping,
        Some(S::EXITED) => ContainerStatus::Exited,
        Some(S::DEAD) => ContainerStatus::Dead,
        Some(S::EMPTY) | None => ContainerStatus::Unknown,
    }
}

fn inspect_status(state: Option<models::ContainerStateStatusEnum>) -> ContainerStatus {
    use models::ContainerStateStatusEnum as S;
    match state {
        Some(S::CREATED) => ContainerStatus::Created,
        Some(S::RUNNING) => ContainerStatus::Running,
        Some(S::PAUSED) => ContainerStatus::Paused,
        Some(S::RESTARTING) => ContainerStatus::Restarting,
        Some(S::REMOVING) => ContainerStatus::Removing,
        Some(S::STOPPING) => ContainerStatus::Stopping,
        Some(S::EXITED) => ContainerStatus::Exited,
        Some(S::DEAD) => ContainerStatus::Dead,
        Some(S::EMPTY) | None => ContainerStatus::Unknown,
    }
}

pub(crate) fn container_summary(m: &models::ContainerSummary) -> ContainerSummary {
    // Legacy links add names like `/other/alias`; the container's own name has one slash.
    let names = m.names.as_deref().unwrap_or_default();
    let name = names
        .iter()
        .map(|n| strip_slash(n))
        .find(|n| !n.contains('/'))
        .or_else(|| names.first().map(|n| strip_slash(n)))
        .unwrap_or_default();
    ContainerSummary {
        id: m.id.clone().unwrap_or_default(),
        name,
        image: m.image.clone().unwrap_or_default(),
        image_id: m.image_id.clone().unwrap_or_default(),
        labels: sorted_labels(m.labels.as_ref()),
        state: summary_status(m.state),
    }
}

fn health_status(state: Option<&models::ContainerState>) -> Option<HealthStatus> {
    use models::HealthStatusEnum as H;
    match state?.health.as_ref()?.status? {
        H::STARTING => Some(HealthStatus::Starting),
        H::HEALTHY => Some(HealthStatus::Healthy),
        H::UNHEALTHY => Some(HealthStatus::Unhealthy),
        H::NONE | H::EMPTY => None,
    }
}

fn platform_string(p: &models::OciPlatform) -> Option<String> {
    let os = non_empty(p.os.as_ref())?;
    let arch = non_empty(p.architecture.as_ref())?;
    Some(match non_empty(p.variant.as_ref()) {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    })
}

pub(crate) fn container_facts(m: &models::ContainerInspectResponse) -> ContainerFacts {
    let state = m.state.as_ref();
    let config = m.config.as_ref();
    let host = m.host_config.as_ref();
    let healthcheck = config.and_then(|c| c.healthcheck.as_ref()).map(healthcheck);
    let mut networks: Vec<String> = m
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    ContainerFacts {
        id: m.id.clone().unwrap_or_default(),
        name: strip_slash(m.name.as_deref().unwrap_or_default()),
        image_id: m.image.clone().unwrap_or_default(),
        config_image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
        labels: sorted_labels(config.and_then(|c| c.labels.as_ref())),
        status: inspect_status(state.and_then(|s| s.status)),
        running: state.and_then(|s| s.running).unwrap_or(false),
        exit_code: state.and_then(|s| s.exit_code).unwrap_or(0),
        restart_count: m.restart_count.unwrap_or(0),
        started_at: non_empty(state.and_then(|s| s.started_at.as_ref()))
            .filter(|t| !t.starts_with("0001-01-01")),
        health: health_status(state),
        has_healthcheck: healthcheck.as_ref().is_some_and(Healthcheck::is_enabled),
        network_mode: m
            .host_config
            .as_ref()
            .and_then(|h| h.network_mode.clone())
            .unwrap_or_default(),
        pid_mode: host.and_then(|h| h.pid_mode.clone()).unwrap_or_default(),
        ipc_mode: host.and_then(|h| h.ipc_mode.clone()).unwrap_or_default(),
        volumes_from: host
            .and_then(|h| h.volumes_from.clone())
            .unwrap_or_default(),
        networks,
        platform: non_empty(m.platform.as_ref()),
        image_platform: m
            .image_manifest_descriptor
            .as_ref()
            .and_then(|d| d.platform.as_ref())
            .and_then(platform_string),
        image_manifest_digest: non_empty(
            m.image_manifest_descriptor
                .as_ref()
                .and_then(|d| d.digest.as_ref()),
        ),
        stop_timeout: config.and_then(|c| c.stop_timeout),
        created: m.created.clone().unwrap_or_default(),
    }
}

fn healthcheck(h: &models::HealthConfig) -> Healthcheck {
    Healthcheck {
        test: h.test.clone().unwrap_or_default(),
        interval_ns: h.interval.unwrap_or(0),
        timeout_ns: h.timeout.unwrap_or(0),
        start_period_ns: h.start_period.unwrap_or(0),
        start_interval_ns: h.start_interval.unwrap_or(0),
        retries: h.retries.unwrap_or(0),
    }
}

fn image_defaults(c: &models::ImageConfig) -> ImageDefaults {
    ImageDefaults {
        env: c.env.clone().unwrap_or_default(),
        cmd: c.cmd.clone().unwrap_or_default(),
        entrypoint: c.entrypoint.clone().unwrap_or_default(),
        labels: sorted_labels(c.labels.as_ref()),
        healthcheck: c.healthcheck.as_ref().map(healthcheck),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        user: c.user.clone().unwrap_or_default(),
        exposed_ports: sorted(c.exposed_ports.as_ref()),
        volumes: sorted(c.volumes.as_ref()),
        stop_signal: non_empty(c.stop_signal.as_ref()),
    }
}

pub(crate) fn image_facts(m: &models::ImageInspect) -> ImageFacts {
    ImageFacts {
        id: m.id.clone().unwrap_or_default(),
        repo_tags: m.repo_tags.clone().unwrap_or_default(),
        repo_digests: m.repo_digests.clone().unwrap_or_default(),
        os: m.os.clone().unwrap_or_default(),
        architecture: m.architecture.clone().unwrap_or_default(),
        variant: non_empty(m.variant.as_ref()),
        created: non_empty(m.created.as_ref()),
        config: m.config.as_ref().map(image_defaults).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_json::from_str(text).expect("fixture parses as the bollard model")
    }

    const COMPOSE_HEALTHY: &str = include_str!("testdata/inspect_compose_healthcheck.json");
    const PLAIN_EXITED: &str = include_str!("testdata/inspect_plain_exited.json");

    #[test]
    fn compose_container_with_healthcheck_becomes_facts() {
        let facts = container_facts(&fixture(COMPOSE_HEALTHY));
        assert_eq!(facts.name, "shop-web-1");
        assert_eq!(
            facts.image_id,
            "sha256:9a1c1b7a4e2f0c3d5b6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4"
        );
        assert_eq!(facts.config_image, "127.0.0.1:15001/pptb/app:stable");
        assert_eq!(facts.status, ContainerStatus::Running);
        assert!(facts.running);
        assert_eq!(facts.health, Some(HealthStatus::Healthy));
        assert!(facts.has_healthcheck);
        assert_eq!(facts.restart_count, 0);
        assert_eq!(facts.network_mode, "shop_default");
        assert_eq!(facts.networks, ["backend", "shop_default"]);
        assert_eq!(facts.labels[COMPOSE_PROJECT_LABEL], "shop");
        assert_eq!(facts.labels["com.docker.compose.service"], "web");
        assert_eq!(facts.labels["com.docker.compose.oneoff"], "False");
        assert_eq!(
            facts.labels["com.docker.compose.depends_on"],
            "db:service_healthy:false"
        );
        assert_eq!(facts.platform.as_deref(), Some("linux"));
        assert_eq!(facts.image_platform.as_deref(), Some("linux/arm64/v8"));
        assert_eq!(
            facts.image_manifest_digest.as_deref(),
            Some("sha256:77aa0b1c2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccdd")
        );
        assert_eq!(facts.stop_timeout, Some(30));
        assert_eq!(
            facts.started_at.as_deref(),
            Some("2025-11-20T10:00:05.123456789Z")
        );
    }

    #[test]
    fn exited_container_without_healthcheck_has_no_health() {
        let facts = container_facts(&fixture(PLAIN_EXITED));
        assert_eq!(facts.name, "tool");
        assert_eq!(facts.status, ContainerStatus::Exited);
        assert!(!facts.running);
        assert_eq!(facts.exit_code, 137);
        assert_eq!(facts.restart_count, 2);
        assert_eq!(facts.health, None);
        assert!(!facts.has_healthcheck);
        assert_eq!(facts.network_mode, "container:0b5c2f4a1d3e");
        assert!(facts.networks.is_empty());
        assert_eq!(facts.image_platform, None);
        assert_eq!(facts.image_manifest_digest, None);
        assert_eq!(facts.stop_timeout, None);
        assert!(facts.labels.is_empty());
    }

    #[test]
    fn shares_with_names_every_namespace_and_volumes_by_id_or_name() {
        let facts = container_facts(&fixture(include_str!(
            "testdata/inspect_pid_ipc_volumes_follower.json"
        )));
        let db = "7d3a9c1e5b2f4d6a8c0e1f3a5b7d9c1e3f5a7b9d1c3e5f7a9b1d3c5e7f9a1b3c";
        assert_eq!(
            facts.shares_with(db, Some("shop-db-1")),
            [Sharing::Pid, Sharing::Ipc, Sharing::Volumes]
        );
        assert_eq!(
            facts.shares_with(&"e".repeat(64), Some("shop-logs-1")),
            [Sharing::Volumes]
        );
        assert!(facts.shares_with(&"e".repeat(64), None).is_empty());
        let follower = container_facts(&fixture(include_str!(
            "testdata/inspect_netns_follower.json"
        )));
        assert_eq!(
            follower.shares_with(
                "ec8386ddbd509fbd9a796d114c6d12689eb4824afb157fe95986edf16f34104a",
                None
            ),
            [Sharing::Network]
        );
    }

    #[test]
    fn container_references_match_full_ids_names_and_short_ids_only() {
        let id = "dbad1e5b2f4d6a8c0e1f3a5b7d9c1e3f5a7b9d1c3e5f7a9b1d3c5e7f9a1b3c4d";
        assert!(names_container(id, id, None));
        assert!(names_container(&id[..12], id, None));
        assert!(names_container("/web", id, Some("web")));
        assert!(
            !names_container("db", id, Some("web")),
            "`db` is a name, even though the ID starts with it"
        );
        assert!(!names_container("", id, Some("")));
        assert_eq!(volumes_from_source("web:ro"), "web");
        assert_eq!(volumes_from_source("web"), "web");
    }

    #[test]
    fn disabled_healthcheck_counts_as_none() {
        let mut inspect: models::ContainerInspectResponse = fixture(PLAIN_EXITED);
        inspect.config.as_mut().expect("config").healthcheck = Some(models::HealthConfig {
            test: Some(vec!["NONE".to_owned()]),
            ..Default::default()
        });
        assert!(!container_facts(&inspect).has_healthcheck);
    }

    #[test]
    fn snapshot_round_trips_through_json_and_keeps_its_facts() {
        let snapshot = ContainerSnapshot::new(fixture(COMPOSE_HEALTHY));
        let journaled = serde_json::to_string(&snapshot).expect("serialises");
        let back: ContainerSnapshot = serde_json::from_str(&journaled).expect("deserialises");
        // Compared as JSON values: maps (ports, volumes) have no order.
        assert_eq!(
            serde_json::to_value(&back).expect("value"),
            serde_json::to_value(&snapshot).expect("value")
        );
        assert_eq!(back.facts(), container_facts(&fixture(COMPOSE_HEALTHY)));
        // The journal holds Docker's own field names, so it reads like `docker inspect`.
        let value: serde_json::Value = serde_json::from_str(&journaled).expect("json");
        assert_eq!(value["Name"], "/shop-web-1");
        assert_eq!(value["HostConfig"]["NetworkMode"], "shop_default");
    }

    #[test]
    fn classic_info_is_not_containerd() {
        let version: models::SystemVersion = fixture(include_str!("testdata/version_20_10.json"));
        let info: models::SystemInfo = fixture(include_str!("testdata/info_classic.json"));
        let engine = engine_info(&version, &info, "1.41".to_owned());
        assert_eq!(
            engine,
            EngineInfo {
                server_version: "20.10.24+dfsg1".to_owned(),
                api_version: "1.41".to_owned(),
                client_api_version: "1.41".to_owned(),
                os: "linux".to_owned(),
                arch: "amd64".to_owned(),
                driver: "overlay2".to_owned(),
                containerd_image_store: false,
            }
        );
    }

    #[test]
    fn containerd_snapshotter_info_is_detected() {
        let version: models::SystemVersion = fixture(include_str!("testdata/version_28_5.json"));
        let info: models::SystemInfo = fixture(include_str!("testdata/info_containerd.json"));
        let engine = engine_info(&version, &info, "1.51".to_owned());
        assert!(engine.containerd_image_store);
        assert_eq!(engine.driver, "overlayfs");
        assert_eq!(engine.server_version, "28.5.1");
        assert_eq!(engine.api_version, "1.51");
    }

    #[test]
    fn snapshotter_driver_without_driver_status_is_containerd() {
        let version: models::SystemVersion = fixture(include_str!("testdata/version_28_5.json"));
        let mut info: models::SystemInfo = fixture(include_str!("testdata/info_containerd.json"));
        info.driver_status = None;
        assert!(engine_info(&version, &info, "1.51".to_owned()).containerd_image_store);
        info.driver = Some("overlay2".to_owned());
        assert!(!engine_info(&version, &info, "1.51".to_owned()).containerd_image_store);
    }

    #[test]
    fn image_inspect_becomes_facts_with_sorted_defaults() {
        let image: models::ImageInspect = fixture(include_str!("testdata/image_app.json"));
        let facts = image_facts(&image);
        assert_eq!(facts.repo_tags, ["127.0.0.1:15001/pptb/app:stable"]);
        assert_eq!(facts.repo_digests.len(), 2);
        assert_eq!(facts.platform(), "linux/arm64/v8");
        let config = &facts.config;
        assert_eq!(config.env, ["PATH=/bin", "APP_VERSION=1"]);
        assert_eq!(config.cmd, ["/bin/app", "--serve"]);
        assert!(config.entrypoint.is_empty());
        assert_eq!(config.labels["org.opencontainers.image.version"], "1");
        assert_eq!(config.working_dir, "/srv");
        assert_eq!(config.user, "1000");
        assert_eq!(config.exposed_ports, ["443/tcp", "8080/tcp"]);
        assert_eq!(config.volumes, ["/data"]);
        assert_eq!(config.stop_signal.as_deref(), Some("SIGQUIT"));
        let health = config.healthcheck.as_ref().expect("healthcheck");
        assert_eq!(health.test, ["CMD-SHELL", "test -f /srv/ok"]);
        assert_eq!(health.interval_ns, 2_000_000_000);
        assert_eq!(health.retries, 3);
    }

    #[test]
    fn summary_takes_the_own_name_not_a_link_alias() {
        let summary: models::ContainerSummary = fixture(
            r#"{"Id":"abc","Names":["/web/db-alias","/db"],"Image":"postgres:16",
                "ImageID":"sha256:1","Labels":{"a":"b"},"State":"running","Status":"Up 2 hours"}"#,
        );
        let ours = container_summary(&summary);
        assert_eq!(ours.name, "db");
        assert_eq!(ours.state, ContainerStatus::Running);
        assert_eq!(ours.image, "postgres:16");
        assert_eq!(ours.labels["a"], "b");
    }
}
