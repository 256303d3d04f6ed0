//! Containers that share the updated container's network namespace (`network_mode:
//! container:<it>`, which is what compose's `service:<it>` becomes): found before the update,
//! journaled with it, recreated onto the new container after it passes its gate, and restored
//! with it when anything fails.

use anyhow::{Context, Result};

use super::gate::{GatePolicy, Verdict};
use super::{Executor, temp_names};
use crate::reference::Digest;
use crate::state::{JournalEntry, Phase, State, record};

impl Executor<'_> {
    /// Containers whose network namespace is the parent's (`network_mode: container:<it>`, which
    /// is what compose's `service:<it>` becomes).
    pub(super) fn followers_of(
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
                started_at: self.clock.now(),
                followers: Vec::new(),
                compose: None,
            });
        }
        Ok(followers)
    }

    /// Recreates every follower of `entry` to share `new_parent_id`'s network, starting and
    /// gating those that ran. The old followers stay (stopped, renamed) until `finish`, so a
    /// failure can still restore the whole group. Safe to repeat after a crash.
    pub(super) fn follow_all(
        &self,
        state: &mut State,
        entry: &JournalEntry,
        new_parent_id: &str,
    ) -> Result<Verdict> {
        if let Some(step) = &entry.compose {
            return self.compose_followers(entry, step);
        }
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
            record::journal_follower(state, &entry.name, i, &new_id);
            self.save(state)?;
            d.stop_container(&f.old_id, None)?;
            if old.name != f.old_name_aside {
                d.rename_container(&f.old_id, &f.old_name_aside)?;
            }
            d.rename_container(&new_id, &f.name)?;
            if f.was_running {
                d.start_container(&new_id)?;
                let gate = GatePolicy::from_labels(&old.labels, &image.config.labels, &self.knobs);
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
}
