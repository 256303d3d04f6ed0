//! An in-memory [`Runtime`] for unit tests: containers, images, tags, names, registry digests,
//! what a started container does (healthy, unhealthy, exits, crash-loops) and injected failures.
//!
//! It models what the update protocol relies on: unique names (a taken name is a conflict), a
//! running container cannot be removed without force, an image in use is not removed, a pull
//! produces the image the registry holds for that digest. Everything it was asked is logged.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::Runtime;
use crate::docker::{
    ContainerFacts, ContainerSnapshot, ContainerStatus, ContainerSummary, DockerError, EngineInfo,
    HealthStatus, ImageDefaults, ImageFacts, ImageRemoval, NewParent,
};

/// What a container of an image does once started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Runs, no healthcheck.
    #[default]
    Runs,
    /// Runs and its healthcheck reports healthy.
    Healthy,
    /// Runs and its healthcheck reports unhealthy.
    Unhealthy,
    /// Has a healthcheck that never leaves `starting`.
    NeverHealthy,
    /// Exits at once with this code.
    Exits(i64),
    /// Restarts again and again.
    CrashLoop,
}

#[derive(Default)]
struct World {
    containers: BTreeMap<String, ContainerFacts>,
    images: BTreeMap<String, ImageFacts>,
    tags: BTreeMap<String, String>,
    /// `repo@digest` → the image a pull produces.
    registry: BTreeMap<String, ImageFacts>,
    behaviours: BTreeMap<String, Behaviour>,
    /// Container ID → files added to its own filesystem since create (path → content).
    files: BTreeMap<String, BTreeMap<String, String>>,
    /// (operation, target fragment, times left): the next matching calls fail.
    failures: Vec<(String, String, usize)>,
    calls: Vec<String>,
    next: u64,
    /// How long every pull takes (the lock is not held meanwhile, so pulls from several
    /// threads overlap as on a real engine).
    pull_delay: Duration,
    pulls_in_flight: usize,
    max_pulls_in_flight: usize,
    /// Every finished pull: `repo@digest`, when it started and ended.
    pulls: Vec<(String, Instant, Instant)>,
    /// Every stop and start, with when it was made: `stop <target>` / `start <target>`.
    timeline: Vec<(String, Instant)>,
}

/// The in-memory runtime.
#[derive(Default)]
pub struct Fake {
    world: Mutex<World>,
}

fn not_found(action: &str, object: &str) -> DockerError {
    DockerError::NotFound {
        endpoint: "fake".into(),
        action: format!("{action} {object}"),
        object: object.into(),
    }
}

fn conflict(action: &str, message: &str) -> DockerError {
    DockerError::Api {
        endpoint: "fake".into(),
        action: action.into(),
        status: 409,
        message: message.into(),
    }
}

/// A 64-hex ID made of `seed`.
pub fn hex_id(seed: u64) -> String {
    format!("{seed:064x}")
}

/// `fragment` occurs in `target`; a fragment ending in `$` must end it.
fn matches(target: &str, fragment: &str) -> bool {
    match fragment.strip_suffix('$') {
        Some(suffix) => target.ends_with(suffix),
        None => target.contains(fragment),
    }
}

impl World {
    fn id_of(&self, id_or_name: &str) -> Option<String> {
        if self.containers.contains_key(id_or_name) {
            return Some(id_or_name.to_string());
        }
        self.containers
            .values()
            .find(|c| c.name == id_or_name)
            .map(|c| c.id.clone())
    }

    fn container(
        &mut self,
        action: &str,
        id_or_name: &str,
    ) -> Result<&mut ContainerFacts, DockerError> {
        let id = self
            .id_of(id_or_name)
            .ok_or_else(|| not_found(action, id_or_name))?;
        Ok(self.containers.get_mut(&id).expect("the ID was just found"))
    }

    fn image_id(&self, id_or_reference: &str) -> Option<String> {
        if self.images.contains_key(id_or_reference) {
            return Some(id_or_reference.to_string());
        }
        let tagged = if id_or_reference.contains(':') {
            id_or_reference.to_string()
        } else {
            format!("{id_or_reference}:latest")
        };
        self.tags.get(&tagged).cloned()
    }

    /// Records the call and fails it when a failure was injected for it.
    fn call(&mut self, op: &str, target: &str) -> Result<(), DockerError> {
        self.calls.push(format!("{op} {target}"));
        if op == "stop" || op == "start" {
            self.timeline
                .push((format!("{op} {target}"), Instant::now()));
        }
        if let Some(f) = self
            .failures
            .iter_mut()
            .find(|(o, t, left)| o == op && matches(target, t) && *left > 0)
        {
            f.2 -= 1;
            return Err(DockerError::Api {
                endpoint: "fake".into(),
                action: format!("{op} {target}"),
                status: 500,
                message: "injected failure".into(),
            });
        }
        Ok(())
    }

    fn fresh_id(&mut self) -> String {
        self.next += 1;
        hex_id(0xc0_0000 + self.next)
    }
}

impl Fake {
    pub fn new() -> Fake {
        Fake::default()
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a local image; `reference` (`repo:tag`) points at it and `repo@digest` is recorded.
    pub fn image(&self, id: &str, reference: &str, digest: &str) {
        let repo = reference.rsplit_once(':').map_or(reference, |(r, _)| r);
        let facts = image_facts(id, reference, &format!("{repo}@{digest}"));
        let mut w = self.world();
        w.tags.insert(reference.to_string(), id.to_string());
        w.images.insert(id.to_string(), facts);
    }

    /// Publishes `repo@digest` in the registry as image `id`, which containers started from it
    /// run with `behaviour`.
    pub fn publish(&self, repo: &str, digest: &str, id: &str, behaviour: Behaviour) {
        let reference = format!("{repo}@{digest}");
        let mut facts = image_facts(id, "", &reference);
        facts.repo_tags.clear();
        let mut w = self.world();
        w.registry.insert(reference, facts);
        w.behaviours.insert(id.to_string(), behaviour);
    }

    /// Sets what containers of image `id` do when started.
    pub fn behave(&self, id: &str, behaviour: Behaviour) {
        self.world().behaviours.insert(id.to_string(), behaviour);
    }

    /// Adds a container of `image_id` created from `config_image`; returns its ID.
    pub fn container(
        &self,
        name: &str,
        image_id: &str,
        config_image: &str,
        labels: &[(&str, &str)],
        running: bool,
    ) -> String {
        let mut w = self.world();
        let id = w.fresh_id();
        let facts = ContainerFacts {
            id: id.clone(),
            name: name.to_string(),
            image_id: image_id.to_string(),
            image_manifest_digest: None,
            config_image: config_image.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            status: if running {
                ContainerStatus::Running
            } else {
                ContainerStatus::Exited
            },
            running,
            exit_code: 0,
            restart_count: 0,
            started_at: None,
            health: None,
            has_healthcheck: false,
            network_mode: "bridge".into(),
            pid_mode: String::new(),
            ipc_mode: "private".into(),
            volumes_from: Vec::new(),
            networks: vec!["default".into()],
            platform: Some("linux".into()),
            image_platform: None,
            stop_timeout: None,
            created: "2026-01-01T00:00:00Z".into(),
        };
        w.containers.insert(id.clone(), facts);
        id
    }

    /// Sets a container's network mode (`container:<id>` makes it a follower).
    pub fn network_mode(&self, id: &str, mode: &str) {
        if let Some(c) = self.world().containers.get_mut(id) {
            c.network_mode = mode.to_string();
        }
    }

    /// Sets a container's PID mode (`container:<id or name>` makes it a follower).
    pub fn pid_mode(&self, id: &str, mode: &str) {
        if let Some(c) = self.world().containers.get_mut(id) {
            c.pid_mode = mode.to_string();
        }
    }

    /// Sets a container's IPC mode (`container:<id or name>` makes it a follower).
    pub fn ipc_mode(&self, id: &str, mode: &str) {
        if let Some(c) = self.world().containers.get_mut(id) {
            c.ipc_mode = mode.to_string();
        }
    }

    /// Sets a container's `VolumesFrom` entries (`<id or name>[:ro|:rw]`).
    pub fn volumes_from(&self, id: &str, entries: &[&str]) {
        if let Some(c) = self.world().containers.get_mut(id) {
            c.volumes_from = entries.iter().map(|e| (*e).to_string()).collect();
        }
    }

    /// Puts a file into a container's own filesystem, as compose's injection (or the
    /// application) would.
    pub fn file(&self, id: &str, path: &str, content: &str) {
        self.world()
            .files
            .entry(id.to_string())
            .or_default()
            .insert(path.to_string(), content.to_string());
    }

    /// The files added to a container's own filesystem (path → content).
    pub fn files(&self, id_or_name: &str) -> BTreeMap<String, String> {
        let w = self.world();
        w.id_of(id_or_name)
            .and_then(|id| w.files.get(&id).cloned())
            .unwrap_or_default()
    }

    /// Makes the next `times` calls of `op` (`create`, `start`, `stop`, `rename`, `remove`,
    /// `tag`, `pull`, `inspect`, `remove-image`, `injected-files`, `copy`) whose target contains `target` (ends with it, when it ends in `$`) fail.
    pub fn fail(&self, op: &str, target: &str, times: usize) {
        self.world()
            .failures
            .push((op.to_string(), target.to_string(), times));
    }

    /// Removes a container as a person might by hand.
    pub fn delete(&self, id_or_name: &str) {
        let mut w = self.world();
        if let Some(id) = w.id_of(id_or_name) {
            w.containers.remove(&id);
        }
    }

    /// `(name, image ID, running)` of every container, sorted by name.
    pub fn containers(&self) -> Vec<(String, String, bool)> {
        let mut all: Vec<_> = self
            .world()
            .containers
            .values()
            .map(|c| (c.name.clone(), c.image_id.clone(), c.running))
            .collect();
        all.sort();
        all
    }

    /// The facts of the container with this name or ID.
    pub fn get(&self, id_or_name: &str) -> Option<ContainerFacts> {
        let w = self.world();
        w.id_of(id_or_name).map(|id| w.containers[&id].clone())
    }

    /// The image `repo:tag` points at.
    pub fn tag(&self, reference: &str) -> Option<String> {
        self.world().tags.get(reference).cloned()
    }

    /// Whether image `id` is present.
    pub fn has_image(&self, id: &str) -> bool {
        self.world().images.contains_key(id)
    }

    /// Every call made so far, as `op target`.
    pub fn calls(&self) -> Vec<String> {
        self.world().calls.clone()
    }

    /// Makes every pull from now on take `delay`.
    pub fn pull_delay(&self, delay: Duration) {
        self.world().pull_delay = delay;
    }

    /// The most pulls that were in flight at once.
    pub fn max_pulls_in_flight(&self) -> usize {
        self.world().max_pulls_in_flight
    }

    /// Every finished pull (successful or not): `repo@digest`, its start and its end.
    pub fn pulls(&self) -> Vec<(String, Instant, Instant)> {
        self.world().pulls.clone()
    }

    /// Every stop and start made so far, in order, with when it was made.
    pub fn timeline(&self) -> Vec<(String, Instant)> {
        self.world().timeline.clone()
    }
}

fn image_facts(id: &str, reference: &str, repo_digest: &str) -> ImageFacts {
    ImageFacts {
        id: id.to_string(),
        repo_tags: if reference.is_empty() {
            Vec::new()
        } else {
            vec![reference.to_string()]
        },
        repo_digests: vec![repo_digest.to_string()],
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: None,
        created: None,
        config: ImageDefaults::default(),
    }
}

impl Runtime for Fake {
    fn engine_info(&self) -> Result<EngineInfo, DockerError> {
        Ok(EngineInfo {
            server_version: "28.5.1".into(),
            api_version: "1.51".into(),
            client_api_version: "1.51".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            driver: "overlay2".into(),
            containerd_image_store: false,
        })
    }

    fn list_containers(&self, project: Option<&str>) -> Result<Vec<ContainerSummary>, DockerError> {
        let mut w = self.world();
        w.call("list", project.unwrap_or("*"))?;
        let mut all: Vec<ContainerSummary> = w
            .containers
            .values()
            .filter(|c| {
                project.is_none_or(|p| {
                    c.labels
                        .get(crate::docker::COMPOSE_PROJECT_LABEL)
                        .map(String::as_str)
                        == Some(p)
                })
            })
            .map(|c| ContainerSummary {
                id: c.id.clone(),
                name: c.name.clone(),
                image: c.config_image.clone(),
                image_id: c.image_id.clone(),
                labels: c.labels.clone(),
                state: c.status,
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    fn inspect_container(&self, id_or_name: &str) -> Result<ContainerFacts, DockerError> {
        let mut w = self.world();
        w.call("inspect", id_or_name)?;
        let c = w.container("inspecting", id_or_name)?;
        if c.status == ContainerStatus::Restarting {
            c.restart_count += 1;
        }
        Ok(c.clone())
    }

    fn snapshot_container(&self, id_or_name: &str) -> Result<ContainerSnapshot, DockerError> {
        let mut w = self.world();
        w.call("snapshot", id_or_name)?;
        let id = w.container("inspecting", id_or_name)?.id.clone();
        Ok(ContainerSnapshot::of_id(&id))
    }

    fn inspect_image(&self, id_or_reference: &str) -> Result<Option<ImageFacts>, DockerError> {
        let mut w = self.world();
        w.call("inspect-image", id_or_reference)?;
        Ok(w.image_id(id_or_reference).map(|id| w.images[&id].clone()))
    }

    fn pull_by_digest(
        &self,
        repository: &str,
        digest: &str,
        _platform: Option<&str>,
        _registry_auth: Option<&str>,
    ) -> Result<ImageFacts, DockerError> {
        let reference = format!("{repository}@{digest}");
        let delay = {
            let mut w = self.world();
            w.call("pull", &reference)?;
            w.pulls_in_flight += 1;
            w.max_pulls_in_flight = w.max_pulls_in_flight.max(w.pulls_in_flight);
            w.pull_delay
        };
        let started = Instant::now();
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut w = self.world();
        w.pulls_in_flight -= 1;
        w.pulls.push((reference.clone(), started, Instant::now()));
        let Some(pulled) = w.registry.get(&reference).cloned() else {
            return Err(DockerError::Pull {
                endpoint: "fake".into(),
                image: reference,
                message: "manifest unknown".into(),
            });
        };
        let image = w.images.entry(pulled.id.clone()).or_insert(pulled);
        Ok(image.clone())
    }

    fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<(), DockerError> {
        let mut w = self.world();
        w.call("tag", &format!("{repo}:{tag}"))?;
        let id = w
            .image_id(source)
            .ok_or_else(|| not_found("tagging", source))?;
        w.tags.insert(format!("{repo}:{tag}"), id);
        Ok(())
    }

    fn remove_image(&self, id_or_reference: &str) -> Result<ImageRemoval, DockerError> {
        let mut w = self.world();
        w.call("remove-image", id_or_reference)?;
        let Some(id) = w.image_id(id_or_reference) else {
            return Ok(ImageRemoval::NotFound);
        };
        if w.containers.values().any(|c| c.image_id == id) {
            return Ok(ImageRemoval::InUse {
                message: "image is being used by a container".into(),
            });
        }
        w.images.remove(&id);
        w.tags.retain(|_, v| *v != id);
        Ok(ImageRemoval::Removed)
    }

    fn create_replacement(
        &self,
        old: &ContainerSnapshot,
        _old_image: &ImageDefaults,
        new_image_id: &str,
        name: &str,
        _platform: Option<&str>,
        parent: Option<&NewParent>,
    ) -> Result<String, DockerError> {
        let mut w = self.world();
        w.call("create", name)?;
        if w.id_of(name).is_some() {
            return Err(conflict("creating", &format!("the name {name} is in use")));
        }
        if !w.images.contains_key(new_image_id) {
            return Err(not_found("creating from", new_image_id));
        }
        let mut facts = w.container("creating from", &old.facts().id)?.clone();
        if let Some(reference) = old.image_override() {
            facts.config_image = reference.to_string();
        }
        // Like Docker: the replacement is made from its reference, which must name the image
        // the update expects (the facade checks and refuses otherwise).
        if let Some(tagged) = w.image_id(&facts.config_image)
            && tagged != new_image_id
        {
            return Err(DockerError::Protocol {
                endpoint: "fake".into(),
                action: format!("creating container {name:?}"),
                message: format!("it got image {tagged} instead of {new_image_id}"),
            });
        }
        let id = w.fresh_id();
        facts.id.clone_from(&id);
        facts.name = name.to_string();
        facts.image_id = new_image_id.to_string();
        facts.status = ContainerStatus::Created;
        facts.running = false;
        facts.exit_code = 0;
        facts.restart_count = 0;
        facts.health = None;
        if let Some(parent) = parent {
            for mode in [
                &mut facts.network_mode,
                &mut facts.pid_mode,
                &mut facts.ipc_mode,
            ] {
                if let Some(new) = parent.repoint_mode(mode) {
                    *mode = new;
                }
            }
            for entry in &mut facts.volumes_from {
                if let Some(new) = parent.repoint_volumes_from(entry) {
                    *entry = new;
                }
            }
        }
        w.containers.insert(id.clone(), facts);
        Ok(id)
    }

    fn injected_files(&self, id: &str) -> Result<Vec<String>, DockerError> {
        let mut w = self.world();
        w.call("injected-files", id)?;
        let id = w.container("listing the files of", id)?.id.clone();
        Ok(w.files
            .get(&id)
            .map(|files| {
                files
                    .keys()
                    .filter(|p| p.starts_with("/run/secrets/") || p.rfind('/') == Some(0))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    fn copy_paths(
        &self,
        from: &str,
        to: &str,
        paths: &[String],
    ) -> Result<Vec<String>, DockerError> {
        let mut w = self.world();
        w.call("copy", &format!("{from} {to}"))?;
        let from = w.container("copying from", from)?.id.clone();
        let to = w.container("copying into", to)?.id.clone();
        let source = w.files.get(&from).cloned().unwrap_or_default();
        let mut copied = Vec::new();
        for path in paths {
            if let Some(content) = source.get(path) {
                w.files
                    .entry(to.clone())
                    .or_default()
                    .insert(path.clone(), content.clone());
                copied.push(path.clone());
            }
        }
        Ok(copied)
    }

    fn stop_container(
        &self,
        id_or_name: &str,
        _timeout_secs: Option<i64>,
    ) -> Result<(), DockerError> {
        let mut w = self.world();
        w.call("stop", id_or_name)?;
        let c = w.container("stopping", id_or_name)?;
        c.running = false;
        c.status = ContainerStatus::Exited;
        Ok(())
    }

    fn start_container(&self, id_or_name: &str) -> Result<(), DockerError> {
        let mut w = self.world();
        w.call("start", id_or_name)?;
        let image = w.container("starting", id_or_name)?.image_id.clone();
        let behaviour = w.behaviours.get(&image).copied().unwrap_or_default();
        let c = w.container("starting", id_or_name)?;
        c.running = true;
        c.status = ContainerStatus::Running;
        c.exit_code = 0;
        c.has_healthcheck = false;
        c.health = None;
        match behaviour {
            Behaviour::Runs => {}
            Behaviour::Healthy | Behaviour::Unhealthy | Behaviour::NeverHealthy => {
                c.has_healthcheck = true;
                c.health = Some(match behaviour {
                    Behaviour::Healthy => HealthStatus::Healthy,
                    Behaviour::Unhealthy => HealthStatus::Unhealthy,
                    _ => HealthStatus::Starting,
                });
            }
            Behaviour::Exits(code) => {
                c.running = false;
                c.status = ContainerStatus::Exited;
                c.exit_code = code;
            }
            Behaviour::CrashLoop => {
                c.status = ContainerStatus::Restarting;
                c.exit_code = 1;
            }
        }
        Ok(())
    }

    fn rename_container(&self, id_or_name: &str, new_name: &str) -> Result<(), DockerError> {
        let mut w = self.world();
        w.call("rename", &format!("{id_or_name} {new_name}"))?;
        let id = w.container("renaming", id_or_name)?.id.clone();
        if w.id_of(new_name).is_some_and(|other| other != id) {
            return Err(conflict(
                "renaming",
                &format!("the name {new_name} is in use"),
            ));
        }
        w.container("renaming", &id)?.name = new_name.to_string();
        Ok(())
    }

    fn remove_container(
        &self,
        id_or_name: &str,
        _remove_anonymous_volumes: bool,
        force: bool,
    ) -> Result<(), DockerError> {
        let mut w = self.world();
        w.call("remove", id_or_name)?;
        let c = w.container("removing", id_or_name)?;
        if c.running && !force {
            return Err(conflict("removing", "the container is running"));
        }
        let id = c.id.clone();
        w.containers.remove(&id);
        w.files.remove(&id);
        Ok(())
    }
}
