//! Telling people what happened: pre/post-update hooks and the metrics textfile.

use std::fs;
use std::process::Command;

use crate::common::pullpilot::pullpilot;
use crate::common::{Bed, Project, Reg, TempDir, Variant, unique_name};

fn project_with_v2(bed: &Bed, prefix: &str, extra: &str) -> (String, Project<'static>) {
    let repo = unique_name(prefix);
    bed.push_image(Reg::Open, &repo, "stable", Variant::V1);
    let image = bed.registry(Reg::Open).image(&repo, "stable");
    let bed: &'static Bed = Bed::get();
    let project = Project::up(
        bed,
        &format!("services:\n  app:\n    image: {image}\n{extra}"),
    );
    bed.push_image(Reg::Open, &repo, "stable", Variant::V2);
    (repo, project)
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn a_failing_pre_update_hook_cancels_the_update_without_blocking_the_digest() {
    let bed = Bed::get();
    let (repo, project) = project_with_v2(bed, "prehook", "");
    let data = TempDir::new("prehook");
    let seen = data.path().join("hook.env");
    let hook = format!("env | grep ^PULLPILOT_ | sort > {}; exit 1", seen.display());
    let before = project.container("app");
    let scope = format!("project:{}", project.name());
    let env = [("PP_SOAK", "0"), ("PP_PRE_UPDATE_HOOK", hook.as_str())];
    let run = pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &["apply", "--json", "--scope", &scope],
        &env,
    );
    assert_eq!(run.code, 1, "a cancelled update is a failure\n{run}");
    let result = &run.container("app")["result"];
    assert_eq!(result["outcome"], "failed", "{run}");
    assert!(
        result["reason"]
            .as_str()
            .unwrap()
            .contains("pre-update hook"),
        "{run}"
    );
    let after = project.container("app");
    assert_eq!(after["Id"], before["Id"], "the container was not touched");
    assert_eq!(after["Image"], before["Image"]);

    let vars = fs::read_to_string(&seen).unwrap();
    let new = bed.registry_digest(Reg::Open, &repo, "stable");
    for expected in [
        "PULLPILOT_SERVICE=app".to_string(),
        format!("PULLPILOT_PROJECT={}", project.name()),
        format!(
            "PULLPILOT_CONTAINER={}",
            before["Name"].as_str().unwrap().trim_start_matches('/')
        ),
        format!(
            "PULLPILOT_IMAGE={}",
            bed.registry(Reg::Open).image(&repo, "stable")
        ),
        format!("PULLPILOT_NEW_DIGEST={new}"),
        "PULLPILOT_HOOK=pre-update".to_string(),
    ] {
        assert!(
            vars.lines().any(|l| l == expected),
            "{expected:?} not in\n{vars}"
        );
    }
    assert!(vars.contains("PULLPILOT_OLD_DIGEST=sha256:"), "{vars}");

    let plan = pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &["plan", "--json", "--scope", &scope],
        &[("PP_SOAK", "0")],
    );
    assert_eq!(
        plan.container("app")["decision"],
        "update",
        "the digest is not blocked\n{plan}"
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn post_update_hook_and_metrics_file_report_what_happened() {
    let bed = Bed::get();
    let (_repo, project) = project_with_v2(
        bed,
        "metrics",
        "  idle:\n    image: pptb/base:v1\n    pull_policy: never\n    labels: { io.pullpilot.exclude: \"true\" }\n",
    );
    let data = TempDir::new("metrics");
    let outcomes = data.path().join("outcomes");
    let prom = data.path().join("pullpilot.prom");
    let hook = format!(
        "echo \"$PULLPILOT_SERVICE $PULLPILOT_OUTCOME\" >> {}",
        outcomes.display()
    );
    let scope = format!("project:{}", project.name());
    let env = [
        ("PP_SOAK", "0"),
        ("PP_POST_UPDATE_HOOK", hook.as_str()),
        ("PP_METRICS_FILE", prom.to_str().unwrap()),
    ];
    let run = pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &["apply", "--scope", &scope],
        &env,
    );
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(fs::read_to_string(&outcomes).unwrap(), "app updated\n");
    let again = pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &["apply", "--scope", &scope],
        &env,
    );
    assert_eq!(again.code, 0, "{again}");

    // The reference parser reads it, and the values match the two passes.
    let parse = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{s.name}|{labels}|{s.value}")
"#;
    let out = Command::new(&bed.python)
        .args(["-c", parse])
        .arg(&prom)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples = String::from_utf8_lossy(&out.stdout).into_owned();
    let value_of = |key: &str| -> f64 {
        samples
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix('|')))
            .unwrap_or_else(|| panic!("{key} not in\n{samples}"))
            .parse()
            .unwrap()
    };
    for (key, expected) in [
        ("pullpilot_updates_total|", 1.0),
        ("pullpilot_rollbacks_total|", 0.0),
        ("pullpilot_failures_total|", 0.0),
        ("pullpilot_last_run_success|", 1.0),
        ("pullpilot_containers|decision=up to date", 1.0),
        ("pullpilot_containers|decision=excluded", 1.0),
    ] {
        assert!(
            (value_of(key) - expected).abs() < f64::EPSILON,
            "{key} should be {expected}\n{samples}"
        );
    }
    let stamp = samples
        .lines()
        .find(|l| l.starts_with("pullpilot_last_run_timestamp_seconds"))
        .unwrap();
    let value: f64 = stamp.rsplit('|').next().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - value).abs() < 120.0, "{stamp}");
}
