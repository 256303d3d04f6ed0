//! How an update ends: [`Executor::gate_and_settle`] gates the replacement and either
//! [`Executor::finish`]es it (old container removed, history recorded) or
//! [`Executor::restore`]s the old container and blocks the digest. `restore` and `finish` are
//! idempotent, so heal calls them after a crash at any step.

use anyhow::{Context, Result};

use super::gate::{GatePolicy, Verdict};
use super::{Executor, UpdateOutcome, short};
use crate::fault;
use crate::state::record;
use crate::state::{JournalEntry, Phase, State};

impl Executor<'_> {
    /// Gates the replacement; pass finishes the update, failure restores the old container
    /// and blocks the digest.
    pub fn gate_and_settle(
        &self,
        state: &mut State,
        entry: &JournalEntry,
        new_id: &str,
        policy: GatePolicy,
    ) -> UpdateOutcome {
        let verdict = self.gate(new_id, policy);
        self.settle(state, entry, new_id, verdict)
    }

    /// Settles an update on the gate's verdict (an error: the gate could not watch).
    pub(super) fn settle(
        &self,
        state: &mut State,
        entry: &JournalEntry,
        new_id: &str,
        verdict: Result<Verdict>,
    ) -> UpdateOutcome {
        let verdict = match verdict {
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
            self.clock.now(),
        );
        record::applied(state, &entry.key, self.entry_history(entry, "rolled-back"));
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

    /// Puts the old container back exactly as it was: the replacement removed, the original
    /// name restored, started again if it was running, the tag pointing at the old image.
    /// Idempotent, so heal can call it after a crash at any step.
    pub fn restore(&self, state: &mut State, entry: &JournalEntry) -> Result<()> {
        // The journal knows more than a copy taken earlier (the followers' replacements).
        let journaled = state.journal.iter().find(|e| e.name == entry.name).cloned();
        let entry = journaled.as_ref().unwrap_or(entry);
        if let Some(step) = &entry.compose {
            return self.compose_restore(state, entry, step);
        }
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
            d.tag_image(
                &entry.old_image_id,
                &entry.repository,
                super::restore_tag(entry),
            )
            .context("pointing the tag back at the old image")?;
        }
        super::edit_back(entry)?;
        for follower in &entry.followers {
            self.restore(state, follower).with_context(|| {
                format!(
                    "restoring {}, which shares {}'s network",
                    follower.name, entry.name
                )
            })?;
        }
        record::journal_done(state, &entry.name);
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
        record::journal_step(state, &entry.name, Phase::Passed, None);
        self.save(state)?;
        fault::point("after-pass");
        for old in std::iter::once(&entry.old_id).chain(entry.followers.iter().map(|f| &f.old_id)) {
            match self.runtime.remove_container(old, false, true) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e).context("removing the old container"),
            }
        }
        record::applied(state, &entry.key, self.entry_history(entry, "updated"));
        record::journal_done(state, &entry.name);
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
