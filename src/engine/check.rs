//! Observe and decide: the read-only half of a pass, shared by `plan` and `apply`.
//!
//! Containers in scope → the references that need a registry check (deduplicated) → one
//! parallel round of manifest HEADs → [`decide`] for each container.

use std::time::SystemTime;

use serde::Serialize;

use super::discover::Discovered;
use crate::decide::{self, Decision, Remote};
use crate::labels::IgnoredLabel;
use crate::reference::{Digest, ImageRef};
use crate::registry::{RegistryClient, RepoTag};
use crate::state::State;

/// One container with its decision.
#[derive(Clone, Debug)]
pub struct Evaluated {
    pub container: Discovered,
    pub reference: Option<ImageRef>,
    pub available: Option<Digest>,
    pub decision: Decision,
}

/// Settings the decision reads.
#[derive(Clone, Copy, Debug)]
pub struct CheckKnobs {
    pub default_soak: std::time::Duration,
    pub self_update: bool,
}

/// Checks every container that needs it and decides for all of them.
pub fn evaluate(
    containers: Vec<Discovered>,
    registry: &RegistryClient,
    state: &State,
    knobs: CheckKnobs,
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
            let remote = target
                .as_ref()
                .and_then(|r| results.get(&repo_tag(r)))
                .map(|result| match result {
                    Ok(remote) => Remote::Digest(remote.digest.clone()),
                    Err(e) => Remote::Error {
                        kind: e.kind().to_string(),
                        message: e.to_string(),
                    },
                });
            let decision = decide::decide(&container.observed, remote.as_ref(), &ctx);
            let available = match &remote {
                Some(Remote::Digest(d)) => Some(d.clone()),
                _ => None,
            };
            let reference = ImageRef::parse(&container.observed.config_image).ok();
            Evaluated {
                container,
                reference,
                available,
                decision,
            }
        })
        .collect()
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
    #[serde(flatten)]
    pub decision: &'a Decision,
    pub summary: &'static str,
    pub reason: String,
    /// Policy labels on the container that were not read (copied from the image), and why.
    pub ignored_labels: &'a [IgnoredLabel],
}

impl Evaluated {
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
            decision: &self.decision,
            summary: self.decision.word(),
            reason: self.decision.reason(now),
            ignored_labels: &c.observed.labels.ignored,
        }
    }
}
