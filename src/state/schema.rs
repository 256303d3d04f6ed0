//! The state file format (`state.json`), version 1. Pure data; no I/O.
//!
//! Containers are keyed by [`container_key`]: `<project>/<service>` for compose services (stable
//! across recreations), `container/<name>` otherwise. Blocked digests are keyed by repository
//! (`registry/path`), because a digest that failed the health gate is bad for every container of
//! that repository.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::reference::Digest;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    #[serde(default)]
    pub containers: BTreeMap<String, ContainerState>,
    /// repository name → digest → why it is blocked.
    #[serde(default)]
    pub blocked: BTreeMap<String, BTreeMap<Digest, Blocked>>,
    /// Updates in flight: written before a container is touched, removed when it is finished
    /// or undone. Whatever is here at the start of a run is healed first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<JournalEntry>,
    /// Totals across runs, for the metrics file.
    #[serde(default)]
    pub counters: Counters,
    /// `pullpilot pause` without a service: no update starts anywhere while it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_all: Option<Pause>,
    /// The OCI labels of candidate images, read once per digest from the registry (only the
    /// candidates of the last pass are kept).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub image_labels: BTreeMap<Digest, ImageLabels>,
}

/// The labels of an image that say what it is (`org.opencontainers.image.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageLabels {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A pause: no update starts while it holds (checks, soak clocks and notifications go on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    #[serde(with = "rfc3339")]
    pub since: SystemTime,
    /// When it ends by itself; `None` until `pullpilot resume`.
    #[serde(default, with = "rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub until: Option<SystemTime>,
}

impl Pause {
    /// Whether it still holds at `now`.
    pub fn holds(&self, now: SystemTime) -> bool {
        self.until.is_none_or(|until| until > now)
    }
}

/// `pullpilot approve`: the digest the operator let through (digest-exact).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub digest: Digest,
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
}

/// Outcome totals since the state file was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counters {
    pub updates: u64,
    pub rollbacks: u64,
    pub failures: u64,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: SCHEMA_VERSION,
            containers: BTreeMap::new(),
            blocked: BTreeMap::new(),
            journal: Vec::new(),
            counters: Counters::default(),
            pause_all: None,
            image_labels: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerState {
    /// The digest waiting out its soak window, and when it was first seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<Candidate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<Pin>,
    /// Updates applied or rolled back, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// Digests already announced (soak entered / update available), so each is sent once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notified: Vec<Digest>,
    /// Newer version tags already announced as held back by the track level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notified_versions: Vec<String>,
    /// `pullpilot pause SERVICE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Pause>,
    /// `pullpilot approve SERVICE`: the approved digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// Digests already announced as waiting for approval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notified_approval: Vec<Digest>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    pub digest: Digest,
    /// The tag the candidate is (a newer version tag); `None` for a new digest of the
    /// container's own tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(with = "rfc3339")]
    pub first_seen: SystemTime,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    pub digest: Digest,
    #[serde(with = "rfc3339")]
    pub since: SystemTime,
    #[serde(default)]
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blocked {
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
    pub reason: String,
    /// The container whose update failed with this digest.
    pub container: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
    pub digest: Digest,
    pub image_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_digest: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_image_id: Option<String>,
    /// `updated`, `rolled-back`, `manual-rollback`.
    pub outcome: String,
    /// The tag moved to, when the update changed the tag (a version move).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The tag before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_tag: Option<String>,
}

/// How far an in-flight update got. Each step is recorded before the next one starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Nothing touched yet beyond pulling the new image.
    Intent,
    /// The replacement exists under `temp_name`.
    Created,
    /// The old container was stopped.
    OldStopped,
    /// The old container carries `old_name_aside`.
    OldRenamed,
    /// The replacement carries the original name.
    NewRenamed,
    /// The replacement was started; the health gate has not passed yet.
    Started,
    /// The health gate passed; only cleanup remains.
    Passed,
}

/// One in-flight update, enough to finish or undo it after a crash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalEntry {
    pub key: String,
    /// The container's name before the update (and after it).
    pub name: String,
    pub old_id: String,
    pub old_image_id: String,
    pub new_image_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_id: Option<String>,
    /// Name of the replacement until the swap.
    pub temp_name: String,
    /// Name of the old container after the swap, until it is removed.
    pub old_name_aside: String,
    /// Repository name (`registry/path`) and tag the container follows.
    pub repository: String,
    pub tag: String,
    pub digest: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_digest: Option<Digest>,
    pub was_running: bool,
    pub phase: Phase,
    #[serde(with = "rfc3339")]
    pub started_at: SystemTime,
    /// Containers sharing this one's network namespace (`network_mode: service:<it>`), which
    /// are recreated to follow the replacement. Their image does not change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub followers: Vec<JournalEntry>,
    /// Set when compose carries out the recreate: the project and the services its `up` moves.
    /// Such an update has no temporary names and no followers of its own: compose recreates
    /// the old container away, and rollback is the tag back plus the same compose step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<ComposeStep>,
    /// Set when the update moves the container to another tag: the file edit that goes with
    /// it. `tag` above is the new tag; rollback writes `from` back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retag: Option<Retag>,
}

/// A version move's edit of the operator's compose file (or env file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retag {
    /// The tag before the update.
    pub from: String,
    /// The file that sets the image, and the variable when it is an env file.
    pub file: std::path::PathBuf,
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub var: Option<String>,
}

/// An update carried out by compose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeStep {
    pub project: String,
    pub working_dir: std::path::PathBuf,
    pub config_files: Vec<std::path::PathBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_files: Vec<std::path::PathBuf>,
    /// The updated service first, then the services that move with it.
    pub services: Vec<String>,
}

/// The stable key of a container in state.
pub fn container_key(project: Option<&str>, service: Option<&str>, name: &str) -> String {
    match (project, service) {
        (Some(project), Some(service)) => format!("{project}/{service}"),
        _ => format!("container/{name}"),
    }
}

/// Optional RFC 3339 timestamps.
mod rfc3339_opt {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option, reason = "serde's `with` passes a reference")]
    pub(super) fn serialize<S: Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| humantime::parse_rfc3339_weak(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// RFC 3339 timestamps (UTC, seconds) via humantime.
mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn round_trips_and_rejects_unknown_fields() {
        let d = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        let mut state = State::default();
        state.containers.insert(
            "shop/web".into(),
            ContainerState {
                candidate: Some(Candidate {
                    tag: None,
                    digest: d.clone(),
                    first_seen: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                }),
                ..ContainerState::default()
            },
        );
        let text = serde_json::to_string_pretty(&state).unwrap();
        assert!(text.contains("2023-11-14T22:13:20Z"), "{text}");
        let back: State = serde_json::from_str(&text).unwrap();
        assert_eq!(back, state);
        let typo = text.replace("\"candidate\"", "\"candidat\"");
        assert!(serde_json::from_str::<State>(&typo).is_err());
    }

    #[test]
    fn keys_compose_services_by_project_and_service() {
        assert_eq!(
            container_key(Some("shop"), Some("web"), "shop-web-1"),
            "shop/web"
        );
        assert_eq!(container_key(None, None, "adhoc"), "container/adhoc");
    }
}
