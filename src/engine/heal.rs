//! Finishing or undoing updates a previous run left in flight, from the journal and what the
//! runtime shows now. [`plan_heal`] is the pure decision; the updater carries it out.
//!
//! Only containers named in the journal are touched. A replacement that was never gated is
//! gated now, not silently kept; one that never got the original name is removed and the old
//! container restored.

use crate::state::{JournalEntry, Phase};

/// One container as Docker shows it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub id: String,
    pub name: String,
    pub running: bool,
}

/// What heal will do for one journal entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealAction {
    /// Put the old container back: remove the replacement if any, restore the name, start it
    /// if it was running, point the tag back at the old image.
    Restore {
        remove_new: Option<String>,
        rename_old: bool,
        start_old: bool,
    },
    /// The replacement carries the original name but was not gated (or not started): start it
    /// if needed and gate it; pass finishes the update, failure restores the old container.
    Gate {
        new_id: String,
        rename_new: bool,
        start_new: bool,
    },
    /// The update had passed; remove the old container (if still there) and record it.
    Finish {
        new_id: String,
        remove_old: Option<String>,
    },
    /// A container the update needs is gone; a person has to look.
    ActionNeeded(String),
}

/// Decides how to heal `entry` given the old container and the replacement as seen now
/// (`None` = no longer exists).
pub fn plan_heal(entry: &JournalEntry, old: Option<&Seen>, new: Option<&Seen>) -> HealAction {
    let new_has_name = new.is_some_and(|n| n.name == entry.name);
    match (old, new) {
        (None, None) => HealAction::ActionNeeded(format!(
            "neither the old container {} nor its replacement exists any more; recreate {} with \
             `docker compose up -d` (or your usual command)",
            short(&entry.old_id),
            entry.name
        )),
        (Some(old), None) => HealAction::Restore {
            remove_new: None,
            rename_old: old.name != entry.name,
            start_old: entry.was_running && !old.running,
        },
        (old, Some(new)) if entry.phase == Phase::Passed => HealAction::Finish {
            new_id: new.id.clone(),
            remove_old: old.map(|o| o.id.clone()),
        },
        (Some(old), Some(new)) if !new_has_name => HealAction::Restore {
            remove_new: Some(new.id.clone()),
            rename_old: old.name != entry.name,
            start_old: entry.was_running && !old.running,
        },
        (_, Some(new)) if !entry.was_running => {
            // A stopped container is updated but never started or gated.
            HealAction::Finish {
                new_id: new.id.clone(),
                remove_old: old.map(|o| o.id.clone()),
            }
        }
        (_, Some(new)) => HealAction::Gate {
            new_id: new.id.clone(),
            rename_new: !new_has_name,
            start_new: !new.running,
        },
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Digest;
    use std::time::SystemTime;

    fn entry(phase: Phase, was_running: bool) -> JournalEntry {
        JournalEntry {
            retag: None,
            key: "shop/web".into(),
            name: "shop-web-1".into(),
            old_id: "o".repeat(64),
            old_image_id: "sha256:old".into(),
            new_image_id: "sha256:new".into(),
            new_id: Some("n".repeat(64)),
            temp_name: "shop-web-1-pp-new".into(),
            old_name_aside: "shop-web-1-pp-old".into(),
            repository: "ghcr.io/acme/web".into(),
            tag: "1".into(),
            digest: Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap(),
            previous_digest: None,
            was_running,
            phase,
            started_at: SystemTime::UNIX_EPOCH,
            followers: Vec::new(),
            compose: None,
        }
    }

    fn seen(id: char, name: &str, running: bool) -> Seen {
        Seen {
            id: id.to_string().repeat(64),
            name: name.into(),
            running,
        }
    }

    #[test]
    fn crash_after_intent_or_create_restores_the_old_container() {
        let old = seen('o', "shop-web-1", true);
        let e = entry(Phase::Intent, true);
        assert_eq!(
            plan_heal(&e, Some(&old), None),
            HealAction::Restore {
                remove_new: None,
                rename_old: false,
                start_old: false
            }
        );
        let new = seen('n', "shop-web-1-pp-new", false);
        assert_eq!(
            plan_heal(&entry(Phase::Created, true), Some(&old), Some(&new)),
            HealAction::Restore {
                remove_new: Some("n".repeat(64)),
                rename_old: false,
                start_old: false
            }
        );
    }

    #[test]
    fn crash_after_stop_or_rename_restores_name_and_starts_it_again() {
        let stopped_aside = seen('o', "shop-web-1-pp-old", false);
        let new = seen('n', "shop-web-1-pp-new", false);
        assert_eq!(
            plan_heal(
                &entry(Phase::OldRenamed, true),
                Some(&stopped_aside),
                Some(&new)
            ),
            HealAction::Restore {
                remove_new: Some("n".repeat(64)),
                rename_old: true,
                start_old: true
            }
        );
    }

    #[test]
    fn a_stopped_container_is_not_started_by_heal() {
        let old = seen('o', "shop-web-1-pp-old", false);
        assert_eq!(
            plan_heal(&entry(Phase::OldRenamed, false), Some(&old), None),
            HealAction::Restore {
                remove_new: None,
                rename_old: true,
                start_old: false
            }
        );
    }

    #[test]
    fn an_ungated_replacement_with_the_name_is_gated_now() {
        let old = seen('o', "shop-web-1-pp-old", false);
        let new = seen('n', "shop-web-1", false);
        assert_eq!(
            plan_heal(&entry(Phase::NewRenamed, true), Some(&old), Some(&new)),
            HealAction::Gate {
                new_id: "n".repeat(64),
                rename_new: false,
                start_new: true
            }
        );
        let running = seen('n', "shop-web-1", true);
        assert_eq!(
            plan_heal(&entry(Phase::Started, true), Some(&old), Some(&running)),
            HealAction::Gate {
                new_id: "n".repeat(64),
                rename_new: false,
                start_new: false
            }
        );
    }

    #[test]
    fn a_passed_update_is_finished() {
        let new = seen('n', "shop-web-1", true);
        let old = seen('o', "shop-web-1-pp-old", false);
        assert_eq!(
            plan_heal(&entry(Phase::Passed, true), Some(&old), Some(&new)),
            HealAction::Finish {
                new_id: "n".repeat(64),
                remove_old: Some("o".repeat(64))
            }
        );
        assert_eq!(
            plan_heal(&entry(Phase::Passed, true), None, Some(&new)),
            HealAction::Finish {
                new_id: "n".repeat(64),
                remove_old: None
            }
        );
    }

    #[test]
    fn old_removed_by_hand_means_the_replacement_is_gated_under_the_name() {
        let new = seen('n', "shop-web-1-pp-new", false);
        assert_eq!(
            plan_heal(&entry(Phase::Created, true), None, Some(&new)),
            HealAction::Gate {
                new_id: "n".repeat(64),
                rename_new: true,
                start_new: true
            }
        );
    }

    #[test]
    fn both_gone_needs_a_person() {
        assert!(matches!(
            plan_heal(&entry(Phase::Started, true), None, None),
            HealAction::ActionNeeded(_)
        ));
    }
}

/// What heal did for one journal entry, for the run's report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Healed {
    pub container: String,
    pub action: &'static str,
    #[serde(flatten)]
    pub outcome: crate::engine::update::UpdateOutcome,
}

/// Finishes or undoes every journal entry, according to what Docker shows now.
pub fn heal_all(
    exec: &crate::engine::update::Executor<'_>,
    state: &mut crate::state::State,
) -> Vec<Healed> {
    use crate::engine::update::UpdateOutcome;

    let mut report = Vec::new();
    for entry in state.journal.clone() {
        if entry.compose.is_some() {
            log::warn!(
                "An earlier run was interrupted while updating {} with compose (at step {:?}); \
                 running the same compose step again.",
                entry.name,
                entry.phase
            );
            let outcome = exec.heal_compose(state, &entry);
            report.push(Healed {
                container: entry.name.clone(),
                action: if matches!(outcome, UpdateOutcome::Updated { .. }) {
                    "finished"
                } else {
                    "restored"
                },
                outcome,
            });
            continue;
        }
        let seen = |id_or_name: &str| {
            exec.runtime.inspect_container(id_or_name).ok().map(|f| {
                (
                    Seen {
                        id: f.id,
                        name: f.name,
                        running: f.running,
                    },
                    f.image_id,
                    f.labels,
                )
            })
        };
        let old = seen(&entry.old_id).map(|(s, _, _)| s);
        let new = entry.new_id.as_deref().and_then(seen).or_else(|| {
            seen(&entry.temp_name).filter(|(_, image, _)| *image == entry.new_image_id)
        });
        let labels = new.as_ref().map(|(_, _, l)| l.clone()).unwrap_or_default();
        let new = new.map(|(s, _, _)| s);
        let action = plan_heal(&entry, old.as_ref(), new.as_ref());
        log::warn!(
            "An earlier run was interrupted while updating {} (at step {:?}); healing: {action:?}.",
            entry.name,
            entry.phase
        );
        let (word, outcome) = match action {
            HealAction::Restore { .. } => (
                "restored",
                match exec.restore(state, &entry) {
                    Ok(()) => UpdateOutcome::Failed {
                        reason: "an earlier run was interrupted; the old container was restored and the update will be tried again".into(),
                    },
                    Err(e) => UpdateOutcome::ActionNeeded { reason: format!("restoring the old container failed: {e:#}") },
                },
            ),
            HealAction::Finish { .. } => (
                "finished",
                match exec.finish(state, &entry) {
                    Ok(()) => UpdateOutcome::Updated { from: entry.previous_digest.clone(), to: entry.digest.clone() },
                    Err(e) => UpdateOutcome::ActionNeeded { reason: format!("finishing the update failed: {e:#}") },
                },
            ),
            HealAction::Gate { new_id, rename_new, start_new } => {
                let prepared = (|| -> anyhow::Result<()> {
                    if rename_new {
                        exec.runtime.rename_container(&new_id, &entry.name)?;
                    }
                    if start_new {
                        exec.runtime.start_container(&new_id)?;
                    }
                    Ok(())
                })();
                let outcome = match prepared {
                    Ok(()) => {
                        let image = exec.runtime.inspect_image(&entry.new_image_id).ok().flatten();
                        let image_labels = image.map(|i| i.config.labels).unwrap_or_default();
                        let gate = crate::engine::update::gate::GatePolicy::from_labels(
                            &labels,
                            &image_labels,
                            &exec.knobs,
                        );
                        exec.gate_and_settle(state, &entry, &new_id, gate)
                    }
                    Err(e) => match exec.restore(state, &entry) {
                        Ok(()) => UpdateOutcome::Failed { reason: format!("the unfinished replacement could not be started ({e:#}); the old container was restored") },
                        Err(r) => UpdateOutcome::ActionNeeded { reason: format!("{e:#}; restoring failed too ({r:#})") },
                    },
                };
                ("gated", outcome)
            }
            HealAction::ActionNeeded(reason) => {
                log::error!("ACTION NEEDED for {}: {reason}", entry.name);
                ("none", UpdateOutcome::ActionNeeded { reason })
            }
        };
        report.push(Healed {
            container: entry.name.clone(),
            action: word,
            outcome,
        });
    }
    report
}
