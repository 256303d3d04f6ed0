//! Container calls of the facade: list, inspect, snapshot, stop, start, rename, remove.
//!
//! Owns: the bollard container endpoints and their options. Must not: decide what to update,
//! retry, or swallow an error; each failure comes back as a [`DockerError`] naming the container.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::ChangeType;
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder, StartContainerOptions,
    StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt as _;

use super::error::Op;
use super::types::{self, COMPOSE_PROJECT_LABEL};
use super::{
    ContainerFacts, ContainerSnapshot, ContainerSummary, Docker, DockerError, archive,
    request_modifier,
};

/// Where compose puts a secret whose target is not absolute (and every default target).
const SECRETS_DIR: &str = "/run/secrets/";

fn container(id_or_name: &str) -> String {
    format!("container {id_or_name:?}")
}

impl Docker {
    /// All containers, running or not (`docker ps -a`), sorted by name; only those of compose
    /// project `project` when given.
    pub fn list_containers(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<ContainerSummary>, DockerError> {
        let mut builder = ListContainersOptionsBuilder::new().all(true);
        let object = match project {
            Some(p) => {
                let filters =
                    HashMap::from([("label", vec![format!("{COMPOSE_PROJECT_LABEL}={p}")])]);
                builder = builder.filters(&filters);
                format!("containers of compose project {p:?}")
            }
            None => "containers".to_owned(),
        };
        let op = Op::new("listing", object);
        let listed = self.run(
            &op,
            self.limits.call,
            self.api.list_containers(Some(builder.build())),
        )?;
        let mut summaries: Vec<ContainerSummary> =
            listed.iter().map(types::container_summary).collect();
        summaries.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        Ok(summaries)
    }

    /// The facts of one container. A missing container is [`DockerError::NotFound`].
    pub fn inspect_container(&self, id_or_name: &str) -> Result<ContainerFacts, DockerError> {
        Ok(self.snapshot_container(id_or_name)?.facts())
    }

    /// The full inspect data of one container, for a faithful recreate and for the journal.
    pub fn snapshot_container(&self, id_or_name: &str) -> Result<ContainerSnapshot, DockerError> {
        let op = Op::new("inspecting", container(id_or_name));
        let inspect = self.run(
            &op,
            self.limits.call,
            self.api
                .inspect_container(id_or_name, None::<InspectContainerOptions>),
        )?;
        if inspect.id.as_deref().is_none_or(str::is_empty) {
            return Err(DockerError::Protocol {
                endpoint: self.endpoint.clone(),
                action: op.action,
                message: "the answer has no container ID".to_owned(),
            });
        }
        Ok(ContainerSnapshot::new(inspect))
    }

    /// Stops a container, giving it `timeout_secs` (the container's own stop timeout when
    /// `None`) before SIGKILL. Stopping a stopped container succeeds.
    pub fn stop_container(
        &self,
        id_or_name: &str,
        timeout_secs: Option<i64>,
    ) -> Result<(), DockerError> {
        let op = Op::new("stopping", container(id_or_name));
        let mut builder = StopContainerOptionsBuilder::new();
        // Docker's own default grace is 10 s; a container may configure more, which we cannot
        // see here, so allow for a generous one when none is given.
        let grace = match timeout_secs {
            Some(t) => {
                let t = i32::try_from(t.max(0)).unwrap_or(i32::MAX);
                builder = builder.t(t);
                Duration::from_secs(u64::try_from(t).unwrap_or(0))
            }
            None => Duration::from_secs(5 * 60),
        };
        self.run(
            &op,
            self.limits.call + grace,
            self.api.stop_container(id_or_name, Some(builder.build())),
        )
    }

    /// Starts a container. Starting a running container succeeds.
    pub fn start_container(&self, id_or_name: &str) -> Result<(), DockerError> {
        let op = Op::new("starting", container(id_or_name));
        self.run(
            &op,
            self.limits.call,
            self.api
                .start_container(id_or_name, None::<StartContainerOptions>),
        )
    }

    /// Renames a container. A taken name is a conflict ([`DockerError::is_conflict`]).
    pub fn rename_container(&self, id_or_name: &str, new_name: &str) -> Result<(), DockerError> {
        let op = Op {
            action: format!("renaming {} to {new_name:?}", container(id_or_name)),
            object: container(id_or_name),
        };
        let options = RenameContainerOptionsBuilder::new().name(new_name).build();
        self.run(
            &op,
            self.limits.call,
            self.api.rename_container(id_or_name, options),
        )
    }

    /// Removes a container; with `remove_anonymous_volumes` also its anonymous volumes (named
    /// volumes are never removed); with `force` even when running.
    pub fn remove_container(
        &self,
        id_or_name: &str,
        remove_anonymous_volumes: bool,
        force: bool,
    ) -> Result<(), DockerError> {
        let op = Op::new("removing", container(id_or_name));
        let options = RemoveContainerOptionsBuilder::new()
            .v(remove_anonymous_volumes)
            .force(force)
            .build();
        self.run(
            &op,
            self.limits.call,
            self.api.remove_container(id_or_name, Some(options)),
        )
    }

    /// Paths in `id`'s own filesystem that compose may have injected after create: added since
    /// create (`docker diff` kind A) at compose's default targets — under `/run/secrets/`
    /// (secrets) or directly under `/` (configs) — and not inside a mount (a `file:` secret is
    /// a bind mount: its content is in the new container's config already, and copying it
    /// would write the secret into the container's layer). See [`injected_candidates`].
    pub fn injected_files(&self, id: &str) -> Result<Vec<String>, DockerError> {
        let snapshot = self.snapshot_container(id)?;
        let mounts: Vec<String> = snapshot
            .inspect()
            .mounts
            .iter()
            .flatten()
            .filter_map(|m| m.destination.clone())
            .collect();
        let op = Op::new("listing the files added to", container(id));
        let changes = self
            .run(&op, self.limits.call, self.api.container_changes(id))?
            .unwrap_or_default();
        let added: Vec<&str> = changes
            .iter()
            .filter(|c| c.kind == ChangeType::_1)
            .map(|c| c.path.as_str())
            .collect();
        Ok(injected_candidates(&added, &mounts))
    }

    /// Copies each regular file at `paths` from container `from` into container `to` (same
    /// path, mode, owner and content), through the archive API; `to` may be created and not
    /// yet started. Paths missing in `from`, and directories, are skipped. Returns the paths
    /// copied.
    pub fn copy_paths(
        &self,
        from: &str,
        to: &str,
        paths: &[String],
    ) -> Result<Vec<String>, DockerError> {
        let mut copied = Vec::new();
        for path in paths {
            let op = Op::new("reading", format!("{path} in {}", container(from)));
            let options = DownloadFromContainerOptionsBuilder::new()
                .path(path)
                .build();
            let tar = match self.collect(&op, self.api.download_from_container(from, Some(options)))
            {
                Ok(tar) => tar,
                Err(e) if e.is_not_found() => {
                    log::debug!("{path} is not in {}; nothing to copy.", container(from));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if archive::first_is_file(&tar) != Some(true) {
                log::debug!("{path} in {} is not a file; not copied.", container(from));
                continue;
            }
            let parent = path
                .trim_start_matches('/')
                .rsplit_once('/')
                .map_or("", |(dir, _)| dir);
            let op = Op::new("copying", format!("{path} into {}", container(to)));
            let rebased =
                archive::rebase(&tar, parent).map_err(|message| DockerError::Protocol {
                    endpoint: self.endpoint.clone(),
                    action: op.action.clone(),
                    message,
                })?;
            let options = UploadToContainerOptionsBuilder::new().path("/").build();
            self.run(
                &op,
                self.limits.call,
                self.api
                    .upload_to_container(to, Some(options), bollard::body_full(rebased.into())),
            )?;
            copied.push(path.clone());
        }
        Ok(copied)
    }

    /// Collects a byte stream (an archive download) within the call budget.
    fn collect<B: AsRef<[u8]>>(
        &self,
        op: &Op,
        stream: impl futures_util::Stream<Item = Result<B, bollard::errors::Error>>,
    ) -> Result<Vec<u8>, DockerError> {
        self.run(op, self.limits.call, async move {
            let mut stream = std::pin::pin!(stream);
            let mut all = Vec::new();
            while let Some(chunk) = stream.next().await {
                all.extend_from_slice(chunk?.as_ref());
            }
            Ok(all)
        })
    }

    /// The raw body of `GET path_and_query` (a versioned path such as `/v1.51/containers/x/json`)
    /// for the fields bollard's models no longer carry. bollard has no raw GET; its archive
    /// download is the one call that hands the body back untouched, so it is borrowed here with
    /// its URI replaced (scheme and authority, i.e. the socket, are kept).
    pub(crate) fn raw_get(&self, op: &Op, path_and_query: &str) -> Result<Vec<u8>, DockerError> {
        let versioned = request_modifier(self.api_version, None);
        let target = path_and_query.to_owned();
        let api = self.api.clone().with_request_modifier(move |request| {
            let mut request = versioned(request);
            let uri = request.uri();
            if let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority())
                && let Ok(uri) = format!("{scheme}://{authority}{target}").parse()
            {
                *request.uri_mut() = uri;
            }
            request
        });
        self.collect(op, api.download_from_container("-", None))
    }
}

/// The injected-file candidates among the paths `docker diff` reports as added: at compose's
/// default targets (`/run/secrets/…` for secrets, `/<name>` for configs), outside every mount
/// destination. Files at custom targets elsewhere cannot be told apart from what the
/// application wrote, so the caller names those (from the compose model) itself.
pub(crate) fn injected_candidates(added: &[&str], mount_destinations: &[String]) -> Vec<String> {
    let in_mount = |path: &str| {
        mount_destinations.iter().any(|m| {
            let m = m.trim_end_matches('/');
            path == m
                || path
                    .strip_prefix(m)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    };
    let mut paths: Vec<String> = added
        .iter()
        .filter(|p| {
            let secret = p
                .strip_prefix(SECRETS_DIR)
                .is_some_and(|rest| !rest.is_empty());
            let config = p
                .strip_prefix('/')
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
            (secret || config) && !in_mount(p)
        })
        .map(|p| (*p).to_owned())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}
