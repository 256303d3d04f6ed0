//! Crash safety: pullpilot is killed with SIGKILL at each step of an update (the test-only
//! `fault-injection` feature does it from inside), then the next `apply` must heal: exactly one
//! container with the original name, running a gated image, no leftovers, no journal left.
//! Both ways of recreating are covered: compose's (the default for compose services; after the
//! heal compose itself must see nothing to do) and the API's (`PP_COMPOSE=off`).

use std::fs;

use serde_json::Value;

use crate::common::pullpilot::pullpilot;
use crate::common::{Bed, Project, Reg, TempDir, Variant, unique_name};

fn crash_then_heal(step: &str, compose: bool) {
    let bed = Bed::get();
    let repo = unique_name(&format!("crash-{step}"));
    bed.push_image(Reg::Open, &repo, "stable", Variant::V1);
    let image = bed.registry(Reg::Open).image(&repo, "stable");
    let project = Project::up(
        bed,
        &format!("services:\n  app:\n    image: {image}\n    volumes: [/data]\n"),
    );
    project.compose(&["exec", "-T", "app", "sh", "-c", "echo kept > /data/proof"]);
    let name = project.container("app")["Name"]
        .as_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    bed.push_image(Reg::Open, &repo, "stable", Variant::V2);
    let data = TempDir::new("crash");
    let scope = format!("project:{}", project.name());
    let args = ["apply", "--json", "--scope", &scope];
    let route = if compose { "auto" } else { "off" };

    let killed = pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &args,
        &[
            ("PP_SOAK", "0"),
            ("PP_COMPOSE", route),
            ("PULLPILOT_CRASH_AT", step),
        ],
    );
    assert_eq!(
        killed.code, -1,
        "pullpilot was to be killed at {step} (build the e2e tests with --features fault-injection)\n{killed}"
    );

    let healed = pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &args,
        &[("PP_SOAK", "0"), ("PP_COMPOSE", route)],
    );
    assert_eq!(healed.code, 0, "after a crash at {step}\n{healed}");
    let both = format!("{}{}", killed.stderr, healed.stderr);
    assert_eq!(
        both.contains("with compose"),
        compose,
        "the update took the {route} path:\n{killed}\n{healed}"
    );

    let names = bed.docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=com.docker.compose.project={}", project.name()),
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(
        names.trim(),
        name,
        "exactly one container, with the original name, after a crash at {step}"
    );
    let all = bed.docker(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !all.lines().any(|n| n.starts_with(&format!("{name}-pp-"))),
        "leftovers after {step}: {all}"
    );
    let c: Value = project.container("app");
    assert_eq!(c["State"]["Running"], true, "{step}");
    let v2 = bed.inspect(&Variant::V2.base_image())["Id"].clone();
    assert_eq!(
        c["Image"], v2,
        "after {step} the update is finished or redone, gated"
    );
    assert_eq!(
        bed.inspect(&image)["Id"],
        v2,
        "the tag points at the running image"
    );
    let proof = project.compose(&["exec", "-T", "app", "cat", "/data/proof"]);
    assert_eq!(
        proof.trim(),
        "kept",
        "the anonymous volume's data survived a crash at {step}"
    );
    let state: Value =
        serde_json::from_str(&fs::read_to_string(data.path().join("state.json")).unwrap()).unwrap();
    assert!(
        state.get("journal").is_none(),
        "journal left after {step}: {state:#}"
    );
    let key = format!("{}/app", project.name());
    let history = state["containers"][&key]["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["outcome"], "updated", "{state:#}");
    let verdict = project.compose(&["--dry-run", "--progress", "json", "up", "-d"]);
    assert!(
        !verdict.contains("Recreate") && !verdict.contains("Creat"),
        "compose has nothing to do after a crash at {step}: {verdict}"
    );
}

macro_rules! crash_tests {
    ($compose:literal: $($test:ident => $step:literal),* $(,)?) => {$(
        #[test]
        #[ignore = "needs the test bed and --features fault-injection"]
        fn $test() {
            crash_then_heal($step, $compose);
        }
    )*};
}

crash_tests! { false:
    crash_api_after_pull => "after-pull",
    crash_api_after_journal => "after-journal",
    crash_api_after_create => "after-create",
    crash_api_after_stop => "after-stop",
    crash_api_after_rename_old => "after-rename-old",
    crash_api_after_rename_new => "after-rename-new",
    crash_api_after_start => "after-start",
    crash_api_during_gate => "during-gate",
    crash_api_after_gate_passed => "after-pass",
}

crash_tests! { true:
    crash_compose_after_pull => "after-pull",
    crash_compose_after_journal => "after-journal",
    crash_compose_before_compose => "before-compose",
    crash_compose_during_compose => "during-compose",
    crash_compose_after_compose => "after-compose",
    crash_compose_during_gate => "during-gate",
    crash_compose_after_gate_passed => "after-pass",
}
