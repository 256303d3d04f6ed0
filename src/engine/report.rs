//! What a pass and a plan print: the table (or JSON) with one row per container, the healed
//! entries and the summary line. Pure text; [`print_pass`] and [`print_plan`] hand it to
//! [`crate::output`].

use std::fmt::Write as _;
use std::time::SystemTime;

use anyhow::Result;

use super::check::Evaluated;
use super::heal::Healed;
use super::pass::{PassReport, PlanReport, Summary};
use super::update::{RecreatePath, UpdateOutcome};
use crate::output;

/// Prints what a pass did.
pub fn print_pass(report: &PassReport, json: bool) -> Result<()> {
    if json {
        let rows: Vec<serde_json::Value> = report
            .evaluated
            .iter()
            .zip(&report.outcomes)
            .map(|(e, o)| {
                let mut row = serde_json::to_value(e.row(report.now)).expect("rows serialise");
                row["result"] = serde_json::to_value(o).expect("outcomes serialise");
                row
            })
            .collect();
        output::json(&output::document(serde_json::json!({
            "scope": report.scope,
            "healed": report.healed,
            "containers": rows,
            "summary": report.summary,
        })))
    } else {
        output::text(&render_pass(
            &report.scope,
            &report.evaluated,
            &report.outcomes,
            &report.healed,
            &report.summary,
            report.now,
        ));
        Ok(())
    }
}

/// Prints a plan.
pub fn print_plan(plan: &PlanReport, json: bool) -> Result<()> {
    if json {
        output::json(&plan_json(plan))
    } else {
        let mut text = render_plan(&plan.scope, &plan.evaluated, plan.now);
        text.push_str(&render_routes(&plan.evaluated, &plan.routes));
        output::text(&text);
        Ok(())
    }
}

/// `plan --json`: the scope, the time, one row per container, and `registries`: per registry
/// host that reported a pull-rate limit during the checks (Docker Hub's `RateLimit-*`
/// headers), `{"rate_limit": {"limit", "remaining", "window_seconds"}}`.
pub fn plan_json(plan: &PlanReport) -> serde_json::Value {
    let rows: Vec<_> = plan
        .evaluated
        .iter()
        .zip(&plan.routes)
        .map(|(e, r)| {
            let mut row = serde_json::to_value(e.row(plan.now)).expect("rows serialise");
            if let Some(r) = r {
                row["recreate"] = route_json(r);
            }
            row
        })
        .collect();
    let registries: serde_json::Map<String, serde_json::Value> = plan
        .rate_limits
        .iter()
        .map(|(host, limit)| {
            (
                host.clone(),
                serde_json::json!({ "rate_limit": limit.to_json() }),
            )
        })
        .collect();
    output::document(serde_json::json!({
        "scope": plan.scope,
        "generated_at": humantime::format_rfc3339_seconds(plan.now).to_string(),
        "containers": rows,
        "registries": registries,
    }))
}

pub fn render_plan(scope: &str, evaluated: &[Evaluated], now: SystemTime) -> String {
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
    out.push_str(&versions(evaluated));
    out.push_str(&changes(evaluated));
    out
}

/// What each candidate changes, when the images say.
fn changes(evaluated: &[Evaluated]) -> String {
    let mut out = String::new();
    for e in evaluated {
        let Some(c) = &e.changes else { continue };
        if out.is_empty() {
            out.push_str("\nWhat changed:\n");
        }
        let _ = writeln!(
            out,
            "  {} ({}): {c}",
            e.container.display_name(),
            e.container.name
        );
    }
    out
}

/// What the version track found, per tracked container.
fn versions(evaluated: &[Evaluated]) -> String {
    let mut out = String::new();
    for e in evaluated {
        let Some(v) = &e.version else { continue };
        if out.is_empty() {
            out.push_str(
                "
Versions:
",
            );
        }
        let newer = v.candidate_tag.as_ref().map_or_else(
            || format!("{} is the newest it allows", v.current_tag),
            |t| format!("{} → {t}", v.current_tag),
        );
        let _ = write!(
            out,
            "  {} ({}): track={}, {newer}",
            e.container.display_name(),
            e.container.name,
            v.track
        );
        if let Some(held) = &v.held_back {
            let _ = write!(out, "; {held}");
        }
        if !v.tags_complete && v.tags_listed > 0 {
            let _ = write!(
                out,
                "; only the first {} tags were listed, so a newer one may be missed",
                v.tags_listed
            );
        }
        out.push('\n');
    }
    out
}

/// How a route reads in `plan --json`.
fn route_json(route: &RecreatePath) -> serde_json::Value {
    match route {
        RecreatePath::Compose(step) => serde_json::json!({
            "by": "compose",
            "services": step.services,
        }),
        RecreatePath::Api(reason) => serde_json::json!({
            "by": "api",
            "reason": reason,
        }),
        RecreatePath::AtUpdate(reason) => serde_json::json!({
            "by": "decided-at-update",
            "reason": reason,
        }),
    }
}

/// How each pending compose update would recreate its container.
pub fn render_routes(evaluated: &[Evaluated], routes: &[Option<RecreatePath>]) -> String {
    let mut out = String::new();
    for (e, route) in evaluated.iter().zip(routes) {
        let Some(route) = route else { continue };
        if out.is_empty() {
            out.push_str("\nRecreate:\n");
        }
        let how = match route {
            RecreatePath::Compose(step) => format!(
                "by compose (`up --no-deps {}`), exactly as `docker compose up -d` would",
                step.services.join(" ")
            ),
            RecreatePath::Api(reason) | RecreatePath::AtUpdate(reason) => reason.clone(),
        };
        let _ = writeln!(
            out,
            "  {} ({}): {how}",
            e.container.display_name(),
            e.container.name
        );
    }
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

fn render_pass(
    scope: &str,
    evaluated: &[Evaluated],
    outcomes: &[Option<UpdateOutcome>],
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::decide::{Decision, Observed};
    use crate::engine::discover::Discovered;
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
            changes: None,
            version: None,
            container: Discovered {
                oci: crate::state::ImageLabels::default(),
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

    /// The plan table with one row per kind of decision an operator sees most, so a change
    /// of wording or layout is a reviewed diff of tests/snapshots/plan-table.txt.
    #[test]
    fn the_plan_table_is_snapshotted() {
        use std::time::Duration;

        use crate::reference::Digest;
        let digest =
            |c: char| Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let with = |service: &str, decision: Decision, available: Option<Digest>| {
            let mut e = evaluated(service, &[], &[]);
            e.container.observed.local_digests = vec![digest('a')];
            e.available = available;
            e.decision = decision;
            e
        };
        let all = [
            with("web", Decision::UpToDate, Some(digest('a'))),
            with(
                "api",
                Decision::Soaking {
                    tag: None,
                    digest: digest('b'),
                    first_seen: now - Duration::from_secs(3600),
                    rollout_at: now + Duration::from_secs(23 * 3600),
                    remaining_seconds: 23 * 3600,
                    new_candidate: false,
                },
                Some(digest('b')),
            ),
            with(
                "worker",
                Decision::Update {
                    tag: None,
                    digest: digest('c'),
                },
                Some(digest('c')),
            ),
            with(
                "cache",
                Decision::Blocked {
                    tag: None,
                    digest: digest('d'),
                    reason: "unhealthy".into(),
                },
                Some(digest('d')),
            ),
            with(
                "db",
                Decision::RegistryError {
                    kind: "unreachable".into(),
                    message: "cannot reach registry.example: connection refused".into(),
                },
                None,
            ),
            with("builder", Decision::LocallyBuilt, None),
        ];
        crate::testsnap::assert_snapshot("plan-table", &render_plan("project shop", &all, now));
    }

    #[test]
    fn plan_json_reports_each_registrys_rate_limit() {
        let limit = crate::registry::RateLimit {
            limit: 100,
            remaining: 75,
            window: Some(std::time::Duration::from_secs(21600)),
        };
        let plan = PlanReport {
            scope: "project shop".into(),
            evaluated: Vec::new(),
            routes: Vec::new(),
            rate_limits: [("registry-1.docker.io".to_string(), limit)].into(),
            now: SystemTime::UNIX_EPOCH,
        };
        assert_eq!(
            plan_json(&plan)["registries"],
            serde_json::json!({"registry-1.docker.io": {"rate_limit":
                {"limit": 100, "remaining": 75, "window_seconds": 21600}}})
        );
        let none = PlanReport {
            rate_limits: std::collections::BTreeMap::new(),
            ..plan
        };
        assert_eq!(plan_json(&none)["registries"], serde_json::json!({}));
    }

    #[test]
    fn plan_lists_the_labels_it_ignored_and_why() {
        let from_image = [(labels::SOAK, "0"), (labels::EXCLUDE, "true")];
        let all = [
            evaluated("web", &from_image, &from_image),
            evaluated("db", &[(labels::SOAK, "0s")], &[(labels::SOAK, "0")]),
        ];
        let now = SystemTime::UNIX_EPOCH;
        let text = render_plan("project shop", &all, now);
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
        assert!(!render_plan("project shop", &all[1..], now).contains("Ignored"));
    }
}
