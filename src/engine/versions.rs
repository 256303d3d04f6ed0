//! The version half of a check, for containers that follow versions (`io.pullpilot.track`):
//! each repository's tags are listed once, the newest tag the track allows is chosen
//! ([`crate::version::choose`]), one HEAD per chosen tag gives its digest (the same client,
//! credentials and tokens as the other checks), and the compose file is looked at to see
//! whether it can be moved to that tag. The decision gets a [`Newer`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde::Serialize;

use super::check::repo_tag;
use super::discover::Discovered;
use crate::compose_edit;
use crate::decide::{self, Newer, Remote};
use crate::reference::ImageRef;
use crate::registry::{CheckError, RegistryClient, RepoTag, TagList};
use crate::version::{self, HeldBack};

/// Repositories listed at once.
const LISTINGS_IN_FLIGHT: usize = 8;

/// What the version track found for one container (shown by `plan` and `--json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionFacts {
    /// `patch`, `minor`, `major` or `regex:…`.
    pub track: String,
    pub current_tag: String,
    /// The newest tag the track allows, when newer than the current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_tag: Option<String>,
    /// A newer version the track level excludes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_back: Option<HeldBack>,
    pub tags_listed: usize,
    /// False when the repository has more tags than one listing reads.
    pub tags_complete: bool,
}

/// For each container (by index) that follows versions: what was found, and the newer tag for
/// the decision (`None` when there is none).
pub fn find(
    registry: &RegistryClient,
    containers: &[Discovered],
    targets: &[Option<ImageRef>],
    ctx: &decide::Context<'_>,
) -> BTreeMap<usize, (VersionFacts, Option<Newer>)> {
    let tracked: Vec<(usize, &ImageRef, version::Track)> = containers
        .iter()
        .zip(targets)
        .enumerate()
        .filter_map(|(i, (c, target))| {
            let reference = target.as_ref()?;
            let track = decide::version_track(&c.observed, reference, ctx)?;
            Some((i, reference, track.clone()))
        })
        .collect();
    if tracked.is_empty() {
        return BTreeMap::new();
    }
    let repositories: BTreeSet<RepoTag> =
        tracked.iter().map(|(_, r, _)| repository_of(r)).collect();
    let listings = list_all(registry, &repositories);

    let mut chosen: Vec<(usize, VersionFacts, Found)> = Vec::new();
    for (i, reference, track) in &tracked {
        let c = &containers[*i];
        let current = reference.tag().unwrap_or("latest").to_string();
        let listing = &listings[&repository_of(reference)];
        let mut facts = VersionFacts {
            track: track.to_string(),
            current_tag: current.clone(),
            candidate_tag: None,
            held_back: None,
            tags_listed: 0,
            tags_complete: false,
        };
        let list = match listing {
            Ok(list) => list,
            Err(e) => {
                let remote = Remote::Error {
                    kind: e.kind().to_string(),
                    message: format!("listing the tags of {} failed: {e}", reference.name()),
                };
                chosen.push((*i, facts, Found::Failed(remote)));
                continue;
            }
        };
        facts.tags_listed = list.tags.len();
        facts.tags_complete = list.complete;
        let choice = version::choose(
            &current,
            track,
            c.observed.labels.policy.track_prerelease,
            &list.tags,
        );
        facts.held_back = choice.held_back;
        match choice.best {
            Some(best) => {
                facts.candidate_tag = Some(best.clone());
                let item = RepoTag {
                    tag: best,
                    ..repo_tag(reference)
                };
                chosen.push((*i, facts, Found::Newer(item)));
            }
            None => chosen.push((*i, facts, Found::Nothing)),
        }
    }
    for (i, facts, _) in &chosen {
        if !facts.tags_complete && facts.tags_listed > 0 {
            log::warn!(
                "{}: its repository has more tags than pullpilot lists ({}); a newer version \
                 past them is not seen.",
                containers[*i].name,
                facts.tags_listed
            );
        }
    }

    let heads: Vec<RepoTag> = chosen
        .iter()
        .filter_map(|(_, _, found)| match found {
            Found::Newer(item) => Some(item.clone()),
            _ => None,
        })
        .collect();
    let answers = registry.check_all(&heads);
    chosen
        .into_iter()
        .map(|(i, facts, item)| {
            let c = &containers[i];
            let newer = match item {
                Found::Newer(item) => {
                    let remote = match &answers[&item] {
                        Ok(remote) => Remote::Digest(remote.digest.clone()),
                        Err(e) => Remote::Error {
                            kind: e.kind().to_string(),
                            message: e.to_string(),
                        },
                    };
                    let cannot_edit = edit_problem(c, &facts.current_tag, &item.tag);
                    Some(Newer {
                        tag: item.tag,
                        remote,
                        cannot_edit,
                    })
                }
                // The listing failed: the decision reports it (the tag is not used).
                Found::Failed(remote) => Some(Newer {
                    tag: String::new(),
                    remote,
                    cannot_edit: None,
                }),
                // No newer tag: the container follows its own tag's digest.
                Found::Nothing => None,
            };
            (i, (facts, newer))
        })
        .collect()
}

/// What the listing gave one container.
enum Found {
    /// A newer tag to HEAD.
    Newer(RepoTag),
    /// The listing failed.
    Failed(Remote),
    /// Nothing newer within the track.
    Nothing,
}

/// The repository of `reference`, as the key of its listing.
fn repository_of(reference: &ImageRef) -> RepoTag {
    RepoTag {
        tag: String::new(),
        ..repo_tag(reference)
    }
}

/// Lists every repository, a few at a time.
fn list_all(
    registry: &RegistryClient,
    repositories: &BTreeSet<RepoTag>,
) -> BTreeMap<RepoTag, Result<TagList, CheckError>> {
    let out = Mutex::new(BTreeMap::new());
    let all: Vec<&RepoTag> = repositories.iter().collect();
    for chunk in all.chunks(LISTINGS_IN_FLIGHT) {
        std::thread::scope(|scope| {
            for repo in chunk {
                let out = &out;
                scope.spawn(move || {
                    let listed = registry.list_tags(repo);
                    match &listed {
                        Ok(list) => log::debug!(
                            "{}/{}: {} tags in {} pages",
                            repo.host,
                            repo.repository,
                            list.tags.len(),
                            list.pages
                        ),
                        Err(e) => {
                            log::debug!("{}/{}: listing failed ({e})", repo.host, repo.repository);
                        }
                    }
                    out.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert((*repo).clone(), listed);
                });
            }
        });
    }
    out.into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why `c`'s compose file cannot be moved from tag `from` to `to`; `None` when it can. A
/// container compose does not manage has no file, so a version move would be reverted by
/// whoever recreates it from its definition: notify only.
pub fn edit_problem(c: &Discovered, from: &str, to: &str) -> Option<String> {
    let at = match compose_edit::locate(&c.labels, true) {
        Ok(at) => at,
        Err(why) => return Some(why),
    };
    if compose_edit::retag_value(&at.value, from, to).is_none() {
        return Some(format!(
            "the image value {:?} in {} does not end in the tag {from}",
            at.value,
            at.file.display()
        ));
    }
    if let Err(why) = compose_edit::check_writable(&at.file) {
        return Some(why);
    }
    None
}
