//! What changed between the image a container runs and its candidate, from their OCI labels
//! (`org.opencontainers.image.version`, `.revision`, `.source`; see
//! [`crate::labels::what_changed`]). The running image's labels are local; the candidate's are
//! read from the registry (its platform manifest and config, two or three small `GET`s) only
//! by a pass, once per candidate digest, and kept in state — so `plan` shows them from the
//! state and asks the registry for nothing more than its HEADs.

use std::collections::BTreeMap;

use super::check::{Evaluated, repo_tag};
use crate::decide::Decision;
use crate::labels;
use crate::reference::Digest;
use crate::registry::RegistryClient;
use crate::state::ImageLabels;

/// The candidate digest a decision offers, if any.
fn candidate(decision: &Decision) -> Option<&Digest> {
    match decision {
        Decision::Soaking { digest, .. }
        | Decision::Update { digest, .. }
        | Decision::Paused { digest, .. }
        | Decision::AwaitingApproval { digest, .. }
        | Decision::WaitingForWindow { digest, .. }
        | Decision::MonitorOnly { digest, .. }
        | Decision::CannotEdit { digest, .. }
        | Decision::SelfUpdateAvailable { digest } => Some(digest),
        _ => None,
    }
}

/// Sets [`Evaluated::changes`] for every container with a candidate. Labels come from `cache`,
/// else (with a `registry`) from the registry. Returns the labels of this pass's candidates,
/// which replace the cache in state.
pub fn annotate(
    evaluated: &mut [Evaluated],
    registry: Option<&RegistryClient>,
    cache: &BTreeMap<Digest, ImageLabels>,
) -> BTreeMap<Digest, ImageLabels> {
    let mut seen: BTreeMap<Digest, ImageLabels> = BTreeMap::new();
    for e in evaluated.iter_mut() {
        let (Some(digest), Some(reference)) = (candidate(&e.decision), e.reference.as_ref()) else {
            continue;
        };
        let digest = digest.clone();
        let found = if let Some(known) = seen.get(&digest).or_else(|| cache.get(&digest)) {
            Some(known.clone())
        } else if let Some(registry) = registry {
            let mut item = repo_tag(reference);
            if let Some(tag) = e.decision.to_tag() {
                item.tag = tag.to_string();
            }
            let platform = e
                .container
                .observed
                .running
                .as_ref()
                .map_or("linux/amd64", |r| r.platform.as_str());
            match registry.config_labels(&item, &digest, platform) {
                Ok(all) => Some(labels::oci(&all)),
                Err(err) => {
                    log::info!(
                        "{}: could not read what {} is ({err}); it is shown without its \
                         version and source.",
                        e.container.name,
                        digest.short()
                    );
                    None
                }
            }
        } else {
            None
        };
        if let Some(new) = found {
            e.changes = labels::what_changed(&e.container.oci, &new);
            seen.insert(digest, new);
        }
    }
    seen
}
