//! After `pin --compose` or `unpin --compose` changed a service's image line: compose recreates
//! the service on the same image (gated), so the operator's next `docker compose up -d` has
//! nothing left to do ([`Executor::refresh_after_edit`]).

use anyhow::{Context, Result, bail};

use super::Executor;
use super::gate::Verdict;
use crate::compose::ProjectFiles;
use crate::engine::discover::Discovered;
use crate::labels;
use crate::state::ComposeStep;

/// What `pin --compose`/`unpin --compose` leave behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Compose recreated the service (same image) and it passed the health gate.
    Recreated,
    /// Compose was not run; the next `docker compose up -d` recreates the service. Why.
    Left(String),
}

impl Executor<'_> {
    /// After `pin --compose` or `unpin --compose` changed only the service's image line, its
    /// compose model no longer matches the container (same image, new config hash), so the
    /// next `docker compose up -d` would restart it. Runs the compose step now — the service
    /// and what moves with it, nothing else — and gates it, so compose is quiet again.
    pub fn refresh_after_edit(&self, c: &Discovered) -> Result<Refresh> {
        let (Some(project), Some(service)) = (&c.project, &c.service) else {
            return Ok(Refresh::Left("it is not a compose service".into()));
        };
        let Some(compose) = self.compose else {
            return Ok(Refresh::Left(
                "compose cannot be used (PP_COMPOSE is off)".into(),
            ));
        };
        if let Err(why) = compose.available() {
            return Ok(Refresh::Left(format!("compose cannot be used ({why})")));
        }
        if !c.running {
            return Ok(Refresh::Left("it is stopped".into()));
        }
        let files = match ProjectFiles::from_labels(&c.labels) {
            Ok(files) => files,
            Err(why) => return Ok(Refresh::Left(format!("compose cannot be used ({why})"))),
        };
        let siblings = self.runtime.list_containers(Some(project))?;
        let names_of = |s: &str| -> Vec<String> {
            siblings
                .iter()
                .filter(|x| x.labels.get(labels::COMPOSE_SERVICE).map(String::as_str) == Some(s))
                .map(|x| x.name.clone())
                .collect()
        };
        if names_of(service).len() != 1 {
            return Ok(Refresh::Left(format!(
                "compose service {service} has {} containers",
                names_of(service).len()
            )));
        }
        let mut services = vec![service.clone()];
        services.extend(
            compose
                .dependents(&files, service)?
                .into_iter()
                .filter(|d| !names_of(d).is_empty()),
        );
        let moving: Vec<String> = services.iter().flat_map(|s| names_of(s)).collect();
        let changes = match compose.changes(&files, &services) {
            Ok(changes) => changes,
            Err(e) => return Ok(Refresh::Left(format!("compose's dry run failed ({e:#})"))),
        };
        let unexpected: Vec<String> = changes
            .into_iter()
            // A dry run names the replacement by its temporary `<id>_<name>` after `Recreate`.
            .filter(|ch| {
                let replacement = ch
                    .container
                    .split_once('_')
                    .is_some_and(|(id, name)| id.len() == 12 && moving.iter().any(|m| m == name));
                !((ch.status == "Recreate" && moving.contains(&ch.container)) || replacement)
            })
            .map(|ch| format!("{} ({})", ch.container, ch.status.to_lowercase()))
            .collect();
        if !unexpected.is_empty() {
            return Ok(Refresh::Left(format!(
                "compose would also change {}, which the edit did not ask for",
                unexpected.join(", ")
            )));
        }
        let step = ComposeStep {
            project: files.name,
            working_dir: files.working_dir,
            config_files: files.config_files,
            env_files: files.env_files,
            services,
        };
        self.compose_step(&c.name, &step, true)?;
        let now = self
            .runtime
            .inspect_container(&c.name)
            .with_context(|| format!("compose left no container named {}", c.name))?;
        if now.image_id != c.image_id {
            bail!(
                "compose made {} from image {} instead of {}: the tag moved meanwhile; run \
                 `pullpilot plan` to see where it stands",
                c.name,
                now.image_id,
                c.image_id
            );
        }
        if let Verdict::Fail(reason) = self.gate(&now.id, self.policy_of(&now.id))? {
            bail!(
                "{} did not come back healthy after compose recreated it on the same image \
                 ({reason}); check `docker logs {}`",
                c.name,
                c.name
            );
        }
        if let Verdict::Fail(reason) = self.compose_followers(&c.name, &step)? {
            bail!("{reason}");
        }
        Ok(Refresh::Recreated)
    }
}
