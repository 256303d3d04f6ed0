//! The compose path: for a container compose manages, compose makes the replacement, so it is
//! exactly what `docker compose up -d` would make (mac addresses, injected configs and secrets,
//! `post_start`/`pre_stop` hooks, `service:` followers with the right config hash, `depends_on`
//! restarts, …). pullpilot keeps the protocol around it: the soaked digest is pulled first,
//! the intent journaled, then the tag moves and compose runs `up -d --no-deps --no-build
//! --pull never SERVICE DEPENDENTS…`; the replacement is gated, and rollback is the tag back
//! plus the same step.
//!
//! [`recreate_path`] decides which way a container goes: compose only when it is safe (the CLI is
//! there, the project's files are readable, one container for the service, and compose's own
//! dry run says the running containers match the files — so the update changes the image and
//! nothing else); otherwise the API recreate, with the reason said.

use anyhow::{Context, Result, bail};

use super::gate::{GatePolicy, Verdict};
use super::{Executor, UpdateOutcome};
use crate::compose::{Compose, ProjectFiles};
use crate::engine::discover::Discovered;
use crate::fault;
use crate::labels;
use crate::runtime::Runtime;
use crate::state::{ComposeStep, JournalEntry, Phase, State, record};

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

/// What `pin --compose`/`unpin --compose` leave behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Compose recreated the service (same image) and it passed the health gate.
    Recreated,
    /// Compose was not run; the next `docker compose up -d` recreates the service. Why.
    Left(String),
}

fn files_of(step: &ComposeStep) -> ProjectFiles {
    ProjectFiles {
        name: step.project.clone(),
        working_dir: step.working_dir.clone(),
        config_files: step.config_files.clone(),
        env_files: step.env_files.clone(),
    }
}

impl Executor<'_> {
    fn compose(&self) -> Result<&dyn Compose> {
        self.compose
            .context("this update was started with compose, which is not available now")
    }

    /// Runs the compose step for `entry`: first gives back their names to containers a killed
    /// compose left under its temporary `<id>_<name>`, then `up`.
    fn compose_step(&self, entry: &JournalEntry, step: &ComposeStep, start: bool) -> Result<()> {
        self.rename_leftovers(step)?;
        log::info!(
            "Recreating {} with compose ({}).",
            entry.name,
            step.services.join(", ")
        );
        self.compose()?
            .up(&files_of(step), &step.services, start)
            .with_context(|| format!("compose could not recreate {}", entry.name))
    }

    /// Compose renames the replacement to the service's name as its last step; a container of
    /// the project still called `<12 hex>_<name>` with no `<name>` beside it was left by a
    /// killed compose and gets its name back (compose itself would not rename it).
    fn rename_leftovers(&self, step: &ComposeStep) -> Result<()> {
        for c in self.runtime.list_containers(Some(&step.project))? {
            let Some((prefix, name)) = c.name.split_once('_') else {
                continue;
            };
            let temporary = prefix.len() == 12
                && prefix.bytes().all(|b| b.is_ascii_hexdigit())
                && !name.is_empty();
            if !temporary || self.runtime.inspect_container(name).is_ok() {
                continue;
            }
            log::warn!(
                "Giving {} its name {name} back (left by an interrupted compose).",
                c.name
            );
            self.runtime.rename_container(&c.id, name)?;
        }
        Ok(())
    }

    /// The update of `c` through compose, from the journaled intent on.
    pub(super) fn compose_update(
        &self,
        state: &mut State,
        c: &Discovered,
        entry: &JournalEntry,
    ) -> Result<UpdateOutcome> {
        let step = entry.compose.clone().expect("a compose entry");
        record::journal_intent(state, entry.clone());
        if let Err(e) = self.save(state) {
            record::journal_done(state, &c.name);
            return Err(e.context("recording the update in the journal"));
        }
        fault::point("after-journal");
        self.runtime
            .tag_image(&entry.new_image_id, &entry.repository, &entry.tag)?;
        fault::point("before-compose");
        let started = std::time::Instant::now();
        self.compose_step(entry, &step, true)?;
        let new_id = self.replacement(entry)?;
        log::info!(
            "{}: compose replaced the container in {} ms.",
            c.name,
            started.elapsed().as_millis()
        );
        self.set_phase(state, &c.name, Phase::Started, Some(&new_id))?;
        fault::point("after-compose");
        let entry = super::journal_entry(state, &c.name);
        if !entry.was_running {
            let verdict = self.gate_oneshot(&new_id);
            return Ok(self.settle(state, &entry, &new_id, verdict));
        }
        let gate = GatePolicy::merge(&c.observed.labels.policy, &self.knobs);
        Ok(self.gate_and_settle(state, &entry, &new_id, gate))
    }

    /// The gate of a one-shot job compose ran again: it must end with exit code 0 (or still
    /// be running when the health timeout is up).
    fn gate_oneshot(&self, id: &str) -> Result<Verdict> {
        let started = std::time::Instant::now();
        loop {
            let facts = self.runtime.inspect_container(id)?;
            fault::point("during-gate");
            if !facts.running {
                return Ok(if facts.exit_code == 0 {
                    Verdict::Pass
                } else {
                    Verdict::Fail(format!(
                        "the one-shot job exited with code {}",
                        facts.exit_code
                    ))
                });
            }
            if started.elapsed() >= self.knobs.health_timeout {
                return Ok(Verdict::Pass);
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }

    /// The container compose made for `entry`: under its name, not the old one, on the image
    /// the update wanted.
    fn replacement(&self, entry: &JournalEntry) -> Result<String> {
        let now = self
            .runtime
            .inspect_container(&entry.name)
            .with_context(|| format!("compose left no container named {}", entry.name))?;
        if now.id == entry.old_id {
            bail!(
                "compose did not recreate {} (it still runs its old container)",
                entry.name
            );
        }
        if now.image_id != entry.new_image_id {
            bail!(
                "compose made {} from image {} instead of {}: the tag moved while updating \
                 (another pull?)",
                entry.name,
                now.image_id,
                entry.new_image_id
            );
        }
        Ok(now.id)
    }

    /// Heals an interrupted compose update: the same step again (it converges whatever compose
    /// had done when it was killed), then the gate; a passed one is finished.
    pub fn heal_compose(&self, state: &mut State, entry: &JournalEntry) -> UpdateOutcome {
        if entry.phase == Phase::Passed {
            return match self.finish(state, entry) {
                Ok(()) => UpdateOutcome::Updated {
                    from: entry.previous_digest.clone(),
                    to: entry.digest.clone(),
                },
                Err(e) => UpdateOutcome::ActionNeeded {
                    reason: format!("finishing the update failed: {e:#}"),
                },
            };
        }
        let step = entry.compose.clone().expect("a compose entry");
        let redone = (|| -> Result<String> {
            self.runtime
                .tag_image(&entry.new_image_id, &entry.repository, &entry.tag)?;
            self.compose_step(entry, &step, true)?;
            let new_id = self.replacement(entry)?;
            self.set_phase(state, &entry.name, Phase::Started, Some(&new_id))?;
            Ok(new_id)
        })();
        match redone {
            Ok(new_id) => {
                let entry = super::journal_entry(state, &entry.name);
                if !entry.was_running {
                    let verdict = self.gate_oneshot(&new_id);
                    return self.settle(state, &entry, &new_id, verdict);
                }
                let gate = self.policy_of(&new_id);
                self.gate_and_settle(state, &entry, &new_id, gate)
            }
            Err(e) => match self.restore(state, entry) {
                Ok(()) => UpdateOutcome::Failed {
                    reason: format!(
                        "an earlier run was interrupted and finishing it failed ({e:#}); the \
                         previous image runs again and the update will be tried again"
                    ),
                },
                Err(r) => UpdateOutcome::ActionNeeded {
                    reason: format!("{e:#}; restoring the previous image failed too ({r:#})"),
                },
            },
        }
    }

    /// Rollback on the compose path: the tag back at the old image and the same compose step,
    /// so compose recreates the services as they were. Idempotent.
    pub(super) fn compose_restore(
        &self,
        state: &mut State,
        entry: &JournalEntry,
        step: &ComposeStep,
    ) -> Result<()> {
        self.runtime
            .tag_image(&entry.old_image_id, &entry.repository, &entry.tag)
            .context("pointing the tag back at the old image")?;
        // A one-shot job is not run again on the image it already ran.
        self.compose_step(entry, step, entry.was_running)?;
        let now = self
            .runtime
            .inspect_container(&entry.name)
            .with_context(|| format!("compose left no container named {}", entry.name))?;
        if now.image_id != entry.old_image_id {
            bail!(
                "compose made {} from image {} instead of the previous {}",
                entry.name,
                now.image_id,
                entry.old_image_id
            );
        }
        if entry.was_running && !now.running {
            bail!("{} did not start again on its previous image", entry.name);
        }
        record::journal_done(state, &entry.name);
        match self.save(state) {
            Ok(()) => log::warn!("{} runs its previous image again.", entry.name),
            Err(e) => log::error!(
                "{} runs its previous image again, but its journal entry could not be cleared \
                 ({e:#}); the next run clears it.",
                entry.name
            ),
        }
        Ok(())
    }

    /// The gate policy of a container from its labels (the image's own are not the operator's).
    fn policy_of(&self, id: &str) -> GatePolicy {
        let labels = self
            .runtime
            .inspect_container(id)
            .map(|f| (f.labels, f.image_id))
            .ok();
        let (labels, image_id) = labels.unwrap_or_default();
        let image_labels = self
            .runtime
            .inspect_image(&image_id)
            .ok()
            .flatten()
            .map(|i| i.config.labels)
            .unwrap_or_default();
        GatePolicy::from_labels(&labels, &image_labels, &self.knobs)
    }

    /// After the updated service passed its gate: the other services compose moved with it
    /// must be running (and healthy, if they have a healthcheck) when they ran before.
    pub(super) fn compose_followers(
        &self,
        entry: &JournalEntry,
        step: &ComposeStep,
    ) -> Result<Verdict> {
        for service in step.services.iter().skip(1) {
            let Some(c) = self
                .runtime
                .list_containers(Some(&step.project))?
                .into_iter()
                .find(|c| c.labels.get(labels::COMPOSE_SERVICE) == Some(service))
            else {
                continue;
            };
            if let Verdict::Fail(reason) = self.gate(&c.id, self.policy_of(&c.id))? {
                return Ok(Verdict::Fail(format!(
                    "{} (which compose moved with {}) failed: {reason}",
                    c.name, entry.name
                )));
            }
        }
        Ok(Verdict::Pass)
    }
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
        let entry = JournalEntry {
            key: c.observed.key.clone(),
            name: c.name.clone(),
            old_id: c.id.clone(),
            old_image_id: c.image_id.clone(),
            new_image_id: c.image_id.clone(),
            new_id: None,
            temp_name: String::new(),
            old_name_aside: String::new(),
            repository: String::new(),
            tag: String::new(),
            digest: crate::reference::Digest::parse(&format!("sha256:{}", "0".repeat(64)))
                .expect("a valid digest"),
            previous_digest: None,
            was_running: true,
            phase: Phase::Intent,
            started_at: self.clock.now(),
            followers: Vec::new(),
            compose: None,
        };
        let step = ComposeStep {
            project: files.name,
            working_dir: files.working_dir,
            config_files: files.config_files,
            env_files: files.env_files,
            services,
        };
        self.compose_step(&entry, &step, true)?;
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
        if let Verdict::Fail(reason) = self.compose_followers(&entry, &step)? {
            bail!("{reason}");
        }
        Ok(Refresh::Recreated)
    }
}
