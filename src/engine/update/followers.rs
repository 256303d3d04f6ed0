//! Containers that share something of the updated container — its network, PID or IPC
//! namespace (`container:<it>` modes, which is what compose's `service:<it>` becomes) or its
//! volumes (`volumes_from`): found before the update, journaled with it, recreated onto the new
//! container after it passes its gate, and restored with it when anything fails. Also the
//! files compose injected after create, carried into every replacement before it starts.

use anyhow::{Context, Result};

use super::gate::{GatePolicy, Verdict};
use super::{Executor, temp_names};
use crate::docker::{ContainerFacts, NewParent};
use crate::reference::Digest;
use crate::state::{JournalEntry, Phase, State, record};

/// "network and volumes": what `facts` shares with the container `id` (`name`).
fn shared_words(facts: &ContainerFacts, id: &str, name: Option<&str>) -> String {
    let words: Vec<&str> = facts
        .shares_with(id, name)
        .into_iter()
        .map(crate::docker::Sharing::describe)
        .collect();
    match words.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

impl Executor<'_> {
    /// Copies the files compose injected into `old_id` after creating it (configs and secrets
    /// with `content:` or `environment:` sources, at their default targets) into the
    /// replacement `new_id`, which must not have started yet.
    pub(super) fn carry_injected_files(
        &self,
        name: &str,
        old_id: &str,
        new_id: &str,
    ) -> Result<()> {
        let paths = match self.runtime.injected_files(old_id) {
            Ok(paths) => paths,
            // An engine that cannot list a container's changes must not block every update;
            // say what may be missing instead.
            Err(e) => {
                log::warn!(
                    "{name}: could not list the files added to the old container ({e}); configs \
                     and secrets compose copied into it (`content:` or `environment:` sources) \
                     are not carried over. Run `docker compose up -d` for it if it has any."
                );
                return Ok(());
            }
        };
        if paths.is_empty() {
            return Ok(());
        }
        let copied = self
            .runtime
            .copy_paths(old_id, new_id, &paths)
            .with_context(|| {
                format!("copying the injected files of {name} into its replacement")
            })?;
        if !copied.is_empty() {
            log::info!(
                "{name}: copied {} into the replacement (files compose injected after create).",
                copied.join(", ")
            );
        }
        Ok(())
    }

    /// Containers that share the parent's network, PID or IPC namespace (`container:<it>`
    /// modes, which is what compose's `service:<it>` becomes) or take its volumes
    /// (`volumes_from`), by ID or by name.
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
            let shared = shared_words(&facts, parent_id, Some(parent_name));
            if shared.is_empty() {
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
                "{} shares {parent_name}'s {shared} and will follow it.",
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
                retag: None,
            });
        }
        Ok(followers)
    }

    /// Recreates every follower of `entry` to share with `new_parent_id` what it shared with the
    /// old parent, and with the files compose injected into it, starting and gating those that
    /// ran. The old followers stay (stopped, renamed) until `finish`, so a failure can still
    /// restore the whole group. Safe to repeat after a crash.
    pub(super) fn follow_all(
        &self,
        state: &mut State,
        entry: &JournalEntry,
        new_parent_id: &str,
    ) -> Result<Verdict> {
        if let Some(step) = &entry.compose {
            return self.compose_followers(&entry.name, step);
        }
        let d = self.runtime;
        for (i, f) in entry.followers.iter().enumerate() {
            // Only the replacement names the new parent by ID (a reference by name would also
            // match the old follower once the parent's name moved over).
            if d.inspect_container(&f.name)
                .is_ok_and(|c| !c.shares_with(new_parent_id, None).is_empty())
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
            let shared = shared_words(&old, &entry.old_id, Some(&entry.name));
            let parent = NewParent {
                old_id: entry.old_id.clone(),
                old_name: entry.name.clone(),
                new_id: new_parent_id.to_owned(),
            };
            // Docker creates from the follower's reference; when it names the parent's image
            // (one tag for both), that tag now points at the parent's new image, which the
            // follower then takes too — as `docker compose up -d` would.
            let runs = d
                .inspect_image(&old.config_image)?
                .map_or_else(|| f.old_image_id.clone(), |i| i.id);
            let new_id = d.create_replacement(
                &snapshot,
                &image.config,
                &runs,
                &f.temp_name,
                None,
                Some(&parent),
            )?;
            record::journal_follower(state, &entry.name, i, &new_id);
            self.save(state)?;
            self.carry_injected_files(&f.name, &f.old_id, &new_id)?;
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
                        "{} (which shares its {shared}) failed: {reason}",
                        f.name
                    )));
                }
            }
            log::info!(
                "{} now shares the {shared} of the new {}.",
                f.name,
                entry.name
            );
        }
        Ok(Verdict::Pass)
    }
}
