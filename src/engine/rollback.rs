//! `pullpilot rollback`'s partial pass: heal, then put one service back on the image it ran
//! before its last update (or on a digest from its history) through the same health-gated,
//! journaled update as a pass; on success block the abandoned digest and pin the service.

use anyhow::Result;

use super::Session;
use super::discover::{self, Discovered};
use super::heal;
use super::update::UpdateOutcome;
use crate::error::Failure;
use crate::reference::{Digest, ImageRef};
use crate::state::{HistoryEntry, Store, record};

/// What a rollback did.
#[derive(Debug)]
pub struct RollbackReport {
    pub container: Discovered,
    pub to: Digest,
    pub from: Option<Digest>,
    pub outcome: UpdateOutcome,
    /// True when the service runs `to` and is pinned there.
    pub pinned: bool,
}

/// Rolls `service` back to `to` (a digest from its history) or to the image it ran before its
/// last update. Usage errors say what to pass instead.
pub fn rollback(session: &Session<'_>, service: &str, to: Option<&str>) -> Result<RollbackReport> {
    let settings = session.settings;
    let (store, mut state) = Store::open(&settings.data_dir, settings.wait)?;
    // The image rolled back from stays: it may be wanted again once fixed.
    let exec = session.executor(&store, false);
    heal::heal_all(&exec, &mut state);

    let c = discover::select_one(session.discover()?.1, service)?;
    let reference = ImageRef::parse(&c.observed.config_image)
        .map_err(|e| Failure::usage(format!("{} cannot be rolled back: {e}", c.name)))?;
    let history = state
        .containers
        .get(&c.observed.key)
        .map(|s| s.history.clone())
        .unwrap_or_default();
    let (target, target_image, target_tag) = match to {
        None => previous(&history).ok_or_else(|| {
            Failure::usage(format!(
                "pullpilot has not updated {} yet, so there is no previous image to return to; \
                 use --to DIGEST with a digest from `pullpilot status {}`",
                c.display_name(),
                service
            ))
        })?,
        Some(text) => {
            let wanted = Digest::parse(text).map_err(|e| Failure::usage(e.to_string()))?;
            in_history(&history, &wanted).ok_or_else(|| {
                let mut known: Vec<String> = history
                    .iter()
                    .flat_map(|h| {
                        [
                            Some(h.digest.to_string()),
                            h.previous_digest.as_ref().map(ToString::to_string),
                        ]
                    })
                    .flatten()
                    .collect();
                known.sort();
                known.dedup();
                Failure::usage(format!(
                    "{wanted} is not in the history of {}; known digests: {}",
                    c.display_name(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            })?
        }
    };
    let abandoned = c.observed.local_digests.first().cloned();
    log::info!("Rolling {} back to {}.", c.name, target.short());
    if let Some(tag) = &target_tag {
        log::info!("{} goes back to the tag {tag} with it.", c.name);
    }
    let outcome = exec.update_to(
        &mut state,
        &c,
        &reference,
        &target,
        Some(&target_image),
        target_tag.as_deref(),
    );
    let ok = matches!(
        outcome,
        UpdateOutcome::Updated { .. } | UpdateOutcome::Unchanged { .. }
    );
    if ok {
        let now = session.clock.now();
        if let Some(abandoned) = abandoned.as_ref().filter(|d| **d != target) {
            record::block(
                &mut state,
                &reference.name(),
                abandoned,
                "abandoned by `pullpilot rollback`",
                &c.name,
                now,
            );
        }
        let reason = match &abandoned {
            Some(from) => format!("rolled back from {} by `pullpilot rollback`", from.short()),
            None => "rolled back by `pullpilot rollback`".into(),
        };
        record::manual_rollback(&mut state, &c.observed.key, &target, reason, now);
        store.save(&state)?;
    }
    Ok(RollbackReport {
        container: c,
        to: target,
        from: abandoned,
        outcome,
        pinned: ok,
    })
}

/// The digest, image and (after a version move) tag the service ran before its last update.
fn previous(history: &[HistoryEntry]) -> Option<(Digest, String, Option<String>)> {
    history
        .iter()
        .rev()
        .filter(|h| h.outcome == "updated" || h.outcome == "manual-rollback")
        .find_map(|h| {
            Some((
                h.previous_digest.clone()?,
                h.previous_image_id.clone()?,
                h.previous_tag.clone(),
            ))
        })
}

/// The image (and tag, for a version move) that held `digest`, from any history entry.
fn in_history(
    history: &[HistoryEntry],
    digest: &Digest,
) -> Option<(Digest, String, Option<String>)> {
    history.iter().rev().find_map(|h| {
        if &h.digest == digest && h.outcome != "rolled-back" {
            Some((digest.clone(), h.image_id.clone(), h.tag.clone()))
        } else if h.previous_digest.as_ref() == Some(digest) {
            Some((
                digest.clone(),
                h.previous_image_id.clone()?,
                h.previous_tag.clone(),
            ))
        } else {
            None
        }
    })
}
