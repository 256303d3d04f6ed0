//! The seam between pullpilot and whatever runs containers: [`Runtime`], the calls discovery,
//! the update protocol, heal, rollback and followers make. [`crate::docker::Docker`] (the
//! bollard facade) implements it for real; `fake` is an in-memory one for unit tests.
//!
//! Owns: the list of calls and their contracts (errors are [`DockerError`]s so callers branch
//! on `is_not_found` the same way whatever runs behind). Must not: decide anything.

#[cfg(test)]
pub mod fake;

use crate::docker::{
    ContainerFacts, ContainerSnapshot, ContainerSummary, Docker, DockerError, EngineInfo,
    ImageDefaults, ImageFacts, ImageRemoval, NewParent,
};

/// What runs containers. Every call blocks until it is done or has failed.
///
/// `Sync`: the update pass pulls ahead on a few threads while it recreates on its own (the
/// engine's prefetch); every call blocks its own thread only.
pub trait Runtime: Sync {
    /// Version, platform and image store of the engine.
    fn engine_info(&self) -> Result<EngineInfo, DockerError>;
    /// All containers, running or not, sorted by name; only compose project `project`'s when
    /// given.
    fn list_containers(&self, project: Option<&str>) -> Result<Vec<ContainerSummary>, DockerError>;
    /// One container's facts; a missing one is [`DockerError::NotFound`].
    fn inspect_container(&self, id_or_name: &str) -> Result<ContainerFacts, DockerError>;
    /// One container's full configuration, for a faithful recreate.
    fn snapshot_container(&self, id_or_name: &str) -> Result<ContainerSnapshot, DockerError>;
    /// One image's facts; `None` when it is not here.
    fn inspect_image(&self, id_or_reference: &str) -> Result<Option<ImageFacts>, DockerError>;
    /// Pulls exactly `repository@digest` and returns the image it produced.
    fn pull_by_digest(
        &self,
        repository: &str,
        digest: &str,
        platform: Option<&str>,
        registry_auth: Option<&str>,
    ) -> Result<ImageFacts, DockerError>;
    /// Points `repo:tag` at image `source`.
    fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<(), DockerError>;
    /// Removes an image unless something still uses it.
    fn remove_image(&self, id_or_reference: &str) -> Result<ImageRemoval, DockerError>;
    /// Creates (does not start) a replacement for `old` under `name`, running `new_image_id`;
    /// with `parent`, `old` is a follower and every reference it holds to the old parent
    /// (network, PID, IPC, `VolumesFrom`) points at the new one. Returns the new container's ID.
    fn create_replacement(
        &self,
        old: &ContainerSnapshot,
        old_image: &ImageDefaults,
        new_image_id: &str,
        name: &str,
        platform: Option<&str>,
        parent: Option<&NewParent>,
    ) -> Result<String, DockerError>;
    /// Files compose may have copied into `id` after creating it (configs and secrets with
    /// `content:` or `environment:` sources) at their default targets: added since create,
    /// under `/run/secrets/` or directly under `/`, outside mounts.
    fn injected_files(&self, id: &str) -> Result<Vec<String>, DockerError>;
    /// Copies the regular files at `paths` from container `from` into container `to` (which
    /// may be created and not yet started), keeping mode, owner and content. Paths missing in
    /// `from`, and directories, are skipped. Returns the paths copied.
    fn copy_paths(
        &self,
        from: &str,
        to: &str,
        paths: &[String],
    ) -> Result<Vec<String>, DockerError>;
    /// Stops a container (`timeout_secs` before SIGKILL; its own when `None`). Stopping a
    /// stopped container succeeds.
    fn stop_container(
        &self,
        id_or_name: &str,
        timeout_secs: Option<i64>,
    ) -> Result<(), DockerError>;
    /// Starts a container. Starting a running container succeeds.
    fn start_container(&self, id_or_name: &str) -> Result<(), DockerError>;
    /// Renames a container; a taken name is a conflict.
    fn rename_container(&self, id_or_name: &str, new_name: &str) -> Result<(), DockerError>;
    /// Removes a container (with `force` even when running).
    fn remove_container(
        &self,
        id_or_name: &str,
        remove_anonymous_volumes: bool,
        force: bool,
    ) -> Result<(), DockerError>;
}

impl Runtime for Docker {
    fn engine_info(&self) -> Result<EngineInfo, DockerError> {
        Docker::engine_info(self)
    }
    fn list_containers(&self, project: Option<&str>) -> Result<Vec<ContainerSummary>, DockerError> {
        Docker::list_containers(self, project)
    }
    fn inspect_container(&self, id_or_name: &str) -> Result<ContainerFacts, DockerError> {
        Docker::inspect_container(self, id_or_name)
    }
    fn snapshot_container(&self, id_or_name: &str) -> Result<ContainerSnapshot, DockerError> {
        Docker::snapshot_container(self, id_or_name)
    }
    fn inspect_image(&self, id_or_reference: &str) -> Result<Option<ImageFacts>, DockerError> {
        Docker::inspect_image(self, id_or_reference)
    }
    fn pull_by_digest(
        &self,
        repository: &str,
        digest: &str,
        platform: Option<&str>,
        registry_auth: Option<&str>,
    ) -> Result<ImageFacts, DockerError> {
        Docker::pull_by_digest(self, repository, digest, platform, registry_auth)
    }
    fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<(), DockerError> {
        Docker::tag_image(self, source, repo, tag)
    }
    fn remove_image(&self, id_or_reference: &str) -> Result<ImageRemoval, DockerError> {
        Docker::remove_image(self, id_or_reference)
    }
    fn create_replacement(
        &self,
        old: &ContainerSnapshot,
        old_image: &ImageDefaults,
        new_image_id: &str,
        name: &str,
        platform: Option<&str>,
        parent: Option<&NewParent>,
    ) -> Result<String, DockerError> {
        Docker::create_replacement(self, old, old_image, new_image_id, name, platform, parent)
    }
    fn injected_files(&self, id: &str) -> Result<Vec<String>, DockerError> {
        Docker::injected_files(self, id)
    }
    fn copy_paths(
        &self,
        from: &str,
        to: &str,
        paths: &[String],
    ) -> Result<Vec<String>, DockerError> {
        Docker::copy_paths(self, from, to, paths)
    }
    fn stop_container(
        &self,
        id_or_name: &str,
        timeout_secs: Option<i64>,
    ) -> Result<(), DockerError> {
        Docker::stop_container(self, id_or_name, timeout_secs)
    }
    fn start_container(&self, id_or_name: &str) -> Result<(), DockerError> {
        Docker::start_container(self, id_or_name)
    }
    fn rename_container(&self, id_or_name: &str, new_name: &str) -> Result<(), DockerError> {
        Docker::rename_container(self, id_or_name, new_name)
    }
    fn remove_container(
        &self,
        id_or_name: &str,
        remove_anonymous_volumes: bool,
        force: bool,
    ) -> Result<(), DockerError> {
        Docker::remove_container(self, id_or_name, remove_anonymous_volumes, force)
    }
}
