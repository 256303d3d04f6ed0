//! One pass ([`pass`]): heal, discover, check, start soak clocks, announce, update soaked
//! digests in order, count, save, write metrics. One container's failure never stops the pass.
//! And its read-only half ([`plan`]): what a pass would do now, with no state written.

use std::time::{Instant, SystemTime};

use anyhow::Result;

use super::check::{self, Evaluated};
use super::discover::{self, Discovered};
use super::heal::{self, Healed};
use super::order::{self, Item};
use super::update::{RecreatePath, UpdateOutcome, recreate_paths};
use super::{Session, announce, changes, prefetch};
use crate::decide::Decision;
use crate::metrics;
use crate::state::record::{self, SoakClock};
use crate::state::{self, State, Store};

/// What to run a pass over.
#[derive(Clone, Debug, Default)]
pub struct PassRequest {
    /// Services or containers; all in scope when empty.
    pub services: Vec<String>,
}

/// What a pass did, for the report.
#[derive(Debug)]
pub struct PassReport {
    pub scope: String,
    pub evaluated: Vec<Evaluated>,
    /// Per evaluated container, what its update did (`None`: no update was attempted).
    pub outcomes: Vec<Option<UpdateOutcome>>,
    pub healed: Vec<Healed>,
    pub summary: Summary,
    pub now: SystemTime,
    /// The final save failed: what the pass did is reported first, then the run fails.
    pub save_error: Option<anyhow::Error>,
}

/// What `plan` shows.
#[derive(Debug)]
pub struct PlanReport {
    pub scope: String,
    pub evaluated: Vec<Evaluated>,
    /// For each compose container with an update due now: how it would be recreated.
    pub routes: Vec<Option<RecreatePath>>,
    /// The pull-rate limit each registry reported during the checks (Docker Hub's headers).
    pub rate_limits: std::collections::BTreeMap<String, crate::registry::RateLimit>,
    pub now: SystemTime,
}

/// Counts for the summary line and the exit status.
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    pub checked: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub rolled_back: usize,
    pub failed: usize,
    pub soaking: usize,
    pub up_to_date: usize,
    pub healed: usize,
}

impl Summary {
    pub fn line(&self) -> String {
        format!(
            "{} containers: {} updated, {} rolled back, {} failed, {} soaking, {} up to date",
            self.checked,
            self.updated,
            self.rolled_back,
            self.failed,
            self.soaking,
            self.up_to_date
        )
    }
}

/// What `apply` would do now. Read-only: no pull, no container change, no state write.
pub fn plan(session: &Session<'_>, services: &[String]) -> Result<PlanReport> {
    let (scope, all) = session.discover()?;
    let containers = discover::select(all, services)?;
    let state = state::load_read_only(&session.settings.data_dir)?.state;
    let now = session.clock.now();
    let mut evaluated = check::evaluate(
        containers,
        session.registry,
        &state,
        session.check_knobs(),
        now,
    );
    // What the candidates change, as far as a pass has read it (plan asks for no more).
    changes::annotate(&mut evaluated, None, &state.image_labels);
    // How each compose update due now would be made: one listing, one model read and one dry
    // run per project, however many containers wait. (A soaking one is judged when it is due:
    // the files may change meanwhile.)
    let pending: Vec<usize> = evaluated
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            matches!(e.decision, Decision::Update { .. }) && e.container.project.is_some()
        })
        .map(|(i, _)| i)
        .collect();
    let asked: Vec<&Discovered> = pending.iter().map(|&i| &evaluated[i].container).collect();
    let mut answers = recreate_paths(session.runtime, session.compose, &asked, None).into_iter();
    let mut routes: Vec<Option<RecreatePath>> = vec![None; evaluated.len()];
    for i in pending {
        routes[i] = answers.next();
    }
    Ok(PlanReport {
        scope: scope.label(),
        evaluated,
        routes,
        rate_limits: session.registry.rate_limits(),
        now,
    })
}

/// Runs one pass under the state lock. Errors are what stops the pass as a whole (Docker
/// unreachable, the lock held, state unreadable); a container's failure is in the report.
pub fn pass(session: &Session<'_>, request: &PassRequest) -> Result<PassReport> {
    let settings = session.settings;
    let started = Instant::now();
    let (store, mut state) = Store::open(&settings.data_dir, settings.wait)?;
    let exec = session.executor(&store, settings.cleanup);
    let healed = heal::heal_all(&exec, &mut state);
    for h in &healed {
        announce::healed(session.notifier, h, session.clock.now());
    }

    let (scope, all) = session.discover()?;
    let containers = discover::select(all, &request.services)?;
    let now = session.clock.now();
    let mut evaluated = check::evaluate(
        containers,
        session.registry,
        &state,
        session.check_knobs(),
        now,
    );
    let mut changed = record::expire_pauses(&mut state, now);
    let labels = changes::annotate(&mut evaluated, Some(session.registry), &state.image_labels);
    if labels != state.image_labels {
        state.image_labels = labels;
        changed = true;
    }
    changed |= observe(&mut state, &evaluated, now);
    changed |= announce::decisions(
        session.notifier,
        &mut state,
        &evaluated,
        session.clock.now(),
    );
    // The clocks just started: report them as running, not as starting "at the next apply".
    for e in &mut evaluated {
        if let Decision::Soaking { new_candidate, .. } = &mut e.decision {
            *new_candidate = false;
        }
    }
    if changed {
        store.save(&state)?;
    }

    let order = update_order(&evaluated);
    let ahead = prefetch::plan(session, &evaluated, &order, &state);
    let mut outcomes: Vec<Option<UpdateOutcome>> = vec![None; evaluated.len()];
    let mut update_one = |i: usize, prefetched: Option<String>| {
        let e = &evaluated[i];
        let (Decision::Update { digest, tag }, Some(reference)) = (&e.decision, &e.reference)
        else {
            return;
        };
        if state.journal.iter().any(|j| j.name == e.container.name) {
            outcomes[i] = Some(UpdateOutcome::ActionNeeded {
                reason: "an interrupted update of this container still needs attention (see above)"
                    .into(),
            });
            return;
        }
        let from_tag = reference.tag().unwrap_or("latest");
        match tag {
            Some(tag) => log::info!(
                "Updating {} from {from_tag} to {tag} ({}).",
                e.container.name,
                digest.short()
            ),
            None => log::info!("Updating {} to {}.", e.container.name, digest.short()),
        }
        let outcome = exec.update_to(
            &mut state,
            &e.container,
            reference,
            digest,
            prefetched.as_deref(),
            tag.as_deref(),
        );
        match &outcome {
            UpdateOutcome::Updated { .. } | UpdateOutcome::Unchanged { .. } => {
                log::info!("{}: {}.", e.container.name, outcome.word());
            }
            other => log::error!(
                "{}: {} — {}",
                e.container.name,
                other.word(),
                other.describe()
            ),
        }
        exec.post_update_hook(&e.container, digest, &outcome);
        announce::outcome(
            session.notifier,
            &e.container,
            &outcome,
            tag.as_deref().map(|t| (from_tag, t)),
            e.changes.as_ref(),
            session.clock.now(),
        );
        outcomes[i] = Some(outcome);
    };
    prefetch::run(session.runtime, &ahead, settings.prefetch, |fetched| {
        for &i in &order {
            update_one(i, fetched.take(i));
        }
    });

    let summary = summarise(&evaluated, &outcomes, &healed);
    log::info!("Pass finished: {}.", summary.line());
    let failures = outcomes
        .iter()
        .flatten()
        .filter(|o| {
            matches!(
                o,
                UpdateOutcome::Failed { .. } | UpdateOutcome::ActionNeeded { .. }
            )
        })
        .count();
    record::count(
        &mut state,
        summary.updated as u64,
        summary.rolled_back as u64,
        failures as u64,
    );
    // A failed save must not hide what the pass did: report first, then fail the run.
    let saved = store.save(&state);
    if let Some(path) = &settings.metrics_file {
        let mut containers = std::collections::BTreeMap::new();
        for (e, o) in evaluated.iter().zip(&outcomes) {
            let word = o
                .as_ref()
                .map_or_else(|| e.decision.word(), UpdateOutcome::word);
            *containers.entry(word.to_string()).or_insert(0) += 1;
        }
        let metrics = metrics::PassMetrics {
            finished: Some(session.clock.now()),
            duration: started.elapsed(),
            success: summary.failed == 0 && saved.is_ok(),
            containers,
            totals: state.counters,
        };
        if let Err(e) = metrics::write(path, &metrics) {
            log::warn!("{e:#}");
        }
    }
    Ok(PassReport {
        scope: scope.label(),
        evaluated,
        outcomes,
        healed,
        summary,
        now,
        save_error: saved.err(),
    })
}

/// Starts soak clocks for new candidates and forgets stale ones; true when state changed.
fn observe(state: &mut State, evaluated: &[Evaluated], now: SystemTime) -> bool {
    let mut changed = false;
    for e in evaluated {
        let clock = match &e.decision {
            Decision::Soaking {
                digest,
                new_candidate: true,
                rollout_at,
                tag,
                ..
            } => {
                match tag {
                    Some(tag) => log::info!(
                        "{}: new version {tag} ({}) seen; it rolls out after {} unless a newer \
                         version or image appears.",
                        e.container.name,
                        digest.short(),
                        humantime::format_rfc3339_seconds(*rollout_at)
                    ),
                    None => log::info!(
                        "{}: new digest {} seen; it rolls out after {} unless the tag changes \
                         again.",
                        e.container.name,
                        digest.short(),
                        humantime::format_rfc3339_seconds(*rollout_at)
                    ),
                }
                SoakClock::Start(digest, tag.as_deref())
            }
            // Held back after its soak (or with no soak at all): the candidate is remembered,
            // so `approve` and `status` know what waits.
            Decision::Paused { digest, tag, .. }
            | Decision::AwaitingApproval { digest, tag, .. }
            | Decision::WaitingForWindow { digest, tag, .. } => {
                let known = state
                    .containers
                    .get(&e.container.observed.key)
                    .and_then(|s| s.candidate.as_ref())
                    .is_some_and(|c| &c.digest == digest && c.tag == *tag);
                if known {
                    SoakClock::Keep
                } else {
                    SoakClock::Start(digest, tag.as_deref())
                }
            }
            Decision::UpToDate => SoakClock::Forget,
            _ => SoakClock::Keep,
        };
        changed |= record::observe(state, &e.container.observed.key, clock, now);
    }
    changed
}

fn update_order(evaluated: &[Evaluated]) -> Vec<usize> {
    let items: Vec<Item> = evaluated
        .iter()
        .map(|e| Item {
            name: e.container.name.clone(),
            service: e.container.project.clone().zip(e.container.service.clone()),
            order: e.container.observed.labels.policy.order,
            depends_on: e.container.depends_on.clone(),
        })
        .collect();
    order::update_order(&items)
}

fn summarise(
    evaluated: &[Evaluated],
    outcomes: &[Option<UpdateOutcome>],
    healed: &[Healed],
) -> Summary {
    let mut s = Summary {
        checked: evaluated.len(),
        healed: healed.len(),
        ..Summary::default()
    };
    for (e, o) in evaluated.iter().zip(outcomes) {
        match (o, &e.decision) {
            (Some(UpdateOutcome::Updated { .. }), _) => s.updated += 1,
            (Some(UpdateOutcome::Unchanged { .. }), _) => s.unchanged += 1,
            (Some(UpdateOutcome::RolledBack { .. }), _) => s.rolled_back += 1,
            (Some(_), _) | (None, Decision::RegistryError { .. }) => s.failed += 1,
            (None, Decision::Soaking { .. }) => s.soaking += 1,
            (None, Decision::UpToDate) => s.up_to_date += 1,
            (None, _) => {}
        }
    }
    s.failed += s.rolled_back;
    s.failed += healed
        .iter()
        .filter(|h| matches!(h.outcome, UpdateOutcome::ActionNeeded { .. }))
        .count();
    s
}
