//! `pullpilot apply`: one full pass. Heal what an earlier run left in flight, decide, start
//! soak clocks, roll out soaked digests in order (order label, `depends_on`, name), and report
//! every outcome. One container's failure never stops the pass.

use std::fmt::Write as _;
use std::time::SystemTime;

use anyhow::Result;

use crate::announce;
use crate::cli::ApplyArgs;
use crate::commands::Invocation;
use crate::commands::plan;
use crate::decide::Decision;
use crate::discover;
use crate::docker::Docker;
use crate::error::{Failure, Outcome as RunOutcome};
use crate::evaluate::{self, Evaluated};
use crate::heal::{self, Healed};
use crate::hooks;
use crate::metrics;
use crate::notify::Notifier;
use crate::order::{self, Item};
use crate::output;
use crate::registry::RegistryClient;
use crate::state::{self, record};
use crate::update::{self, Executor, Outcome};

/// How long one notification target may take before it is given up on.
const NOTIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) fn run(inv: &Invocation, args: &ApplyArgs) -> Result<RunOutcome> {
    let settings = &inv.settings;
    let started = std::time::Instant::now();
    if settings.dry_run {
        log::info!("Dry run: showing the plan; nothing is pulled, recreated or recorded.");
        return plan::run(
            inv,
            &crate::cli::PlanArgs {
                services: args.services.clone(),
                json: args.json,
            },
        );
    }
    let notifier = Notifier::new(&settings.notify_urls, &settings.timezone, NOTIFY_TIMEOUT)
        .map_err(|e| Failure::usage(format!("PP_NOTIFY_URL: {e:#}")))?;
    let docker = Docker::connect(settings.docker_host.as_deref())?;
    let _lock = state::store::lock(&settings.data_dir, settings.wait)?;
    let mut state = state::load(&settings.data_dir)?.state;
    let registry = RegistryClient::new(plan::registry_options(settings))?;
    let exec = Executor {
        docker: &docker,
        registry: &registry,
        data_dir: &settings.data_dir,
        knobs: inv.update_knobs(settings.cleanup),
    };
    let healed = heal::heal_all(&exec, &mut state);
    for h in &healed {
        announce::healed(&notifier, h);
    }

    let (scope, all) = inv.discover(&docker)?;
    let containers = discover::select(all, &args.services)?;
    let now = SystemTime::now();
    let mut evaluated =
        evaluate::evaluate(containers, &registry, &state, inv.evaluate_knobs(), now);
    let mut changed = false;
    for e in &evaluated {
        changed |= record::observe(&mut state, &e.container.observed.key, &e.decision, now);
        if let Decision::Soaking {
            new_candidate: true,
            digest,
            rollout_at,
            ..
        } = &e.decision
        {
            log::info!(
                "{}: new digest {} seen; it rolls out after {} unless the tag changes again.",
                e.container.name,
                digest.short(),
                humantime::format_rfc3339_seconds(*rollout_at)
            );
        }
    }
    changed |= announce::decisions(&notifier, &mut state, &evaluated);
    // The clocks just started: report them as running, not as starting "at the next apply".
    for e in &mut evaluated {
        if let Decision::Soaking { new_candidate, .. } = &mut e.decision {
            *new_candidate = false;
        }
    }
    if changed {
        state::save(&settings.data_dir, &state)?;
    }

    let mut outcomes: Vec<Option<Outcome>> = vec![None; evaluated.len()];
    for i in update_order(&evaluated) {
        let e = &evaluated[i];
        let (Decision::Update { digest }, Some(reference)) = (&e.decision, &e.reference) else {
            continue;
        };
        if state.journal.iter().any(|j| j.name == e.container.name) {
            outcomes[i] = Some(Outcome::ActionNeeded {
                reason: "an interrupted update of this container still needs attention (see above)"
                    .into(),
            });
            continue;
        }
        log::info!("Updating {} to {}.", e.container.name, digest.short());
        let outcome = exec.update(&mut state, &e.container, reference, digest, None);
        match &outcome {
            Outcome::Updated { .. } | Outcome::Unchanged { .. } => {
                log::info!("{}: {}.", e.container.name, outcome.word());
            }
            other => log::error!(
                "{}: {} — {}",
                e.container.name,
                other.word(),
                other.describe()
            ),
        }
        if let Some(command) = &settings.post_update_hook {
            let facts = update::hook_facts(
                &e.container,
                e.container.observed.local_digests.first(),
                digest,
                Some(outcome.kebab()),
            );
            if let Err(why) = hooks::run("post-update", command, &facts, settings.hook_timeout) {
                log::warn!(
                    "The post-update hook for {} failed: {why}.",
                    e.container.name
                );
            }
        }
        announce::outcome(&notifier, &e.container, &outcome);
        outcomes[i] = Some(outcome);
    }

    let summary = summarise(&evaluated, &outcomes, &healed);
    log::info!("Pass finished: {}.", summary.line());
    state.counters.updates += summary.updated as u64;
    state.counters.rollbacks += summary.rolled_back as u64;
    state.counters.failures += outcomes
        .iter()
        .flatten()
        .filter(|o| matches!(o, Outcome::Failed { .. } | Outcome::ActionNeeded { .. }))
        .count() as u64;
    // A failed save must not hide what the pass did: report first, then fail the run.
    let saved = state::save(&settings.data_dir, &state);
    if let Some(path) = &settings.metrics_file {
        let mut containers = std::collections::BTreeMap::new();
        for (e, o) in evaluated.iter().zip(&outcomes) {
            let word = o.as_ref().map_or_else(|| e.decision.word(), Outcome::word);
            *containers.entry(word.to_string()).or_insert(0) += 1;
        }
        let report = metrics::PassReport {
            finished: Some(SystemTime::now()),
            duration: started.elapsed(),
            success: summary.failed == 0 && saved.is_ok(),
            containers,
            totals: state.counters,
        };
        if let Err(e) = metrics::write(path, &report) {
            log::warn!("{e:#}");
        }
    }
    if args.json {
        let rows: Vec<serde_json::Value> = evaluated
            .iter()
            .zip(&outcomes)
            .map(|(e, o)| {
                let mut row = serde_json::to_value(e.row(now)).expect("rows serialise");
                row["result"] = serde_json::to_value(o).expect("outcomes serialise");
                row
            })
            .collect();
        output::json(&serde_json::json!({
            "scope": scope.label(),
            "healed": healed,
            "containers": rows,
            "summary": summary,
        }))?;
    } else {
        output::text(&render(
            &scope.label(),
            &evaluated,
            &outcomes,
            &healed,
            &summary,
            now,
        ));
    }
    saved?;
    Ok(if summary.failed > 0 {
        RunOutcome::SomeFailed
    } else {
        RunOutcome::Ok
    })
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

/// Counts for the summary line and the exit status.
#[derive(Debug, Default, serde::Serialize)]
struct Summary {
    checked: usize,
    updated: usize,
    unchanged: usize,
    rolled_back: usize,
    failed: usize,
    soaking: usize,
    up_to_date: usize,
    healed: usize,
}

impl Summary {
    fn line(&self) -> String {
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

fn summarise(evaluated: &[Evaluated], outcomes: &[Option<Outcome>], healed: &[Healed]) -> Summary {
    let mut s = Summary {
        checked: evaluated.len(),
        healed: healed.len(),
        ..Summary::default()
    };
    for (e, o) in evaluated.iter().zip(outcomes) {
        match (o, &e.decision) {
            (Some(Outcome::Updated { .. }), _) => s.updated += 1,
            (Some(Outcome::Unchanged { .. }), _) => s.unchanged += 1,
            (Some(Outcome::RolledBack { .. }), _) => s.rolled_back += 1,
            (Some(_), _) | (None, Decision::RegistryError { .. }) => s.failed += 1,
            (None, Decision::Soaking { .. }) => s.soaking += 1,
            (None, Decision::UpToDate) => s.up_to_date += 1,
            (None, _) => {}
        }
    }
    s.failed += s.rolled_back;
    s.failed += healed
        .iter()
        .filter(|h| matches!(h.outcome, Outcome::ActionNeeded { .. }))
        .count();
    s
}

fn render(
    scope: &str,
    evaluated: &[Evaluated],
    outcomes: &[Option<Outcome>],
    healed: &[Healed],
    summary: &Summary,
    now: SystemTime,
) -> String {
    let mut out = format!("scope: {scope}\n");
    for h in healed {
        let _ = writeln!(
            out,
            "healed {}: {} — {}",
            h.container,
            h.action,
            h.outcome.describe()
        );
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = evaluated
        .iter()
        .zip(outcomes)
        .map(|(e, o)| {
            let result = match o {
                Some(outcome) => format!("{}: {}", outcome.word(), outcome.describe()),
                None => format!("{}: {}", e.decision.word(), e.reason(now)),
            };
            vec![
                e.container.display_name().to_string(),
                e.container.observed.config_image.clone(),
                result,
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("No containers in scope.\n");
    } else {
        out.push_str(&output::table(&["SERVICE", "IMAGE", "RESULT"], &rows));
    }
    let _ = write!(out, "\n{}\n", summary.line());
    out
}
