//! Containers in scope → observed facts for the decision.
//!
//! Lists the scope's containers (stopped ones too), skips compose one-offs, reads labels and the
//! image reference, and builds the local digest set: `RepoDigests` of the same repository, plus
//! the image ID on the containerd image store (where the ID is the pulled index digest).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use super::scope::Scope;
use crate::decide::{Observed, RunningImage};
use crate::docker::ImageFacts;
use crate::error::Failure;
use crate::labels;
use crate::reference::{Digest, ImageRef, repo_digest_for};
use crate::runtime::Runtime;
use crate::state::schema::container_key;

/// One container in scope, with everything later steps need.
#[derive(Clone, Debug)]
pub struct Discovered {
    pub id: String,
    pub name: String,
    pub project: Option<String>,
    pub service: Option<String>,
    pub running: bool,
    pub image_id: String,
    /// Every label of the container, compose's included.
    pub labels: BTreeMap<String, String>,
    pub observed: Observed,
    pub depends_on: Vec<String>,
    /// The running image's OCI labels (version, revision, source), for "what changed".
    pub oci: crate::state::ImageLabels,
}

impl Discovered {
    /// The compose service, else the container name.
    pub fn display_name(&self) -> &str {
        self.service.as_deref().unwrap_or(&self.name)
    }
}

/// Every container in scope except compose one-offs, sorted by order label, then name.
pub fn discover(
    docker: &dyn Runtime,
    scope: &Scope,
    watchtower_compat: bool,
) -> Result<Vec<Discovered>> {
    let containerd_store = docker.engine_info()?.containerd_image_store;
    let mut found = Vec::new();
    let mut compose_files = BTreeMap::new();
    let mut images: BTreeMap<String, Option<ImageFacts>> = BTreeMap::new();
    for summary in docker.list_containers(scope.project.as_deref())? {
        if labels::is_compose_oneoff(&summary.labels) {
            continue;
        }
        let facts = match docker.inspect_container(&summary.id) {
            Ok(facts) => facts,
            Err(e) => {
                log::warn!(
                    "Skipping container {}: it could not be inspected ({e}).",
                    summary.name
                );
                continue;
            }
        };
        // Many containers share an image: inspect each image once per pass.
        let image = if let Some(cached) = images.get(&facts.image_id) {
            cached.clone()
        } else {
            let fetched = docker.inspect_image(&facts.image_id)?;
            images.insert(facts.image_id.clone(), fetched.clone());
            fetched
        };
        let services = compose_services(&facts.labels, &mut compose_files);
        let built = services
            .iter()
            .any(|s| s.get("build").is_some_and(|b| !b.is_null()));
        let local_digests = match &image {
            Some(image) if !built => local_digests(image, &facts.config_image, containerd_store),
            _ => Vec::new(),
        };
        let no_labels = BTreeMap::new();
        let image_labels = image.as_ref().map_or(&no_labels, |i| &i.config.labels);
        // The compose file only speaks for the container when compose itself pointed at it: an
        // image could carry compose's labels too.
        let compose_labels =
            compose_is_own(&facts.labels, image_labels).then(|| compose_service_labels(&services));
        let parsed = labels::parse_container(
            &facts.labels,
            image_labels,
            compose_labels.as_ref(),
            watchtower_compat,
        );
        for ignored in &parsed.ignored {
            if ignored.label == labels::PRE_UPDATE {
                // An image's label must never run a command on the host.
                log::warn!(
                    "Ignoring {} on {}: it comes from the image, and hooks are only taken from \
                     labels set on the container.",
                    labels::PRE_UPDATE,
                    facts.name
                );
            } else {
                log::info!(
                    "Ignoring {}={:?} on {}: it comes from the image; only labels set on the \
                     container count.",
                    ignored.label,
                    ignored.value,
                    facts.name
                );
            }
        }
        let project = facts.labels.get(labels::COMPOSE_PROJECT).cloned();
        let service = facts.labels.get(labels::COMPOSE_SERVICE).cloned();
        let is_self =
            scope.own_container.as_deref() == Some(facts.id.as_str()) || parsed.policy.is_self;
        let running = image
            .as_ref()
            .filter(|_| !built)
            .and_then(|image| running_image(image, &facts, containerd_store));
        let dangling = image.as_ref().is_some_and(|i| i.repo_tags.is_empty());
        let observed = Observed {
            key: container_key(project.as_deref(), service.as_deref(), &facts.name),
            name: facts.name.clone(),
            config_image: facts.config_image.clone(),
            local_digests,
            running,
            dangling,
            labels: parsed,
            // Found by its mounts, or marked by the user with io.pullpilot.self.
            is_self,
        };
        found.push(Discovered {
            oci: labels::oci(image_labels),
            depends_on: labels::compose_depends_on(&facts.labels),
            labels: facts.labels.clone(),
            id: facts.id,
            name: facts.name,
            project,
            service,
            running: facts.running,
            image_id: facts.image_id,
            observed,
        });
    }
    found.sort_by(|a, b| {
        (a.observed.labels.policy.order, &a.name).cmp(&(b.observed.labels.policy.order, &b.name))
    });
    Ok(found)
}

fn local_digests(image: &ImageFacts, config_image: &str, containerd_store: bool) -> Vec<Digest> {
    let Ok(reference) = ImageRef::parse(config_image) else {
        return Vec::new();
    };
    let mut digests: Vec<Digest> = image
        .repo_digests
        .iter()
        .filter_map(|entry| repo_digest_for(entry, &reference))
        .collect();
    // On the containerd store the image ID is the pulled manifest or index digest; it stays
    // the only record of what was pulled once the tag moves on (the name's repo digest goes
    // with the tag there).
    if containerd_store
        && let Ok(id) = Digest::parse(&image.id)
        && !digests.contains(&id)
    {
        digests.push(id);
    }
    digests
}

/// What the container runs, for the platform check: on the containerd store the platform
/// manifest the engine reports for the container (its image ID is the index digest); on the
/// classic store the image ID, which is the config digest.
fn running_image(
    image: &ImageFacts,
    facts: &crate::docker::ContainerFacts,
    containerd_store: bool,
) -> Option<RunningImage> {
    if containerd_store {
        let manifest = Digest::parse(facts.image_manifest_digest.as_deref()?).ok()?;
        Some(RunningImage {
            platform: facts
                .image_platform
                .clone()
                .unwrap_or_else(|| image.platform()),
            manifest: Some(manifest),
            config: None,
        })
    } else {
        if image.os.is_empty() || image.architecture.is_empty() {
            return None;
        }
        Some(RunningImage {
            platform: image.platform(),
            manifest: None,
            config: Some(Digest::parse(&image.id).ok()?),
        })
    }
}

/// The one container `name` (a compose service or container name) refers to. Several
/// containers (replicas, or the same service name in several projects) are ambiguous.
pub fn select_one(all: Vec<Discovered>, name: &str) -> Result<Discovered> {
    let mut matches = select(all, &[name.to_string()])?;
    if matches.len() > 1 {
        let names: Vec<&str> = matches.iter().map(|d| d.name.as_str()).collect();
        return Err(Failure::usage(format!(
            "{name:?} is ambiguous: it matches {}; name one container instead",
            names.join(", ")
        )));
    }
    Ok(matches.remove(0))
}

/// The container's compose service as each of its compose files defines it (the files named by
/// compose's `config_files` label, in order; unreadable files and files without the service are
/// left out). A service with a `build:` section has its image built on this host, never pulled
/// (on the containerd image store every local name gets a repo digest, so digests alone cannot
/// tell).
fn compose_services<'a>(
    labels: &BTreeMap<String, String>,
    cache: &'a mut BTreeMap<String, Option<serde_yaml::Value>>,
) -> Vec<&'a serde_yaml::Value> {
    let (Some(files), Some(service)) = (
        labels.get(labels::COMPOSE_CONFIG_FILES),
        labels.get(labels::COMPOSE_SERVICE),
    ) else {
        return Vec::new();
    };
    let files: Vec<&str> = files
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    for file in &files {
        cache.entry((*file).to_string()).or_insert_with(|| {
            let text = std::fs::read_to_string(file)
                .map_err(|e| log::debug!("Cannot read compose file {file}: {e}"))
                .ok()?;
            serde_yaml::from_str(&text)
                .map_err(|e| log::debug!("Cannot parse {file}: {e}"))
                .ok()
        });
    }
    let cache: &'a BTreeMap<_, _> = cache;
    files
        .iter()
        .filter_map(|file| cache.get(*file)?.as_ref())
        .filter_map(|doc| doc.get("services")?.get(service.as_str()))
        .collect()
}

/// Whether compose's own labels on the container (which files, which service) were set by
/// compose rather than copied from the image: only then may the compose file speak for the
/// container's labels.
fn compose_is_own(container: &BTreeMap<String, String>, image: &BTreeMap<String, String>) -> bool {
    [labels::COMPOSE_CONFIG_FILES, labels::COMPOSE_SERVICE]
        .iter()
        .all(|key| !image.contains_key(*key) || image.get(*key) != container.get(*key))
}

/// The `labels:` the compose files set on the service, later files overriding earlier ones, in
/// either compose form (a mapping, or a list of `key=value`). Values are taken literally: a
/// label set through `${VARIABLE}` interpolation is not known here.
fn compose_service_labels(services: &[&serde_yaml::Value]) -> BTreeMap<String, String> {
    use serde_yaml::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    };
    let mut labels = BTreeMap::new();
    for service in services {
        match service.get("labels") {
            Some(Value::Mapping(map)) => {
                for (key, value) in map {
                    if let (Value::String(key), Some(value)) = (key, scalar(value)) {
                        labels.insert(key.clone(), value);
                    }
                }
            }
            Some(Value::Sequence(items)) => {
                for item in items.iter().filter_map(Value::as_str) {
                    let (key, value) = item.split_once('=').unwrap_or((item, ""));
                    labels.insert(key.to_string(), value.to_string());
                }
            }
            _ => {}
        }
    }
    labels
}

/// Keeps the containers named by `wanted` (compose service or container names). An unknown or
/// ambiguous name is a usage error that lists what exists.
pub fn select(all: Vec<Discovered>, wanted: &[String]) -> Result<Vec<Discovered>> {
    if wanted.is_empty() {
        return Ok(all);
    }
    let mut keep = vec![false; all.len()];
    for name in wanted {
        let by_container: Vec<usize> = (0..all.len()).filter(|&i| all[i].name == *name).collect();
        let by_service: Vec<usize> = (0..all.len())
            .filter(|&i| all[i].service.as_deref() == Some(name.as_str()))
            .collect();
        let matches = if by_container.is_empty() {
            by_service
        } else {
            by_container
        };
        let projects: BTreeSet<Option<&str>> =
            matches.iter().map(|&i| all[i].project.as_deref()).collect();
        if matches.is_empty() {
            let mut known: Vec<&str> = all.iter().map(Discovered::display_name).collect();
            known.sort_unstable();
            known.dedup();
            return Err(Failure::usage(format!(
                "no service or container named {name:?} in scope; known here: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        if projects.len() > 1 {
            let names: Vec<&str> = matches.iter().map(|&i| all[i].name.as_str()).collect();
            return Err(Failure::usage(format!(
                "{name:?} is ambiguous: it matches {}; name the container instead",
                names.join(", ")
            )));
        }
        for i in matches {
            keep[i] = true;
        }
    }
    Ok(all
        .into_iter()
        .zip(keep)
        .filter_map(|(d, k)| k.then_some(d))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(
        labels: &BTreeMap<String, String>,
        cache: &mut BTreeMap<String, Option<serde_yaml::Value>>,
    ) -> bool {
        compose_services(labels, cache)
            .iter()
            .any(|s| s.get("build").is_some_and(|b| !b.is_null()))
    }

    fn compose_labels(service: &str, files: &str) -> BTreeMap<String, String> {
        [
            (labels::COMPOSE_SERVICE.to_string(), service.to_string()),
            (labels::COMPOSE_CONFIG_FILES.to_string(), files.to_string()),
        ]
        .into()
    }

    #[test]
    fn compose_build_services_are_built_locally() {
        let tmp = tempfile::Builder::new()
            .prefix("pp-discover-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let base = dir.join("compose.yaml");
        let over = dir.join("compose.override.yaml");
        std::fs::write(
            &base,
            "services:\n  web:\n    image: shop/web\n  db:\n    image: postgres\n",
        )
        .unwrap();
        std::fs::write(&over, "services:\n  web:\n    build: ./web\n").unwrap();
        let both = format!("{},{}", base.display(), over.display());
        let mut cache = BTreeMap::new();
        assert!(
            built(&compose_labels("web", &both), &mut cache),
            "build: in an override file"
        );
        assert!(!built(&compose_labels("db", &both), &mut cache));
        assert!(!built(
            &compose_labels("web", &base.display().to_string()),
            &mut cache
        ));
        assert!(!built(
            &compose_labels("web", "/nonexistent/compose.yaml"),
            &mut cache
        ));
        assert!(
            !built(&BTreeMap::new(), &mut cache),
            "not a compose container"
        );
    }

    #[test]
    fn compose_service_labels_merge_both_forms_later_files_winning() {
        let tmp = tempfile::Builder::new()
            .prefix("pp-discover-labels-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let base = dir.join("compose.yaml");
        let over = dir.join("compose.override.yaml");
        std::fs::write(
            &base,
            "services:\n  web:\n    image: shop/web\n    labels:\n      io.pullpilot.soak: 0\n      \
             io.pullpilot.exclude: false\n      io.pullpilot.order: \"5\"\n",
        )
        .unwrap();
        std::fs::write(
            &over,
            "services:\n  web:\n    labels:\n      - io.pullpilot.order=7\n      - bare\n",
        )
        .unwrap();
        let mut cache = BTreeMap::new();
        let container = compose_labels("web", &format!("{},{}", base.display(), over.display()));
        let services = compose_services(&container, &mut cache);
        let got = compose_service_labels(&services);
        let want: BTreeMap<String, String> = [
            (labels::SOAK, "0"),
            (labels::EXCLUDE, "false"),
            (labels::ORDER, "7"),
            ("bare", ""),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn compose_labels_copied_from_the_image_do_not_vouch_for_the_container() {
        let container = compose_labels("web", "/srv/shop/compose.yaml");
        assert!(compose_is_own(&container, &BTreeMap::new()));
        let mut image = BTreeMap::new();
        image.insert(labels::COMPOSE_SERVICE.to_string(), "other".to_string());
        assert!(compose_is_own(&container, &image), "compose overrode it");
        image.insert(
            labels::COMPOSE_CONFIG_FILES.to_string(),
            "/srv/shop/compose.yaml".to_string(),
        );
        assert!(
            !compose_is_own(&container, &image),
            "the files came from the image"
        );
        image.insert(
            labels::COMPOSE_CONFIG_FILES.to_string(),
            "/elsewhere.yaml".to_string(),
        );
        image.insert(labels::COMPOSE_SERVICE.to_string(), "web".to_string());
        assert!(
            !compose_is_own(&container, &image),
            "the service came from the image"
        );
    }
}
