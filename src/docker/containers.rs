//! Container calls of the facade: list, inspect, snapshot, stop, start, rename, remove.
//!
//! Owns: the bollard container endpoints and their options. Must not: decide what to update,
//! retry, or swallow an error; each failure comes back as a [`DockerError`] naming the container.

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    RenameContainerOptionsBuilder, StartContainerOptions, StopContainerOptionsBuilder,
};
use futures_util::StreamExt as _;

use super::error::Op;
use super::types::{self, COMPOSE_PROJECT_LABEL};
use super::{
    ContainerFacts, ContainerSnapshot, ContainerSummary, Docker, DockerError, request_modifier,
};

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

    /// Collects a byte stream within the call budget.
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
