//! Observe and decide: the read-only half of a pass, shared by `plan` and `apply`.
//!
//! Containers in scope → the references that need a registry check (deduplicated) → one
//! parallel round of manifest HEADs → for a container whose tag now names another digest, the
//! platform check (is the tag's image for its platform still the one it runs?) → [`decide`]
//! for each container.
//!
//! The platform check costs nothing on the common "up to date" path: it runs only when the
//! digest differs, and then reads the index (one `GET`, plus one of the platform manifest on the
//! classic store, where only the config digest is known locally). It never pulls.
//!
//! Containers that follow versions (`io.pullpilot.track`) cost more, and only they: one tag
//! listing per repository, then one HEAD per newer tag chosen (see `versions`).

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use super::discover::Discovered;
use super::versions::{self, VersionFacts};
use crate::decide::{self, Decision, Observed, Remote};
use crate::labels::IgnoredLabel;
use crate::reference::{Digest, ImageRef};
use crate::registry::{PlatformDigest, RegistryClient, RemoteDigest, RepoTag};
use crate::state::State;

/// One container with its decision.
#[derive(Clone, Debug)]
pub struct Evaluated {
    pub container: Discovered,
    pub reference: Option<ImageRef>,
    pub available: Option<Digest>,
    /// The platform check, when the tag's digest differed from what the container runs.
    pub platform_check: Option<PlatformCheck>,
    /// What the version track found, for a container that follows versions.
    pub version: Option<VersionFacts>,
    /// What the candidate changes, from the images' OCI labels (see `changes`).
    pub changes: Option<crate::labels::Changes>,
    pub decision: Decision,
}

/// What the platform check compared: the container's image for its platform against the
/// tag's image for that platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlatformCheck {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// `manifest` (containerd image store: the platform manifest digest) or `config` (classic
    /// store: the config digest, which is the image ID).
    pub compared: &'static str,
    /// What the container runs.
    pub local: Digest,
    /// What the tag offers for the platform; `None` when the check failed.
    pub remote: Option<Digest>,
    /// The tag's image for this platform is the one the container runs.
    pub same: bool,
    /// Why the check could not answer (the whole digests are compared instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Settings the decision reads.
#[derive(Clone, Copy, Debug)]
pub struct CheckKnobs<'a> {
    pub default_soak: std::time::Duration,
    /// `PP_TRACK`.
    pub default_track: &'a crate::version::Track,
    /// `PP_WINDOW`.
    pub default_window: Option<&'a crate::time::Windows>,
    /// `PP_APPROVE=manual`.
    pub approve_manual: bool,
    /// `PP_TIMEZONE`.
    pub timezone: &'a jiff::tz::TimeZone,
    pub self_update: bool,
}

/// Checks every container that needs it and decides for all of them.
pub fn evaluate(
    containers: Vec<Discovered>,
    registry: &RegistryClient,
    state: &State,
    knobs: CheckKnobs<'_>,
    now: SystemTime,
) -> Vec<Evaluated> {
    let ctx = decide::Context {
        now,
        default_soak: knobs.default_soak,
        default_track: knobs.default_track,
        default_window: knobs.default_window,
        approve_manual: knobs.approve_manual,
        timezone: knobs.timezone,
        self_update: knobs.self_update,
        state,
    };
    let targets: Vec<Option<ImageRef>> = containers
        .iter()
        .map(|c| decide::registry_target(&c.observed, &ctx).ok())
        .collect();
    let repo_tags: Vec<RepoTag> = targets.iter().flatten().map(repo_tag).collect();
    let results = registry.check_all(&repo_tags);
    for (item, result) in &results {
        if let Ok(remote) = result
            && let Some(limit) = &remote.rate_limit
        {
            log::info!("Docker Hub rate limit for {}: {limit}.", item.host);
        }
    }
    let mut found = versions::find(registry, &containers, &targets, &ctx);
    // Replicas of a service share one platform check.
    let mut platform_cache = BTreeMap::new();
    containers
        .into_iter()
        .zip(targets)
        .enumerate()
        .map(|(i, (container, target))| {
            let (version, newer) = found.remove(&i).unzip();
            let mut platform_check = None;
            let remote = target.as_ref().and_then(|r| {
                let item = repo_tag(r);
                results.get(&item).map(|result| match result {
                    Ok(remote) => {
                        platform_check = check_platform(
                            registry,
                            &mut platform_cache,
                            &item,
                            remote,
                            &container.observed,
                        );
                        judge(&remote.digest, platform_check.as_ref())
                    }
                    Err(e) => Remote::Error {
                        kind: e.kind().to_string(),
                        message: e.to_string(),
                    },
                })
            });
            let decision = decide::decide_with(
                &container.observed,
                remote.as_ref(),
                newer.flatten().as_ref(),
                &ctx,
            );
            let available = match &remote {
                Some(Remote::Digest(d) | Remote::PlatformUnchanged { index: d }) => Some(d.clone()),
                _ => None,
            };
            let reference = ImageRef::parse(&container.observed.config_image).ok();
            Evaluated {
                container,
                reference,
                available,
                platform_check,
                version,
                changes: None,
                decision,
            }
        })
        .collect()
}

/// What the decision gets from the registry's digest and the platform check. On the containerd
/// store a failed check is a failed check: the whole digest (the index) would restart the
/// container for nothing whenever only another platform changed. On the classic store the
/// whole digest is safe: the pull finds the image it runs and nothing is recreated.
fn judge(digest: &Digest, check: Option<&PlatformCheck>) -> Remote {
    match check {
        Some(check) if check.same => Remote::PlatformUnchanged {
            index: digest.clone(),
        },
        Some(PlatformCheck {
            compared: "manifest",
            error: Some(error),
            platform,
            ..
        }) => Remote::Error {
            kind: "platform-check".into(),
            message: format!(
                "the tag's index changed to {}, but its {platform} image could not be read \
                 ({error}); nothing is done until it can",
                digest.short()
            ),
        },
        _ => Remote::Digest(digest.clone()),
    }
}

/// The index media types: only these can hold the container's image under a new digest.
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

type PlatformCache = BTreeMap<(RepoTag, Digest, String, bool), Result<PlatformDigest, String>>;

/// The platform check for a container whose tag names `remote`: only when that digest is not
/// one the container already has, and only when the engine said what the container runs.
/// A tag naming a single-platform manifest costs no request: on containerd its digest is
/// compared as is, on the classic store it is not checked (a re-pushed identical image is
/// caught after the pull, which finds the image it already runs).
fn check_platform(
    registry: &RegistryClient,
    cache: &mut PlatformCache,
    item: &RepoTag,
    remote: &RemoteDigest,
    observed: &Observed,
) -> Option<PlatformCheck> {
    if observed.local_digests.is_empty() || observed.local_digests.contains(&remote.digest) {
        return None;
    }
    let running = observed.running.as_ref()?;
    let (compared, local) = match (&running.manifest, &running.config) {
        (Some(manifest), _) => ("manifest", manifest),
        (None, Some(config)) => ("config", config),
        (None, None) => return None,
    };
    let mut check = PlatformCheck {
        platform: running.platform.clone(),
        compared,
        local: local.clone(),
        remote: None,
        same: false,
        error: None,
    };
    let is_index = remote
        .media_type
        .as_deref()
        .is_none_or(|t| INDEX_TYPES.contains(&t));
    if !is_index {
        if compared == "config" {
            return None;
        }
        // The tag names one manifest: compare it as is (it may be the very one it runs).
        check.same = &remote.digest == local;
        check.remote = Some(remote.digest.clone());
        return Some(check);
    }
    let want_config = compared == "config";
    let key = (
        item.clone(),
        remote.digest.clone(),
        running.platform.clone(),
        want_config,
    );
    let found = cache.entry(key).or_insert_with(|| {
        registry
            .platform_digest(item, &remote.digest, &running.platform, want_config)
            .map_err(|e| e.to_string())
    });
    match found.clone() {
        Ok(found) => {
            let theirs = if compared == "manifest" {
                Some(found.manifest)
            } else {
                found.config
            };
            check.same = theirs.as_ref() == Some(local);
            check.remote = theirs;
        }
        Err(e) => {
            log::info!(
                "{}: could not compare the {} image of {item} ({e}); comparing whole digests.",
                observed.name,
                running.platform
            );
            check.error = Some(e);
        }
    }
    if check.same {
        log::info!(
            "{}: the index of {item} changed, its {} image did not ({}).",
            observed.name,
            running.platform,
            local.short()
        );
    }
    Some(check)
}

/// What the registry is asked about `reference`: its API host, repository and tag.
pub fn repo_tag(reference: &ImageRef) -> RepoTag {
    RepoTag {
        host: reference.api_host().to_string(),
        repository: reference.repository().to_string(),
        tag: reference.tag().unwrap_or("latest").to_string(),
    }
}

/// The machine-readable form of one evaluated container.
#[derive(Debug, Serialize)]
pub struct Row<'a> {
    pub container: &'a str,
    pub service: Option<&'a str>,
    pub project: Option<&'a str>,
    pub image: &'a str,
    pub running: bool,
    pub current_digest: Option<&'a Digest>,
    pub local_digests: &'a [Digest],
    pub available_digest: Option<&'a Digest>,
    /// What the platform check compared, when the tag's digest was new to the container.
    pub platform_check: Option<&'a PlatformCheck>,
    #[serde(flatten)]
    pub decision: &'a Decision,
    pub summary: &'static str,
    pub reason: String,
    /// Policy labels on the container that were not read (copied from the image), and why.
    pub ignored_labels: &'a [IgnoredLabel],
    /// For a container that follows versions: its track, tags and candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'a VersionFacts>,
    /// What the candidate changes (OCI version, revision, source, link), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<&'a crate::labels::Changes>,
}

impl Evaluated {
    /// Why, in a sentence fragment: the decision's, or that only the index changed.
    pub fn reason(&self, now: SystemTime) -> String {
        match (&self.decision, &self.platform_check) {
            (Decision::UpToDate, Some(check)) if check.same => format!(
                "index changed, your platform's image did not ({} {} {} is the one it runs)",
                check.platform,
                check.compared,
                check.local.short()
            ),
            _ => self.decision.reason(now),
        }
    }

    pub fn row(&self, now: SystemTime) -> Row<'_> {
        let c = &self.container;
        Row {
            container: &c.name,
            service: c.service.as_deref(),
            project: c.project.as_deref(),
            image: &c.observed.config_image,
            running: c.running,
            current_digest: c.observed.local_digests.first(),
            local_digests: &c.observed.local_digests,
            available_digest: self.available.as_ref(),
            platform_check: self.platform_check.as_ref(),
            decision: &self.decision,
            summary: self.decision.word(),
            reason: self.reason(now),
            ignored_labels: &c.observed.labels.ignored,
            version: self.version.as_ref(),
            changes: self.changes.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::RunningImage;
    use crate::labels;
    use crate::registry::RegistryOptions;

    fn digest(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn observed(running: Option<RunningImage>) -> Observed {
        Observed {
            key: "shop/web".into(),
            name: "shop-web-1".into(),
            config_image: "127.0.0.1:9/web:1".into(),
            local_digests: vec![digest('a')],
            running,
            dangling: false,
            labels: labels::parse(&BTreeMap::new(), false),
            is_self: false,
        }
    }

    fn remote(d: Digest, media_type: &str) -> RemoteDigest {
        RemoteDigest {
            digest: d,
            media_type: Some(media_type.into()),
            from_get_fallback: false,
            rate_limit: None,
        }
    }

    /// A client whose every request would fail: the cases below must not make one.
    fn offline_client() -> RegistryClient {
        // A Docker config directory that does not exist.
        let tmp = tempfile::Builder::new()
            .prefix("pp-eval-")
            .tempdir()
            .unwrap();
        RegistryClient::new(RegistryOptions {
            docker_config_dir: Some(tmp.path().join("docker")),
            retries: 0,
            ..RegistryOptions::default()
        })
        .unwrap()
    }

    const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

    #[test]
    fn single_manifests_and_known_digests_cost_no_request() {
        let client = offline_client();
        let mut cache = PlatformCache::new();
        let item = RepoTag {
            host: "127.0.0.1:9".into(),
            repository: "web".into(),
            tag: "1".into(),
        };
        let containerd = Some(RunningImage {
            platform: "linux/amd64".into(),
            manifest: Some(digest('d')),
            config: None,
        });
        let classic = Some(RunningImage {
            platform: "linux/amd64".into(),
            manifest: None,
            config: Some(digest('c')),
        });
        // The tag names what it has: no check at all.
        let same = remote(digest('a'), OCI_INDEX);
        assert_eq!(
            check_platform(
                &client,
                &mut cache,
                &item,
                &same,
                &observed(containerd.clone())
            ),
            None
        );
        // A single manifest on containerd: compared as is, the same one or not.
        let one = remote(digest('d'), MANIFEST);
        let check = check_platform(
            &client,
            &mut cache,
            &item,
            &one,
            &observed(containerd.clone()),
        )
        .unwrap();
        assert!(check.same);
        assert_eq!(check.compared, "manifest");
        let other = remote(digest('e'), MANIFEST);
        let check =
            check_platform(&client, &mut cache, &item, &other, &observed(containerd)).unwrap();
        assert!(!check.same);
        assert_eq!(check.remote, Some(digest('e')));
        // A single manifest on the classic store is left to the pull.
        assert_eq!(
            check_platform(
                &client,
                &mut cache,
                &item,
                &other,
                &observed(classic.clone())
            ),
            None
        );
        // Nothing known about what it runs: whole digests only.
        let index = remote(digest('f'), OCI_INDEX);
        assert_eq!(
            check_platform(&client, &mut cache, &item, &index, &observed(None)),
            None
        );
        // An index with a registry that cannot answer: a failed check, never "same".
        let check = check_platform(&client, &mut cache, &item, &index, &observed(classic)).unwrap();
        assert!(!check.same);
        assert_eq!(check.compared, "config");
        assert!(check.error.is_some(), "{check:?}");
        assert!(!cache.is_empty(), "the answer is cached for the replicas");
    }

    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

    #[test]
    fn a_failed_check_on_containerd_is_a_failure_and_on_classic_the_whole_digest() {
        let mut check = PlatformCheck {
            platform: "linux/amd64".into(),
            compared: "manifest",
            local: digest('d'),
            remote: None,
            same: false,
            error: Some("registry down".into()),
        };
        let Remote::Error { kind, message } = judge(&digest('f'), Some(&check)) else {
            panic!("a failed containerd check must not become an update");
        };
        assert_eq!(kind, "platform-check");
        assert!(message.contains("linux/amd64") && message.contains("registry down"));
        check.compared = "config";
        assert_eq!(
            judge(&digest('f'), Some(&check)),
            Remote::Digest(digest('f'))
        );
        check.error = None;
        check.remote = Some(digest('d'));
        check.same = true;
        assert_eq!(
            judge(&digest('f'), Some(&check)),
            Remote::PlatformUnchanged { index: digest('f') }
        );
        assert_eq!(judge(&digest('f'), None), Remote::Digest(digest('f')));
    }
}
