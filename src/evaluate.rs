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

use std::time::SystemTime;

use serde::Serialize;

use crate::decide::{self, Decision, Observed, Remote};
use crate::discover::Discovered;
use crate::labels::IgnoredLabel;
use crate::reference::{Digest, ImageRef};
use crate::registry::{RegistryClient, RemoteDigest, RepoTag};
use crate::state::State;

/// One container with its decision.
#[derive(Clone, Debug)]
pub struct Evaluated {
    pub container: Discovered,
    pub reference: Option<ImageRef>,
    pub available: Option<Digest>,
    /// The platform check, when the tag's digest differed from what the container runs.
    pub platform_check: Option<PlatformCheck>,
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
pub struct Knobs {
    pub default_soak: std::time::Duration,
    pub self_update: bool,
}

/// Checks every container that needs it and decides for all of them.
pub fn evaluate(
    containers: Vec<Discovered>,
    registry: &RegistryClient,
    state: &State,
    knobs: Knobs,
    now: SystemTime,
) -> Vec<Evaluated> {
    let ctx = decide::Context {
        now,
        default_soak: knobs.default_soak,
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
    containers
        .into_iter()
        .zip(targets)
        .map(|(container, target)| {
            let mut platform_check = None;
            let remote = target.as_ref().and_then(|r| {
                let item = repo_tag(r);
                results.get(&item).map(|result| match result {
                    Ok(remote) => {
                        platform_check =
                            check_platform(registry, &item, remote, &container.observed);
                        if platform_check.as_ref().is_some_and(|p| p.same) {
                            Remote::PlatformUnchanged {
                                index: remote.digest.clone(),
                            }
                        } else {
                            Remote::Digest(remote.digest.clone())
                        }
                    }
                    Err(e) => Remote::Error {
                        kind: e.kind().to_string(),
                        message: e.to_string(),
                    },
                })
            });
            let decision = decide::decide(&container.observed, remote.as_ref(), &ctx);
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
                decision,
            }
        })
        .collect()
}

/// The platform check for a container whose tag names `remote`: only when that digest is not
/// one the container already has, and only when the engine said what the container runs.
fn check_platform(
    registry: &RegistryClient,
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
    // The tag may now name the very manifest the container runs (an index became one image).
    if compared == "manifest" && &remote.digest == local {
        check.remote = Some(remote.digest.clone());
        check.same = true;
        return Some(check);
    }
    match registry.platform_digest(
        item,
        &remote.digest,
        &running.platform,
        compared == "config",
    ) {
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
            check.error = Some(e.to_string());
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

fn repo_tag(reference: &ImageRef) -> RepoTag {
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
        }
    }
}
