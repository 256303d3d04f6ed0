//! `pullpilot plan`: what `apply` would do now, and why. Read-only: no pull, no container
//! change, no state write, no soak clock started.

use std::time::SystemTime;

use anyhow::Result;

use crate::cli::PlanArgs;
use crate::commands::Invocation;
use crate::discover;
use crate::docker::Docker;
use crate::error::Outcome;
use crate::evaluate::{self, Evaluated};
use crate::output;
use crate::registry::{RegistryClient, RegistryOptions};
use crate::state;

pub(super) fn run(inv: &Invocation, args: &PlanArgs) -> Result<Outcome> {
    let settings = &inv.settings;
    let docker = Docker::connect(settings.docker_host.as_deref())?;
    let (scope, all) = inv.discover(&docker)?;
    let containers = discover::select(all, &args.services)?;
    let state = state::load_read_only(&settings.data_dir)?.state;
    let registry = RegistryClient::new(registry_options(settings))?;
    let now = SystemTime::now();
    let evaluated = evaluate::evaluate(containers, &registry, &state, inv.evaluate_knobs(), now);

    if args.json {
        let rows: Vec<_> = evaluated.iter().map(|e| e.row(now)).collect();
        output::json(&serde_json::json!({
            "scope": scope.label(),
            "generated_at": humantime::format_rfc3339_seconds(now).to_string(),
            "containers": rows,
        }))?;
    } else {
        output::text(&render(&scope.label(), &evaluated, now));
    }
    let failed = evaluated.iter().any(|e| e.decision.is_failure());
    Ok(if failed {
        Outcome::SomeFailed
    } else {
        Outcome::Ok
    })
}

/// Registry client options from the settings.
pub(super) fn registry_options(settings: &crate::settings::Settings) -> RegistryOptions {
    RegistryOptions {
        docker_config_dir: settings.docker_config.clone(),
        insecure_hosts: settings.insecure_registries.clone(),
        ..RegistryOptions::default()
    }
}

fn render(scope: &str, evaluated: &[Evaluated], now: SystemTime) -> String {
    if evaluated.is_empty() {
        return format!("scope: {scope}\nNo containers in scope.\n");
    }
    let short = |d: Option<&crate::reference::Digest>| {
        d.map_or_else(|| "-".to_string(), |d| d.short().to_string())
    };
    let rows: Vec<Vec<String>> = evaluated
        .iter()
        .map(|e| {
            let c = &e.container;
            vec![
                c.display_name().to_string(),
                c.observed.config_image.clone(),
                short(c.observed.local_digests.first()),
                short(e.available.as_ref()),
                format!("{}: {}", e.decision.word(), e.decision.reason(now)),
            ]
        })
        .collect();
    format!(
        "scope: {scope}\n\n{}",
        output::table(
            &["SERVICE", "IMAGE", "CURRENT", "AVAILABLE", "DECISION"],
            &rows
        )
    )
}
