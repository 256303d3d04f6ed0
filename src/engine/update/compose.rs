//! The compose path: for a container compose manages, compose makes the replacement, so it is
//! exactly what `docker compose up -d` would make (mac addresses, injected configs and secrets,
//! `post_start` hooks, `service:` followers with the right config hash, `depends_on`
//! restarts, …). pullpilot keeps the protocol around it: the soaked digest is pulled first,
//! the intent journaled, then the tag moves and compose runs `up -d --no-deps --no-build
//! --pull never SERVICE DEPENDENTS…`; the replacement is gated, and rollback is the tag back
//! plus the same step. (`path` decides which way a container goes; `refresh` serves
//! `pin --compose`.)

use anyhow::{Context, Result, bail};

use super::gate::{GatePolicy, Verdict};
use super::{Executor, UpdateOutcome};
use crate::compose::{Compose, ProjectFiles};
use crate::engine::discover::Discovered;
use crate::fault;
use crate::labels;
use crate::state::{ComposeStep, JournalEntry, Phase, State, record};

pub(super) fn files_of(step: &ComposeStep) -> ProjectFiles {
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

    /// Runs the compose step for container `name`: first gives back their names to containers a killed
    /// compose left under its temporary `<id>_<name>`, then `up`.
    pub(super) fn compose_step(&self, name: &str, step: &ComposeStep, start: bool) -> Result<()> {
        self.rename_leftovers(step)?;
        log::info!(
            "Recreating {name} with compose ({}).",
            step.services.join(", ")
        );
        self.compose()?
            .up(&files_of(step), &step.services, start)
            .with_context(|| format!("compose could not recreate {name}"))
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
        super::edit_forward(entry)?;
        self.runtime
            .tag_image(&entry.new_image_id, &entry.repository, &entry.tag)?;
        fault::point("before-compose");
        let started = std::time::Instant::now();
        self.compose_step(&entry.name, &step, true)?;
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
            super::edit_forward(entry)?;
            self.runtime
                .tag_image(&entry.new_image_id, &entry.repository, &entry.tag)?;
            self.compose_step(&entry.name, &step, true)?;
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
        super::edit_back(entry)?;
        self.runtime
            .tag_image(
                &entry.old_image_id,
                &entry.repository,
                super::restore_tag(entry),
            )
            .context("pointing the tag back at the old image")?;
        // A one-shot job is not run again on the image it already ran.
        self.compose_step(&entry.name, step, entry.was_running)?;
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
    pub(super) fn policy_of(&self, id: &str) -> GatePolicy {
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
    pub(super) fn compose_followers(&self, name: &str, step: &ComposeStep) -> Result<Verdict> {
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
                    c.name, name
                )));
            }
        }
        Ok(Verdict::Pass)
    }
}
