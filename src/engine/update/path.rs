//! Which way a container's replacement is made ([`recreate_path`]): compose only when it is safe
//! — the CLI is there, the project's files are readable, one container for the service, and
//! compose's own dry run says the running containers match the files, so the update changes the
//! image and nothing else; otherwise the API recreate, with the reason said.

use crate::compose::{Compose, ProjectFiles};
use crate::docker::ContainerSummary;
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
    recreate_paths(runtime, compose, &[c], retag)
        .pop()
        .unwrap_or_else(|| RecreatePath::Api(String::new()))
}

/// [`recreate_path`] for several containers at once (`plan`): compose reads each project's
/// model once and runs one dry run per project, whatever the number of containers.
pub fn recreate_paths(
    runtime: &dyn Runtime,
    compose: Option<&dyn Compose>,
    cs: &[&Discovered],
    retag: Option<(&str, &str)>,
) -> Vec<RecreatePath> {
    // Each project's containers, listed once.
    let mut listed: Vec<(String, Result<Vec<ContainerSummary>, String>)> = Vec::new();
    let mut paths: Vec<Result<Ready, RecreatePath>> = Vec::new();
    for c in cs {
        let siblings = match &c.project {
            Some(project) => {
                if !listed.iter().any(|(p, _)| p == project) {
                    let all = runtime
                        .list_containers(Some(project))
                        .map_err(|e| format!("listing project {project} failed ({e})"));
                    listed.push((project.clone(), all));
                }
                match &listed.iter().find(|(p, _)| p == project).expect("listed").1 {
                    Ok(all) => Ok(all.as_slice()),
                    Err(why) => Err(why.clone()),
                }
            }
            None => Ok(&[][..]),
        };
        paths.push(match siblings {
            Ok(siblings) => precheck(runtime, compose, c, siblings, retag),
            Err(why) => Err(RecreatePath::Api(why)),
        });
    }
    let Some(compose) = compose else {
        return paths
            .into_iter()
            .map(|p| p.err().expect("no compose, no ready"))
            .collect();
    };
    // One dry run per project, over every service that would move.
    let mut projects: Vec<(ProjectFiles, Vec<String>)> = Vec::new();
    for ready in paths.iter().flatten() {
        let at = projects
            .iter()
            .position(|(f, _)| *f == ready.files)
            .unwrap_or_else(|| {
                projects.push((ready.files.clone(), Vec::new()));
                projects.len() - 1
            });
        let services = &mut projects[at].1;
        for s in &ready.services {
            if !services.contains(s) {
                services.push(s.clone());
            }
        }
    }
    let verdicts: Vec<_> = projects
        .into_iter()
        .map(|(files, services)| {
            let changes = compose.changes(&files, &services);
            (files, changes)
        })
        .collect();
    paths
        .drain(..)
        .zip(cs)
        .map(|(path, c)| {
            let ready = path?;
            let changes = match verdicts.iter().find(|(f, _)| *f == ready.files) {
                Some((_, Ok(changes))) => changes,
                Some((_, Err(e))) => {
                    return Err(RecreatePath::Api(format!(
                        "compose's dry run failed ({e:#}): keeping the running configuration"
                    )));
                }
                None => unreachable!("every ready container's project was dry-run"),
            };
            let mine: Vec<String> = changes
                .iter()
                .filter(|ch| ready.containers.contains(&ch.container))
                // `up` runs a finished one-shot job again, as `docker compose up -d` does.
                .filter(|ch| {
                    !(ready.oneshot && ch.container == c.name && ch.status.starts_with("Start"))
                })
                .map(|ch| format!("{} ({})", ch.container, ch.status.to_lowercase()))
                .collect();
            if mine.is_empty() {
                Ok(RecreatePath::Compose(ComposeStep {
                    project: ready.files.name.clone(),
                    working_dir: ready.files.working_dir.clone(),
                    config_files: ready.files.config_files.clone(),
                    env_files: ready.files.env_files.clone(),
                    services: ready.services,
                }))
            } else {
                Err(RecreatePath::Api(format!(
                    "compose file changed since `up`: keeping the running configuration \
                     (compose would change {})",
                    mine.join(", ")
                )))
            }
        })
        .map(|r| r.unwrap_or_else(|path| path))
        .collect()
}

/// A container that may go the compose way, pending compose's verdict.
struct Ready {
    files: ProjectFiles,
    /// The service first, then those that move with it.
    services: Vec<String>,
    /// The containers of those services, as compose names them.
    containers: Vec<String>,
    oneshot: bool,
}

/// Everything but compose's verdict: the CLI, the container's state, the files, the scale, the
/// tag, the services that move with it.
fn precheck(
    runtime: &dyn Runtime,
    compose: Option<&dyn Compose>,
    c: &Discovered,
    siblings: &[ContainerSummary],
    retag: Option<(&str, &str)>,
) -> Result<Ready, RecreatePath> {
    let (Some(project), Some(service)) = (&c.project, &c.service) else {
        return Err(RecreatePath::Api(String::new()));
    };
    let Some(compose) = compose else {
        return Err(RecreatePath::Api(
            "compose cannot be used (PP_COMPOSE is off or no compose v2 CLI was found): \
             recreating it from its running configuration"
                .into(),
        ));
    };
    if let Err(why) = compose.available() {
        return Err(RecreatePath::Api(format!(
            "compose cannot be used ({why}): recreating it from its running configuration"
        )));
    }
    let oneshot = !c.running && is_completed_oneshot(runtime, &c.id);
    if !c.running && !oneshot {
        return Err(RecreatePath::Api(
            "it is stopped, and compose would start it: recreating it from its running \
             configuration, not started"
                .into(),
        ));
    }
    let files = ProjectFiles::from_labels(&c.labels).map_err(|why| {
        RecreatePath::Api(format!(
            "compose cannot be used ({why}): keeping the running configuration"
        ))
    })?;
    let names_of = |s: &str| -> Vec<String> {
        siblings
            .iter()
            .filter(|x| x.labels.get(labels::COMPOSE_SERVICE).map(String::as_str) == Some(s))
            .filter(|x| x.labels.get(labels::COMPOSE_ONEOFF).map(String::as_str) != Some("True"))
            .map(|x| x.name.clone())
            .collect()
    };
    let count = names_of(service).len();
    if count != 1 {
        return Err(RecreatePath::Api(format!(
            "compose service {service} has {count} containers and compose would recreate them \
             all: recreating this one from its running configuration"
        )));
    }
    let tagged = runtime
        .inspect_image(&c.observed.config_image)
        .ok()
        .flatten()
        .map(|i| i.id);
    if tagged.as_deref() != Some(c.image_id.as_str()) {
        let Some((repository, tag)) = retag else {
            return Err(RecreatePath::AtUpdate(format!(
                "{} does not name the image it runs any more, so compose is asked at update \
                 time",
                c.observed.config_image
            )));
        };
        if let Err(e) = runtime.tag_image(&c.image_id, repository, tag) {
            return Err(RecreatePath::Api(format!(
                "pointing {repository}:{tag} at the running image for compose's verdict failed \
                 ({e}): recreating it from its running configuration"
            )));
        }
    }
    let dependents = compose.dependents(&files, service).map_err(|e| {
        RecreatePath::Api(format!(
            "compose could not read project {project} ({e:#}): keeping the running \
             configuration"
        ))
    })?;
    // Only services that have a container move; naming one without would create it.
    let mut services = vec![service.clone()];
    services.extend(dependents.into_iter().filter(|d| !names_of(d).is_empty()));
    let containers = services.iter().flat_map(|s| names_of(s)).collect();
    Ok(Ready {
        files,
        services,
        containers,
        oneshot,
    })
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
