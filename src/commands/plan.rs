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
                format!("{}: {}", e.decision.word(), e.reason(now)),
            ]
        })
        .collect();
    let mut out = format!(
        "scope: {scope}\n\n{}",
        output::table(
            &["SERVICE", "IMAGE", "CURRENT", "AVAILABLE", "DECISION"],
            &rows
        )
    );
    out.push_str(&ignored_labels(evaluated));
    out
}

/// The policy labels that were not read, per container, with the reason.
fn ignored_labels(evaluated: &[Evaluated]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for e in evaluated {
        let ignored = &e.container.observed.labels.ignored;
        if ignored.is_empty() {
            continue;
        }
        if out.is_empty() {
            out.push_str("\nIgnored labels:\n");
        }
        let _ = writeln!(
            out,
            "  {} ({}):",
            e.container.display_name(),
            e.container.name
        );
        for label in ignored {
            let _ = writeln!(out, "    {label}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::decide::{Decision, Observed};
    use crate::discover::Discovered;
    use crate::labels;

    fn evaluated(service: &str, container: &[(&str, &str)], image: &[(&str, &str)]) -> Evaluated {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect()
        };
        let name = format!("shop-{service}-1");
        Evaluated {
            container: Discovered {
                id: "abc".into(),
                name: name.clone(),
                project: Some("shop".into()),
                service: Some(service.into()),
                running: true,
                image_id: "sha256:1".into(),
                labels: map(container),
                observed: Observed {
                    key: format!("shop/{service}"),
                    name,
                    config_image: "registry.example/shop/web:1".into(),
                    local_digests: Vec::new(),
                    running: None,
                    dangling: false,
                    labels: labels::parse_container(&map(container), &map(image), None, false),
                    is_self: false,
                },
                depends_on: Vec::new(),
            },
            reference: None,
            available: None,
            platform_check: None,
            decision: Decision::UpToDate,
        }
    }

    #[test]
    fn plan_lists_the_labels_it_ignored_and_why() {
        let from_image = [(labels::SOAK, "0"), (labels::EXCLUDE, "true")];
        let all = [
            evaluated("web", &from_image, &from_image),
            evaluated("db", &[(labels::SOAK, "0s")], &[(labels::SOAK, "0")]),
        ];
        let now = SystemTime::UNIX_EPOCH;
        let text = render("project shop", &all, now);
        assert!(
            text.contains("Ignored labels:\n  web (shop-web-1):\n"),
            "{text}"
        );
        assert!(
            text.contains("    io.pullpilot.soak=\"0\": label from the image, ignored"),
            "{text}"
        );
        assert!(text.contains("    io.pullpilot.exclude=\"true\": label from the image"));
        assert!(!text.contains("db (shop-db-1)"), "db set its own: {text}");

        let row = serde_json::to_value(all[0].row(now)).unwrap();
        assert_eq!(row["ignored_labels"][1]["label"], labels::SOAK);
        assert_eq!(row["ignored_labels"][1]["value"], "0");
        assert_eq!(row["ignored_labels"][1]["reason"], labels::FROM_IMAGE);
        let row = serde_json::to_value(all[1].row(now)).unwrap();
        assert_eq!(row["ignored_labels"], serde_json::json!([]));
        // Nothing ignored: no section at all.
        assert!(!render("project shop", &all[1..], now).contains("Ignored"));
    }
}
