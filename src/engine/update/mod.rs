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

pub mod gate;
mod hooks;

pub use hooks::hook_facts;

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};

use crate::discover::Discovered;
use crate::fault;
use crate::reference::{Digest, ImageRef};
use crate::registry::RegistryClient;
use crate::runtime::Runtime;
use crate::state::record;
use crate::state::{HistoryEntry, JournalEntry, Phase, State};
use gate::{GatePolicy, Observation, Verdict};

/// How often the health gate looks at the container.
const GATE_POLL: Duration = Duration::from_millis(500);

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
    pub data_dir: &'a Path,
    pub knobs: UpdateKnobs,
}

/// Names used while two containers exist for one service.
pub fn temp_names(name: &str) -> (String, String) {
    (format!("{name}-pp-new"), format!("{name}-pp-old"))
}

impl Executor<'_> {
    fn save(&self, state: &State) -> Result<()> {
        crate::state::save(self.data_dir, state)
    }

    fn set_phase(
        &self,
        state: &mut State,
        name: &str,
        phase: Phase,
        new_id: Option<&str>,
    ) -> Result<()> {
        let entry = state
            .journal
            .iter_mut()
            .find(|e| e.name == name)
            .expect("the journal entry exists while its update runs");
        entry.phase = phase;
        if let Some(id) = new_id {
            entry.new_id = Some(id.to_string());
        }
        self.save(state)
    }

    /// Updates `container` to `digest`. Never panics or propagates: every failure becomes an
    /// outcome, and the container is left running its old or its new (healthy) image.
    pub fn update(
        &self,
        state: &mut State,
        container: &Discovered,
        reference: &ImageRef,
        digest: &Digest,
        local_image: Option<&str>,
    ) -> UpdateOutcome {
        match self.try_update(state, container, reference, digest, local_image) {
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
    ) -> Result<UpdateOutcome> {
        let policy = &c.observed.labels.policy;
        let snapshot = self.runtime.snapshot_container(&c.id)?;
        let old_image = self
            .runtime
            .inspect_image(&c.image_id)?
            .with_context(|| format!("the image {} of {} is gone", c.image_id, c.name))?;
        let repository = reference.name();
        let tag = reference.tag().unwrap_or("latest").to_string();
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
        if new_image.id == c.image_id {
            self.runtime.tag_image(&new_image.id, &repository, &tag)?;
            log::info!(
                "{}: the new digest holds the same image it runs; nothing to recreate.",
                c.name
            );
            record::applied(
                state,
                &c.observed.key,
                history(
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

        self.pre_update_hook(c, previous_digest.as_ref(), digest)?;
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
        state.journal.push(JournalEntry {
            key: c.observed.key.clone(),
            name: c.name.clone(),
            old_id: c.id.clone(),
            old_image_id: c.image_id.clone(),
            new_image_id: new_image.id.clone(),
            new_id: None,
            temp_name: temp_name.clone(),
            old_name_aside: old_name_aside.clone(),
            repository: repository.clone(),
            tag: tag.clone(),
            digest: digest.clone(),
            previous_digest: previous_digest.clone(),
            was_running: c.running,
            phase: Phase::Intent,
            started_at: SystemTime::now(),
            followers,
        });
        if let Err(e) = self.save(state) {
            // The intent is not on disk, so nothing may be touched: forget it here too.
            state.journal.retain(|j| j.name != c.name);
            return Err(e.context("recording the update in the journal"));
        }
        fault::point("after-journal");

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

        let gate = GatePolicy {
            timeout: policy.health_timeout.unwrap_or(self.knobs.health_timeout),
            stable: policy.health_stable.unwrap_or(self.knobs.health_stable),
        };
        let entry = journal_entry(state, &c.name);
        Ok(self.gate_and_settle(state, &entry, &new_id, gate))
    }

    /// Gates the replacement; pass finishes the update, failure restores the old container
    /// and blocks the digest.
    pub fn gate_and_settle(
        &self,
        state: &mut State,
        entry: &JournalEntry,
        new_id: &str,
        policy: GatePolicy,
    ) -> UpdateOutcome {
        let verdict = match self.gate(new_id, policy) {
            Ok(v) => v,
            Err(e) => {
                // Docker stopped answering mid-gate: no verdict, so no block; undo.
                let reason = format!("the health gate could not watch the new container ({e:#})");
                return match self.restore(state, entry) {
                    Ok(()) => UpdateOutcome::Failed {
                        reason: format!("{reason}; the old container was restored"),
                    },
                    Err(r) => UpdateOutcome::ActionNeeded {
                        reason: format!("{reason}; restoring failed too ({r:#})"),
                    },
                };
            }
        };
        let verdict = match verdict {
            Verdict::Pass => match self.follow_all(state, entry, new_id) {
                Ok(v) => v,
                Err(e) => {
                    let reason =
                        format!("containers sharing its network could not follow it ({e:#})");
                    return match self.restore(state, entry) {
                        Ok(()) => UpdateOutcome::Failed {
                            reason: format!("{reason}; everything was restored"),
                        },
                        Err(r) => UpdateOutcome::ActionNeeded {
                            reason: format!("{reason}; restoring failed too ({r:#})"),
                        },
                    };
                }
            },
            other => other,
        };
        let reason = match verdict {
            Verdict::Pass => {
                return match self.finish(state, entry) {
                    Ok(()) => UpdateOutcome::Updated {
                        from: entry.previous_digest.clone(),
                        to: entry.digest.clone(),
                    },
                    Err(e) => UpdateOutcome::ActionNeeded {
                        reason: format!(
                            "the update passed its health gate but could not be finished ({e:#})"
                        ),
                    },
                };
            }
            Verdict::Fail(reason) => reason,
            Verdict::Wait => unreachable!("gate() returns only pass or fail"),
        };
        log::warn!(
            "{} failed the health gate: {reason}. Rolling back.",
            entry.name
        );
        if let Err(e) = self.restore(state, entry) {
            return UpdateOutcome::ActionNeeded {
                reason: format!(
                    "{reason}; rolling back failed ({e:#}). Check `docker ps -a` for {}",
                    entry.old_name_aside
                ),
            };
        }
        record::block(
            state,
            &entry.repository,
            &entry.digest,
            &reason,
            &entry.name,
            SystemTime::now(),
        );
        record::applied(
            state,
            &entry.key,
            history(
                &entry.digest,
                &entry.new_image_id,
                entry.previous_digest.clone(),
                &entry.old_image_id,
                "rolled-back",
            ),
        );
        if let Err(e) = self.save(state) {
            log::error!(
                "Saving state after the rollback of {} failed: {e:#}",
                entry.name
            );
        }
        UpdateOutcome::RolledBack {
            digest: entry.digest.clone(),
            reason,
        }
    }

    /// Containers whose network namespace is the parent's (`network_mode: container:<it>`, which
    /// is what compose's `service:<it>` becomes).
    fn followers_of(
        &self,
        parent_id: &str,
        parent_name: &str,
        digest: &Digest,
    ) -> Result<Vec<JournalEntry>> {
        let mut followers = Vec::new();
        for summary in self.runtime.list_containers(None)? {
            if summary.id == parent_id {
                continue;
            }
            let facts = match self.runtime.inspect_container(&summary.id) {
                Ok(facts) => facts,
                // Removed since the listing: it cannot be sharing anything.
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            let target = facts.network_mode.strip_prefix("container:");
            if target != Some(parent_id) && target != Some(parent_name) {
                continue;
            }
            let (temp_name, old_name_aside) = temp_names(&facts.name);
            let key = crate::state::schema::container_key(
                facts
                    .labels
                    .get(crate::labels::COMPOSE_PROJECT)
                    .map(String::as_str),
                facts
                    .labels
                    .get(crate::labels::COMPOSE_SERVICE)
                    .map(String::as_str),
                &facts.name,
            );
            log::info!(
                "{} shares {parent_name}'s network and will follow it.",
                facts.name
            );
            followers.push(JournalEntry {
                key,
                name: facts.name,
                old_id: facts.id,
                old_image_id: facts.image_id.clone(),
                new_image_id: facts.image_id,
                new_id: None,
                temp_name,
                old_name_aside,
                repository: String::new(),
                tag: String::new(),
                digest: digest.clone(),
                previous_digest: None,
                was_running: facts.running,
                phase: Phase::Intent,
                started_at: SystemTime::now(),
                followers: Vec::new(),
            });
        }
        Ok(followers)
    }

    /// Recreates every follower of `entry` to share `new_parent_id`'s network, starting and
    /// gating those that ran. The old followers stay (stopped, renamed) until `finish`, so a
    /// failure can still restore the whole group. Safe to repeat after a crash.
    fn follow_all(
        &self,
        state: &mut State,
        entry: &JournalEntry,
        new_parent_id: &str,
    ) -> Result<Verdict> {
        let d = self.runtime;
        for (i, f) in entry.followers.iter().enumerate() {
            if d.inspect_container(&f.name)
                .is_ok_and(|c| c.network_mode == format!("container:{new_parent_id}"))
            {
                continue; // done before a crash
            }
            if let Ok(stale) = d.inspect_container(&f.temp_name)
                && stale.id != f.old_id
            {
                d.remove_container(&stale.id, false, true)?;
            }
            let old = d
                .inspect_container(&f.old_id)
                .with_context(|| format!("{} is gone", f.name))?;
            let snapshot = d.snapshot_container(&f.old_id)?;
            let image = d
                .inspect_image(&f.old_image_id)?
                .with_context(|| format!("the image of {} is gone", f.name))?;
            let mode = format!("container:{new_parent_id}");
            let new_id = d.create_replacement(
                &snapshot,
                &image.config,
                &f.old_image_id,
                &f.temp_name,
                None,
                Some(&mode),
            )?;
            if let Some(journaled) = state.journal.iter_mut().find(|e| e.name == entry.name) {
                journaled.followers[i].new_id = Some(new_id.clone());
            }
            self.save(state)?;
            d.stop_container(&f.old_id, None)?;
            if old.name != f.old_name_aside {
                d.rename_container(&f.old_id, &f.old_name_aside)?;
            }
            d.rename_container(&new_id, &f.name)?;
            if f.was_running {
                d.start_container(&new_id)?;
                // As in discovery: the image's own policy labels are not the operator's.
                let policy =
                    crate::labels::parse_container(&old.labels, &image.config.labels, None, false)
                        .policy;
                let gate = GatePolicy {
                    timeout: policy.health_timeout.unwrap_or(self.knobs.health_timeout),
                    stable: policy.health_stable.unwrap_or(self.knobs.health_stable),
                };
                if let Verdict::Fail(reason) = self.gate(&new_id, gate)? {
                    return Ok(Verdict::Fail(format!(
                        "{} (which shares its network) failed: {reason}",
                        f.name
                    )));
                }
            }
            log::info!(
                "{} now shares the network of the new {}.",
                f.name,
                entry.name
            );
        }
        Ok(Verdict::Pass)
    }

    /// Polls the container until the gate passes or fails.
    fn gate(&self, id: &str, policy: GatePolicy) -> Result<Verdict> {
        let started = Instant::now();
        let mut baseline = None;
        loop {
            let facts = self.runtime.inspect_container(id)?;
            fault::point("during-gate");
            let baseline = *baseline.get_or_insert(facts.restart_count);
            let obs = Observation {
                running: facts.running,
                restarting: facts.status == crate::docker::ContainerStatus::Restarting,
                exit_code: facts.exit_code,
                restart_count: facts.restart_count,
                health: if facts.has_healthcheck {
                    Some(
                        facts
                            .health
                            .map_or_else(|| "starting".to_string(), |h| h.to_string()),
                    )
                } else {
                    None
                },
            };
            match gate::judge(&obs, baseline, started.elapsed(), policy) {
                Verdict::Wait => thread::sleep(GATE_POLL),
                verdict => return Ok(verdict),
            }
        }
    }

    /// Puts the old container back exactly as it was: the replacement removed, the original
    /// name restored, started again if it was running, the tag pointing at the old image.
    /// Idempotent, so heal can call it after a crash at any step.
    pub fn restore(&self, state: &mut State, entry: &JournalEntry) -> Result<()> {
        // The journal knows more than a copy taken earlier (the followers' replacements).
        let journaled = state.journal.iter().find(|e| e.name == entry.name).cloned();
        let entry = journaled.as_ref().unwrap_or(entry);
        let d = self.runtime;
        let new = entry.new_id.clone().or_else(|| {
            // Created but not yet journaled: only a container of that name running the new
            // image is ours to remove.
            d.inspect_container(&entry.temp_name)
                .ok()
                .filter(|f| f.image_id == entry.new_image_id)
                .map(|f| f.id)
        });
        if let Some(new_id) = new.filter(|id| *id != entry.old_id) {
            match d.remove_container(&new_id, false, true) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e).context("removing the failed replacement"),
            }
        }
        let old = d.inspect_container(&entry.old_id).with_context(|| {
            format!(
                "the old container {} of {} is gone",
                short(&entry.old_id),
                entry.name
            )
        })?;
        if old.name != entry.name {
            d.rename_container(&entry.old_id, &entry.name)
                .context("giving the old container its name back")?;
        }
        if entry.was_running && !old.running {
            d.start_container(&entry.old_id)
                .context("starting the old container again")?;
        }
        if !entry.repository.is_empty() {
            d.tag_image(&entry.old_image_id, &entry.repository, &entry.tag)
                .context("pointing the tag back at the old image")?;
        }
        for follower in &entry.followers {
            self.restore(state, follower).with_context(|| {
                format!(
                    "restoring {}, which shares {}'s network",
                    follower.name, entry.name
                )
            })?;
        }
        state.journal.retain(|e| e.name != entry.name);
        // Docker is restored; a journal entry that could not be cleared on disk only makes the
        // next run's heal repeat this (idempotent) restore, so it is no reason to cry for help.
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

    /// Completes a passed update: removes the old container, records history, forgets the
    /// journal entry, and optionally removes the old image.
    pub fn finish(&self, state: &mut State, entry: &JournalEntry) -> Result<()> {
        if let Some(e) = state.journal.iter_mut().find(|e| e.name == entry.name) {
            e.phase = Phase::Passed;
        }
        self.save(state)?;
        fault::point("after-pass");
        for old in std::iter::once(&entry.old_id).chain(entry.followers.iter().map(|f| &f.old_id)) {
            match self.runtime.remove_container(old, false, true) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e).context("removing the old container"),
            }
        }
        record::applied(
            state,
            &entry.key,
            history(
                &entry.digest,
                &entry.new_image_id,
                entry.previous_digest.clone(),
                &entry.old_image_id,
                "updated",
            ),
        );
        state.journal.retain(|e| e.name != entry.name);
        self.save(state)?;
        if self.knobs.cleanup {
            match self.runtime.remove_image(&entry.old_image_id) {
                Ok(removal) => log::info!(
                    "Old image {} of {}: {removal:?}.",
                    short(&entry.old_image_id),
                    entry.name
                ),
                Err(e) => log::warn!("Could not remove the old image of {}: {e}", entry.name),
            }
        }
        log::info!(
            "{} now runs {} ({}).",
            entry.name,
            entry.digest.short(),
            short(&entry.new_image_id)
        );
        Ok(())
    }
}

/// Records a step in memory only. Used between stopping the old container and starting the
/// new one, where every millisecond is downtime: heal decides from the names and states
/// Docker shows, so these steps need not reach the disk before the next one.
fn mark_phase(state: &mut State, name: &str, phase: Phase) {
    if let Some(entry) = state.journal.iter_mut().find(|e| e.name == name) {
        entry.phase = phase;
    }
}

fn journal_entry(state: &State, name: &str) -> JournalEntry {
    state
        .journal
        .iter()
        .find(|e| e.name == name)
        .cloned()
        .expect("the journal entry exists while its update runs")
}

fn history(
    digest: &Digest,
    image_id: &str,
    previous: Option<Digest>,
    previous_image_id: &str,
    outcome: &str,
) -> HistoryEntry {
    HistoryEntry {
        at: SystemTime::now(),
        digest: digest.clone(),
        image_id: image_id.to_string(),
        previous_digest: previous,
        previous_image_id: Some(previous_image_id.to_string()),
        outcome: outcome.to_string(),
    }
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}
