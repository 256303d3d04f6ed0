//! Which way a container's replacement is made ([`recreate_path`]): compose only when it is safe
//! — the CLI is there, the project's files are readable, one container for the service, and
//! compose's own dry run says the running containers match the files, so the update changes the
//! image and nothing else; otherwise the API recreate, with the reason said.

use crate::compose::{Compose, ProjectFiles};
use crate::engine::discover::Discovered;
use crate::labels;
use crate::runtime::Runtime;
use crate::state::ComposeStep;

/// How a container's replacement is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecreatePath {
    /// By compose, for these services.
    Compose(ComposeStep),
    /// Through the Docker API from the running container's configuration; the reason is
    /// empty for containers compose does not manage.
    Api(String),
    /// Compose is asked at update time (`plan` does not move tags to ask it now).
    AtUpdate(String),
}

impl RecreatePath {
    /// Why a compose container is not recreated by compose, if it is one.
    pub fn fallback_reason(&self) -> Option<&str> {
        match self {
            RecreatePath::Api(reason) if !reason.is_empty() => Some(reason),
            _ => None,
        }
    }
}

/// Decides how `c` will be recreated. Runs compose's dry run, so it must run before the tag
/// moves. Compose judges the service by the image its tag names; when the tag no longer names
/// the running image (removed, or pulled over by hand), `retag` (repository, tag) points it
/// back first — the update moves it anyway — and without it (`plan`) the verdict is left to
/// update time.
pub fn recreate_path(
    runtime: &dyn Runtime,
    compose: Option<&dyn Compose>,
    c: &Discovered,
    retag: Option<(&str, &str)>,
) -> RecreatePath {
    let (Some(project), Some(service)) = (&c.project, &c.service) else {
        return RecreatePath::Api(String::new());
    };
    let Some(compose) = compose else {
        return RecreatePath::Api(
            "compose cannot be used (PP_COMPOSE is off or no compose v2 CLI was found): \
             recreating it from its running configuration"
                .into(),
        );
    };
    if let Err(why) = compose.available() {
        return RecreatePath::Api(format!(
            "compose cannot be used ({why}): recreating it from its running configuration"
        ));
    }
    let oneshot = !c.running && is_completed_oneshot(runtime, &c.id);
    if !c.running && !oneshot {
        return RecreatePath::Api(
            "it is stopped, and compose would start it: recreating it from its running \
             configuration, not started"
                .into(),
        );
    }
    let files = match ProjectFiles::from_labels(&c.labels) {
        Ok(files) => files,
        Err(why) => {
            return RecreatePath::Api(format!(
                "compose cannot be used ({why}): keeping the running configuration"
            ));
        }
    };
    let siblings = match runtime.list_containers(Some(project)) {
        Ok(all) => all,
        Err(e) => return RecreatePath::Api(format!("listing project {project} failed ({e})")),
    };
    let of_service = |s: &str| {
        siblings
            .iter()
            .filter(|x| x.labels.get(labels::COMPOSE_SERVICE).map(String::as_str) == Some(s))
            .filter(|x| x.labels.get(labels::COMPOSE_ONEOFF).map(String::as_str) != Some("True"))
            .count()
    };
    let count = of_service(service);
    if count != 1 {
        return RecreatePath::Api(format!(
            "compose service {service} has {count} containers and compose would recreate them \
             all: recreating this one from its running configuration"
        ));
    }
    let dependents = match compose.dependents(&files, service) {
        Ok(d) => d,
        Err(e) => {
            return RecreatePath::Api(format!(
                "compose could not read project {project} ({e:#}): keeping the running \
                 configuration"
            ));
        }
    };
    let tagged = runtime
        .inspect_image(&c.observed.config_image)
        .ok()
        .flatten()
        .map(|i| i.id);
    if tagged.as_deref() != Some(c.image_id.as_str()) {
        let Some((repository, tag)) = retag else {
            return RecreatePath::AtUpdate(format!(
                "{} does not name the image it runs any more, so compose is asked at update \
                 time",
                c.observed.config_image
            ));
        };
        if let Err(e) = runtime.tag_image(&c.image_id, repository, tag) {
            return RecreatePath::Api(format!(
                "pointing {repository}:{tag} at the running image for compose's verdict failed \
                 ({e}): recreating it from its running configuration"
            ));
        }
    }
    // Only services that have a container move; naming one without would create it.
    let mut services = vec![service.clone()];
    services.extend(dependents.into_iter().filter(|d| of_service(d) > 0));
    let changes = compose.changes(&files, &services).map(|mut changes| {
        // `up` runs a finished one-shot job again, as `docker compose up -d` does.
        if oneshot {
            changes.retain(|ch| !(ch.container == c.name && ch.status.starts_with("Start")));
        }
        changes
    });
    match changes {
        Ok(changes) if changes.is_empty() => RecreatePath::Compose(ComposeStep {
            project: files.name,
            working_dir: files.working_dir,
            config_files: files.config_files,
            env_files: files.env_files,
            services,
        }),
        Ok(changes) => {
            let what: Vec<String> = changes
                .iter()
                .map(|ch| format!("{} ({})", ch.container, ch.status.to_lowercase()))
                .collect();
            RecreatePath::Api(format!(
                "compose file changed since `up`: keeping the running configuration (compose \
                 would change {})",
                what.join(", ")
            ))
        }
        Err(e) => RecreatePath::Api(format!(
            "compose's dry run failed ({e:#}): keeping the running configuration"
        )),
    }
}

/// A job that ran to its end: exited 0, and compose's `restart: "no"`. Compose's `up -d` runs
/// it again on the new image, and so does the compose path.
fn is_completed_oneshot(runtime: &dyn Runtime, id: &str) -> bool {
    let Ok(facts) = runtime.inspect_container(id) else {
        return false;
    };
    let policy = runtime.snapshot_container(id).ok().and_then(|s| {
        s.inspect()
            .host_config
            .as_ref()
            .and_then(|h| h.restart_policy.as_ref())
            .and_then(|p| p.name)
    });
    let no_restart = policy.is_none_or(|p| {
        matches!(
            p,
            bollard::models::RestartPolicyNameEnum::NO
                | bollard::models::RestartPolicyNameEnum::EMPTY
        )
    });
    !facts.running && facts.exit_code == 0 && no_restart
}
