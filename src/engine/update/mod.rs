//! Carries out one update, step by step, so that a crash at any point can be finished or undone.
//!
//! 1. pull exactly the soaked digest (with the container's platform); nothing is touched before
//!    it succeeds; 2. the same image ID as the running one means no recreate; 3. journal the
//!    intent; 4. point the tag at the new image, create the replacement under a temporary name,
//!    stop the old container, swap the names, start the replacement (downtime = stop + start);
//!    5. health gate; 6. pass: remove the old container, record; fail: restore the old container
//!    and the tag, block the digest for its repository. Every step is recorded in the journal
//!    before the next one starts; [`Executor::restore`] and [`Executor::finish`] are shared with
//!    heal.
//!
//! Split: this file holds the steps up to the gate; `gate` the health gate (policy and polling),
//! `settle` how an update ends (finish or restore), `followers` the containers sharing its
//! network, `hooks` the pre- and post-update hooks.

mod compose;
mod followers;
pub mod gate;
mod hooks;
mod path;
mod refresh;
mod settle;

pub use hooks::hook_facts;
pub use path::{RecreatePath, recreate_path, recreate_paths};
pub use refresh::Refresh;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::compose::Compose;
use crate::engine::discover::Discovered;
use crate::engine::session::Clock;
use crate::fault;
use crate::reference::{Digest, ImageRef};
use crate::registry::RegistryClient;
use crate::runtime::Runtime;
use crate::state::record;
use crate::state::{HistoryEntry, JournalEntry, Phase, Retag, State, Store};
use gate::{GatePolicy, Verdict};

/// What happened to one container.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum UpdateOutcome {
    /// Replaced and (if it was running) healthy.
    Updated { from: Option<Digest>, to: Digest },
    /// The new digest pulled the image the container already runs: nothing to recreate.
    Unchanged { to: Digest },
    /// The replacement failed the health gate; the old container runs again and the digest
    /// is blocked.
    RolledBack { digest: Digest, reason: String },
    /// Something failed before or during the recreate; the old container was restored (or was
    /// never touched). The digest is not blocked; the next run tries again.
    Failed { reason: String },
    /// pullpilot could not restore the container by itself.
    ActionNeeded { reason: String },
}

impl UpdateOutcome {
    pub fn word(&self) -> &'static str {
        match self {
            UpdateOutcome::Updated { .. } => "updated",
            UpdateOutcome::Unchanged { .. } => "unchanged",
            UpdateOutcome::RolledBack { .. } => "rolled back",
            UpdateOutcome::Failed { .. } => "failed",
            UpdateOutcome::ActionNeeded { .. } => "ACTION NEEDED",
        }
    }

    /// What happened, as the end of a sentence.
    pub fn describe(&self) -> String {
        match self {
            UpdateOutcome::Updated { to, .. } => format!("now runs {}", to.short()),
            UpdateOutcome::Unchanged { to } => {
                format!("{} holds the image it already runs", to.short())
            }
            UpdateOutcome::RolledBack { digest, reason } => {
                format!(
                    "{reason}; the previous image runs again and {} is blocked",
                    digest.short()
                )
            }
            UpdateOutcome::Failed { reason } | UpdateOutcome::ActionNeeded { reason } => {
                reason.clone()
            }
        }
    }

    /// The outcome as one word for hooks and JSON: `updated`, `rolled-back`, …
    pub fn kebab(&self) -> &'static str {
        match self {
            UpdateOutcome::Updated { .. } => "updated",
            UpdateOutcome::Unchanged { .. } => "unchanged",
            UpdateOutcome::RolledBack { .. } => "rolled-back",
            UpdateOutcome::Failed { .. } => "failed",
            UpdateOutcome::ActionNeeded { .. } => "action-needed",
        }
    }

    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            UpdateOutcome::Updated { .. } | UpdateOutcome::Unchanged { .. }
        )
    }
}

/// Settings the executor needs.
#[derive(Clone, Debug)]
pub struct UpdateKnobs {
    pub health_timeout: Duration,
    pub health_stable: Duration,
    pub cleanup: bool,
    /// `PP_PRE_UPDATE_HOOK` (a container's `io.pullpilot.pre-update` label overrides it).
    pub pre_update_hook: Option<String>,
    /// `PP_POST_UPDATE_HOOK`, run after every update attempt with its outcome.
    pub post_update_hook: Option<String>,
    pub hook_timeout: Duration,
}

/// Runs updates against one Docker daemon, saving state after every step.
pub struct Executor<'a> {
    pub runtime: &'a dyn Runtime,
    pub registry: &'a RegistryClient,
    /// Where every step is saved (it holds the run lock).
    pub store: &'a Store,
    pub knobs: UpdateKnobs,
    pub clock: &'a dyn Clock,
    /// The compose CLI, when it may be used; compose containers are recreated by it (see
    /// `compose`).
    pub compose: Option<&'a dyn Compose>,
}

/// Names used while two containers exist for one service.
pub fn temp_names(name: &str) -> (String, String) {
    (format!("{name}-pp-new"), format!("{name}-pp-old"))
}

impl Executor<'_> {
    fn save(&self, state: &State) -> Result<()> {
        self.store.save(state)
    }

    fn set_phase(
        &self,
        state: &mut State,
        name: &str,
        phase: Phase,
        new_id: Option<&str>,
    ) -> Result<()> {
        record::journal_step(state, name, phase, new_id);
        self.save(state)
    }

    /// Updates `container` to `digest` of its own tag. See [`Executor::update_to`].
    pub fn update(
        &self,
        state: &mut State,
        container: &Discovered,
        reference: &ImageRef,
        digest: &Digest,
        local_image: Option<&str>,
    ) -> UpdateOutcome {
        self.update_to(state, container, reference, digest, local_image, None)
    }

    /// Updates `container` to `digest`, and with `to_tag` to that tag of its repository (a
    /// version move: the compose file is moved to the tag with the container, and back on
    /// rollback). Never panics or propagates: every failure becomes an outcome, and the
    /// container is left running its old or its new (healthy) image.
    pub fn update_to(
        &self,
        state: &mut State,
        container: &Discovered,
        reference: &ImageRef,
        digest: &Digest,
        local_image: Option<&str>,
        to_tag: Option<&str>,
    ) -> UpdateOutcome {
        match self.try_update(state, container, reference, digest, local_image, to_tag) {
            Ok(outcome) => outcome,
            Err(e) => {
                // Errors before the journal entry exist touched nothing; after it, undo.
                if let Some(entry) = state
                    .journal
                    .iter()
                    .find(|e| e.name == container.name)
                    .cloned()
                {
                    log::error!(
                        "Updating {} failed ({e:#}); restoring the old container.",
                        container.name
                    );
                    match self.restore(state, &entry) {
                        Ok(()) => UpdateOutcome::Failed {
                            reason: format!("{e:#}; the old container was restored"),
                        },
                        Err(restore) => UpdateOutcome::ActionNeeded {
                            reason: format!(
                                "{e:#}; restoring the old container also failed ({restore:#}). Check \
                                 `docker ps -a --filter name={}` and rename or start it by hand",
                                container.name
                            ),
                        },
                    }
                } else {
                    UpdateOutcome::Failed {
                        reason: format!("{e:#}; nothing was changed"),
                    }
                }
            }
        }
    }

    /// `local_image`: an image ID known to hold `digest` (a rollback target); it is used
    /// without pulling when it is still present.
    fn try_update(
        &self,
        state: &mut State,
        c: &Discovered,
        reference: &ImageRef,
        digest: &Digest,
        local_image: Option<&str>,
        to_tag: Option<&str>,
    ) -> Result<UpdateOutcome> {
        // Compose may have recreated this container earlier in the pass, with a service it
        // depends on: the update goes on with the container that carries its name now.
        let c_original_id = c.id.clone();
        let c_original_image = c.image_id.clone();
        let moved;
        let c = match self.runtime.inspect_container(&c.id) {
            Err(e) if e.is_not_found() => match self.runtime.inspect_container(&c.name) {
                Ok(now) => {
                    log::info!(
                        "{} was recreated by compose with a service it depends on.",
                        c.name
                    );
                    let mut again = c.clone();
                    again.id = now.id;
                    again.image_id = now.image_id;
                    again.running = now.running;
                    moved = again;
                    &moved
                }
                _ => return Err(e.into()),
            },
            _ => c,
        };
        let policy = &c.observed.labels.policy;
        let old_image = self
            .runtime
            .inspect_image(&c.image_id)?
            .with_context(|| format!("the image {} of {} is gone", c.image_id, c.name))?;
        let repository = reference.name();
        let current_tag = reference.tag().unwrap_or("latest").to_string();
        // A version move: the compose file is found (and refused) before anything is pulled.
        let retag = match to_tag.filter(|t| *t != current_tag) {
            Some(to) => Some(retag_plan(c, &current_tag, to)?),
            None => None,
        };
        let tag = to_tag.unwrap_or(&current_tag).to_string();
        let auth = self
            .registry
            .engine_auth(reference.api_host())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let platform = old_image.platform();
        let known = match local_image {
            Some(id) => self.runtime.inspect_image(id)?,
            None => None,
        };
        let new_image = if let Some(image) = known {
            log::info!(
                "Using image {} (already here) as {repository}@{digest} for {}.",
                short(&image.id),
                c.name
            );
            image
        } else {
            log::info!("Pulling {repository}@{digest} ({platform}) for {}.", c.name);
            self.runtime
                .pull_by_digest(
                    &repository,
                    digest.as_str(),
                    Some(&platform),
                    auth.as_deref(),
                )
                .with_context(|| format!("pulling {repository}@{digest}; nothing was changed"))?
        };
        fault::point("after-pull");
        let previous_digest = c.observed.local_digests.first().cloned();
        if new_image.id == c.image_id && c.id != c_original_id && retag.is_none() {
            // Moved to the new image together with a service it depends on.
            record::applied(
                state,
                &c.observed.key,
                self.history(
                    digest,
                    &new_image.id,
                    previous_digest.clone(),
                    &c_original_image,
                    "updated",
                ),
            );
            self.save(state)?;
            return Ok(UpdateOutcome::Updated {
                from: previous_digest,
                to: digest.clone(),
            });
        }
        if new_image.id == c.image_id && retag.is_none() {
            self.runtime.tag_image(&new_image.id, &repository, &tag)?;
            log::info!(
                "{}: the new digest holds the same image it runs; nothing to recreate.",
                c.name
            );
            record::applied(
                state,
                &c.observed.key,
                self.history(
                    digest,
                    &new_image.id,
                    previous_digest,
                    &c.image_id,
                    "unchanged-image",
                ),
            );
            self.save(state)?;
            return Ok(UpdateOutcome::Unchanged { to: digest.clone() });
        }

        // Before the tag moves: compose's verdict compares the running containers with the
        // project's files as they are now.
        let route = recreate_path(
            self.runtime,
            self.compose,
            c,
            Some((&repository, &current_tag)),
        );
        if let Some(reason) = route.fallback_reason() {
            log::info!("{}: {reason}.", c.name);
        }
        self.pre_update_hook(c, previous_digest.as_ref(), digest)?;
        let intent = JournalEntry {
            key: c.observed.key.clone(),
            name: c.name.clone(),
            old_id: c.id.clone(),
            old_image_id: c.image_id.clone(),
            new_image_id: new_image.id.clone(),
            new_id: None,
            temp_name: String::new(),
            old_name_aside: String::new(),
            repository: repository.clone(),
            tag: tag.clone(),
            digest: digest.clone(),
            previous_digest: previous_digest.clone(),
            was_running: c.running,
            phase: Phase::Intent,
            started_at: self.clock.now(),
            followers: Vec::new(),
            compose: None,
            retag,
        };
        if let RecreatePath::Compose(step) = route {
            let entry = JournalEntry {
                compose: Some(step),
                ..intent
            };
            return self.compose_update(state, c, &entry);
        }
        let mut snapshot = self.runtime.snapshot_container(&c.id)?;
        if intent.retag.is_some() {
            let moved =
                crate::compose_edit::retag_value(&c.observed.config_image, &current_tag, &tag)
                    .unwrap_or_else(|| format!("{repository}:{tag}"));
            snapshot.set_image(&moved);
        }
        let (temp_name, old_name_aside) = temp_names(&c.name);
        for taken in [&temp_name, &old_name_aside] {
            if self.runtime.inspect_container(taken).is_ok() {
                anyhow::bail!(
                    "a container named {taken} already exists and is not in pullpilot's journal; \
                     remove or rename it, then run again (nothing was changed)"
                );
            }
        }
        let followers = self.followers_of(&c.id, &c.name, digest)?;
        record::journal_intent(
            state,
            JournalEntry {
                temp_name: temp_name.clone(),
                old_name_aside: old_name_aside.clone(),
                followers,
                ..intent
            },
        );
        if let Err(e) = self.save(state) {
            // The intent is not on disk, so nothing may be touched: forget it here too.
            record::journal_done(state, &c.name);
            return Err(e.context("recording the update in the journal"));
        }
        fault::point("after-journal");
        edit_forward(&journal_entry(state, &c.name))?;

        self.runtime.tag_image(&new_image.id, &repository, &tag)?;
        let new_id = self.runtime.create_replacement(
            &snapshot,
            &old_image.config,
            &new_image.id,
            &temp_name,
            Some(&platform),
            None,
        )?;
        self.set_phase(state, &c.name, Phase::Created, Some(&new_id))?;
        self.carry_injected_files(&c.name, &c.id, &new_id)?;
        fault::point("after-create");

        let started = Instant::now();
        for follower in &journal_entry(state, &c.name).followers {
            if follower.was_running {
                self.runtime.stop_container(&follower.old_id, None)?;
            }
        }
        if c.running {
            let timeout = policy.stop_timeout.map(|d| d.as_secs() as i64);
            self.runtime.stop_container(&c.id, timeout)?;
        }
        mark_phase(state, &c.name, Phase::OldStopped);
        fault::point("after-stop");
        self.runtime.rename_container(&c.id, &old_name_aside)?;
        mark_phase(state, &c.name, Phase::OldRenamed);
        fault::point("after-rename-old");
        self.runtime.rename_container(&new_id, &c.name)?;
        mark_phase(state, &c.name, Phase::NewRenamed);
        fault::point("after-rename-new");
        if !c.running {
            log::info!(
                "{} was stopped; its replacement is created but not started.",
                c.name
            );
            let entry = journal_entry(state, &c.name);
            if let Verdict::Fail(reason) = self.follow_all(state, &entry, &new_id)? {
                anyhow::bail!("a container sharing its network could not follow it: {reason}");
            }
            self.finish(state, &entry)?;
            return Ok(UpdateOutcome::Updated {
                from: previous_digest,
                to: digest.clone(),
            });
        }
        self.runtime.start_container(&new_id)?;
        log::info!(
            "{}: old container stopped and new one started in {} ms.",
            c.name,
            started.elapsed().as_millis()
        );
        self.set_phase(state, &c.name, Phase::Started, None)?;
        fault::point("after-start");

        let gate = GatePolicy::merge(policy, &self.knobs);
        let entry = journal_entry(state, &c.name);
        Ok(self.gate_and_settle(state, &entry, &new_id, gate))
    }
}

/// Where a version move of `c` from tag `from` to `to` edits the operator's files; an error
/// (nothing touched yet) when it cannot be done safely.
fn retag_plan(c: &Discovered, from: &str, to: &str) -> Result<Retag> {
    if let Some(why) = crate::engine::versions::edit_problem(c, from, to) {
        anyhow::bail!("{} cannot move to {to}: {why}; nothing was changed", c.name);
    }
    let at = crate::compose_edit::locate(&c.labels, true).map_err(anyhow::Error::msg)?;
    Ok(Retag {
        from: from.to_string(),
        file: at.file,
        service: c.service.clone().unwrap_or_default(),
        var: match at.spot {
            crate::compose_edit::Spot::Variable(var) => Some(var),
            crate::compose_edit::Spot::Line(_) => None,
        },
    })
}

/// A version move's edit, forward (from the old tag to the new one). Idempotent.
pub(super) fn edit_forward(entry: &JournalEntry) -> Result<()> {
    let Some(r) = &entry.retag else {
        return Ok(());
    };
    if crate::compose_edit::retag_file(&r.file, &r.service, r.var.as_deref(), &r.from, &entry.tag)?
    {
        log::info!(
            "{}: {} now says {} instead of {}.",
            entry.name,
            r.file.display(),
            entry.tag,
            r.from
        );
    }
    fault::point("after-edit");
    Ok(())
}

/// A version move's edit, backward (the file says the old tag again). Idempotent.
pub(super) fn edit_back(entry: &JournalEntry) -> Result<()> {
    let Some(r) = &entry.retag else {
        return Ok(());
    };
    if crate::compose_edit::retag_file(&r.file, &r.service, r.var.as_deref(), &entry.tag, &r.from)
        .with_context(|| format!("putting {} back on {}", r.file.display(), r.from))?
    {
        log::warn!(
            "{}: {} says {} again.",
            entry.name,
            r.file.display(),
            r.from
        );
    }
    Ok(())
}

/// The tag the old image is given back on rollback: the one it had before a version move.
pub(super) fn restore_tag(entry: &JournalEntry) -> &str {
    entry.retag.as_ref().map_or(&entry.tag, |r| &r.from)
}

/// Records a step in memory only. Used between stopping the old container and starting the
/// new one, where every millisecond is downtime: heal decides from the names and states
/// Docker shows, so these steps need not reach the disk before the next one.
fn mark_phase(state: &mut State, name: &str, phase: Phase) {
    record::journal_step(state, name, phase, None);
}

fn journal_entry(state: &State, name: &str) -> JournalEntry {
    state
        .journal
        .iter()
        .find(|e| e.name == name)
        .cloned()
        .expect("the journal entry exists while its update runs")
}

impl Executor<'_> {
    /// A history entry stamped now.
    fn history(
        &self,
        digest: &Digest,
        image_id: &str,
        previous: Option<Digest>,
        previous_image_id: &str,
        outcome: &str,
    ) -> HistoryEntry {
        HistoryEntry {
            at: self.clock.now(),
            digest: digest.clone(),
            image_id: image_id.to_string(),
            previous_digest: previous,
            previous_image_id: Some(previous_image_id.to_string()),
            outcome: outcome.to_string(),
            tag: None,
            previous_tag: None,
        }
    }

    /// The history entry of a journaled update, with its tags for a version move.
    fn entry_history(&self, entry: &JournalEntry, outcome: &str) -> HistoryEntry {
        let mut h = self.history(
            &entry.digest,
            &entry.new_image_id,
            entry.previous_digest.clone(),
            &entry.old_image_id,
            outcome,
        );
        if let Some(r) = &entry.retag {
            h.tag = Some(entry.tag.clone());
            h.previous_tag = Some(r.from.clone());
        }
        h
    }
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}
