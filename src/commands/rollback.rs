//! `pullpilot rollback SERVICE [--to DIGEST]`: put a service back on the image it ran before
//! its last update (or on a digest from its history), through the same health-gated, journaled
//! recreate as an update; then block the abandoned digest and pin the service there.

use std::time::SystemTime;

use anyhow::Result;

use crate::cli::RollbackArgs;
use crate::commands::Invocation;
use crate::commands::plan::registry_options;
use crate::discover;
use crate::docker::Docker;
use crate::error::{Failure, Outcome as RunOutcome};
use crate::heal;
use crate::output;
use crate::reference::{Digest, ImageRef};
use crate::registry::RegistryClient;
use crate::state::{self, HistoryEntry, Pin, record};
use crate::update::{Executor, Outcome};

pub(super) fn run(inv: &Invocation, args: &RollbackArgs) -> Result<RunOutcome> {
    let settings = &inv.settings;
    let docker = Docker::connect(settings.docker_host.as_deref())?;
    let _lock = state::store::lock(&settings.data_dir, settings.wait)?;
    let mut state = state::load(&settings.data_dir)?.state;
    let registry = RegistryClient::new(registry_options(settings))?;
    let exec = Executor {
        docker: &docker,
        registry: &registry,
        data_dir: &settings.data_dir,
        // The image rolled back from stays: it may be wanted again once fixed.
        knobs: inv.update_knobs(false),
    };
    heal::heal_all(&exec, &mut state);

    let c = discover::select_one(inv.discover(&docker)?.1, &args.service)?;
    let reference = ImageRef::parse(&c.observed.config_image)
        .map_err(|e| Failure::usage(format!("{} cannot be rolled back: {e}", c.name)))?;
    let history = state
        .containers
        .get(&c.observed.key)
        .map(|s| s.history.clone())
        .unwrap_or_default();
    let (target, target_image) = match &args.to {
        None => previous(&history).ok_or_else(|| {
            Failure::usage(format!(
                "pullpilot has not updated {} yet, so there is no previous image to return to; \
                 use --to DIGEST with a digest from `pullpilot status {}`",
                c.display_name(),
                args.service
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
    let outcome = exec.update(&mut state, &c, &reference, &target, Some(&target_image));
    let ok = matches!(outcome, Outcome::Updated { .. } | Outcome::Unchanged { .. });
    if ok {
        let now = SystemTime::now();
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
        let saved = state.containers.entry(c.observed.key.clone()).or_default();
        if let Some(last) = saved.history.last_mut() {
            last.outcome = "manual-rollback".into();
        }
        let reason = match &abandoned {
            Some(from) => format!("rolled back from {} by `pullpilot rollback`", from.short()),
            None => "rolled back by `pullpilot rollback`".into(),
        };
        saved.pin = Some(Pin {
            digest: target.clone(),
            since: now,
            reason,
        });
        state::save(&settings.data_dir, &state)?;
    }
    if args.json {
        output::json(&serde_json::json!({
            "container": c.name,
            "service": c.service,
            "to": target,
            "from": abandoned,
            "result": outcome,
            "pinned": ok,
        }))?;
    } else if ok {
        output::text(&format!(
            "{} runs {} again and is pinned there{}; `pullpilot unpin {}` resumes updates.\n",
            c.display_name(),
            target.short(),
            abandoned
                .map(|d| format!(" ({} is blocked)", d.short()))
                .unwrap_or_default(),
            args.service
        ));
    } else {
        output::text(&format!(
            "Rolling {} back failed ({}): {}.\n",
            c.display_name(),
            outcome.word(),
            outcome.describe()
        ));
    }
    Ok(if ok {
        RunOutcome::Ok
    } else {
        RunOutcome::SomeFailed
    })
}

/// The digest and image the service ran before its last update.
fn previous(history: &[HistoryEntry]) -> Option<(Digest, String)> {
    history
        .iter()
        .rev()
        .filter(|h| h.outcome == "updated" || h.outcome == "manual-rollback")
        .find_map(|h| Some((h.previous_digest.clone()?, h.previous_image_id.clone()?)))
}

/// The image that held `digest`, from any history entry.
fn in_history(history: &[HistoryEntry], digest: &Digest) -> Option<(Digest, String)> {
    history.iter().rev().find_map(|h| {
        if &h.digest == digest && h.outcome != "rolled-back" {
            Some((digest.clone(), h.image_id.clone()))
        } else if h.previous_digest.as_ref() == Some(digest) {
            Some((digest.clone(), h.previous_image_id.clone()?))
        } else {
            None
        }
    })
}
