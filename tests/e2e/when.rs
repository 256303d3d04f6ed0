//! When and who, on the bed: a maintenance window holds a soaked update until it opens, a
//! pause holds it until `resume`, and manual approval holds it until `approve` (digest-exact,
//! with the command named in the notification, and `approve --now`).

use serde_json::Value;

use crate::common::pullpilot::{Run, pullpilot};
use crate::common::sink::Sink;
use crate::common::{Bed, Project, Reg, TempDir, Variant, unique_name};

/// A one-service project on `repo:stable` (v1) and a data dir.
fn setup<'a>(bed: &'a Bed, prefix: &str, labels: &str) -> (String, Project<'a>, TempDir) {
    let repo = unique_name(prefix);
    bed.push_image(Reg::Open, &repo, "stable", Variant::V1);
    let image = bed.registry(Reg::Open).image(&repo, "stable");
    let project = Project::up(
        bed,
        &format!("services:\n  app:\n    image: {image}\n{labels}"),
    );
    (repo, project, TempDir::new(prefix))
}

fn run(project: &Project<'_>, data: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Run {
    let scope = format!("project:{}", project.name());
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--scope", &scope]);
    pullpilot(
        project.bed(),
        project.dir(),
        &project.bed().docker_config,
        data.path(),
        &all,
        env,
    )
}

fn id_of(bed: &Bed, variant: Variant) -> Value {
    bed.inspect(&variant.base_image())["Id"].clone()
}

/// A weekly window two days from now (so it is closed now, whatever the time).
fn closed_window() -> String {
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // 1970-01-01 was a Thursday (index 3).
    let today = usize::try_from((secs / 86_400 + 3) % 7).unwrap();
    format!("{} 02:00-03:00", days[(today + 2) % 7])
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn a_soaked_update_waits_for_the_window_and_rolls_out_inside_it() {
    let bed = Bed::get();
    let (repo, project, data) = setup(bed, "window", "");
    bed.push_image(Reg::Open, &repo, "stable", Variant::V2);
    let window = closed_window();
    let closed = [("PP_SOAK", "0"), ("PP_WINDOW", window.as_str())];
    let plan = run(&project, &data, &["plan", "--json"], &closed);
    let row = plan.container("app");
    assert_eq!(row["decision"], "waiting-for-window", "{plan}");
    let reason = row["reason"].as_str().unwrap();
    let day = &window[..3];
    assert!(
        reason.starts_with(&format!("waiting for the window (opens {day} 02:00, in ")),
        "{reason}"
    );
    assert!(row["opens_at"].is_string(), "{row:#}");
    let held = run(&project, &data, &["apply", "--json"], &closed);
    assert_eq!(held.code, 0, "{held}");
    assert!(held.container("app")["result"].is_null(), "{held}");
    assert_eq!(project.container("app")["Image"], id_of(bed, Variant::V1));

    let open = [("PP_SOAK", "0"), ("PP_WINDOW", "daily 00:00-24:00")];
    let inside = run(&project, &data, &["apply", "--json"], &open);
    assert_eq!(
        inside.container("app")["result"]["outcome"],
        "updated",
        "{inside}"
    );
    assert_eq!(project.container("app")["Image"], id_of(bed, Variant::V2));
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn pause_holds_updates_until_resume_and_status_shows_it() {
    let bed = Bed::get();
    let (repo, project, data) = setup(bed, "pause", "");
    bed.push_image(Reg::Open, &repo, "stable", Variant::V2);
    let env = [("PP_SOAK", "0")];
    let paused = run(
        &project,
        &data,
        &["pause", "app", "--for", "2h", "--json"],
        &env,
    );
    assert_eq!(paused.code, 0, "{paused}");
    assert_eq!(paused.json()["paused"][0], "app", "{paused}");
    assert!(paused.json()["until"].is_string());
    let held = run(&project, &data, &["apply", "--json"], &env);
    let row = held.container("app");
    assert_eq!(row["decision"], "paused", "{held}");
    assert!(
        row["until"].is_string(),
        "a --for pause ends by itself: {row:#}"
    );
    assert!(row["result"].is_null());
    assert_eq!(project.container("app")["Image"], id_of(bed, Variant::V1));
    let all = run(&project, &data, &["pause"], &env);
    assert!(all.stdout.contains("Paused every update"), "{all}");
    assert_eq!(run(&project, &data, &["resume", "app"], &env).code, 0);
    let still = run(&project, &data, &["plan", "--json"], &env);
    assert_eq!(
        still.container("app")["decision"],
        "paused",
        "the pause of all holds"
    );
    assert_eq!(run(&project, &data, &["resume"], &env).code, 0);
    let rolled = run(&project, &data, &["apply", "--json"], &env);
    assert_eq!(
        rolled.container("app")["result"]["outcome"],
        "updated",
        "{rolled}"
    );
    assert_eq!(project.container("app")["Image"], id_of(bed, Variant::V2));
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn manual_approval_names_the_command_is_digest_exact_and_approve_now_rolls_out() {
    let bed = Bed::get();
    let (repo, project, data) = setup(
        bed,
        "approve",
        "    labels:\n      io.pullpilot.approve: manual\n",
    );
    let v2 = bed.push_image(Reg::Open, &repo, "stable", Variant::V2);
    let sink = Sink::start(false);
    let hook = format!("generic+http://{}/hook", sink.addr);
    let env = [("PP_SOAK", "0"), ("PP_NOTIFY_URL", hook.as_str())];

    let waiting = run(&project, &data, &["apply", "--json"], &env);
    assert_eq!(waiting.code, 0, "{waiting}");
    let row = waiting.container("app");
    assert_eq!(row["decision"], "awaiting-approval", "{waiting}");
    let command = format!("pullpilot approve app {v2}");
    assert_eq!(row["command"], command.as_str());
    let notes: Vec<Value> = sink
        .requests()
        .iter()
        .map(crate::common::sink::Request::json)
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n["message"].as_str().unwrap_or("").contains(&command)),
        "the notification names the command: {notes:?}"
    );
    assert_eq!(project.container("app")["Image"], id_of(bed, Variant::V1));

    let approved = run(&project, &data, &["approve", "app", "--json"], &env);
    assert_eq!(approved.code, 0, "{approved}");
    let doc = approved.json();
    assert_eq!(doc["approved"], v2.as_str(), "{approved}");
    assert_eq!(doc["schema_version"], 1);
    // A newer digest arrives before the pass: the approval was for v2 only.
    let v3 = bed.push_image(Reg::Open, &repo, "stable", Variant::V3);
    let again = run(&project, &data, &["apply", "--json"], &env);
    let row = again.container("app");
    assert_eq!(row["decision"], "awaiting-approval", "{again}");
    assert_eq!(
        row["digest"],
        v3.as_str(),
        "a newer digest needs a new approval"
    );
    assert!(row["result"].is_null());

    let now = run(&project, &data, &["approve", "app", &v3, "--now"], &env);
    assert_eq!(now.code, 0, "{now}");
    assert_eq!(project.container("app")["Image"], id_of(bed, Variant::V3));
    assert_eq!(project.container("app")["State"]["Running"], true);
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn what_changed_comes_from_the_oci_labels_in_plan_and_notifications() {
    let bed = Bed::get();
    let repo = unique_name("changes");
    let oci = |version: &'static str, revision: &'static str| {
        [
            ("org.opencontainers.image.version", version),
            ("org.opencontainers.image.revision", revision),
            (
                "org.opencontainers.image.source",
                "https://github.com/acme/app.git",
            ),
        ]
    };
    bed.push_labelled_image(
        Reg::Open,
        &repo,
        "stable",
        Variant::V1,
        &oci("1.0.0", "aaa111"),
    );
    let image = bed.registry(Reg::Open).image(&repo, "stable");
    let project = Project::up(bed, &format!("services:\n  app:\n    image: {image}\n"));
    let data = TempDir::new("changes");
    bed.push_labelled_image(
        Reg::Open,
        &repo,
        "stable",
        Variant::V2,
        &oci("1.1.0", "bbb222"),
    );
    let sink = Sink::start(false);
    let hook = format!("generic+http://{}/hook", sink.addr);
    let soaking = [("PP_SOAK", "1h"), ("PP_NOTIFY_URL", hook.as_str())];

    let started = run(&project, &data, &["apply"], &soaking);
    assert_eq!(started.code, 0, "{started}");
    let link = "https://github.com/acme/app/compare/aaa111...bbb222";
    let expected =
        format!("What changed: version 1.0.0 → 1.1.0; revision aaa111 → bbb222; {link}.");
    let soak_note = sink
        .requests()
        .iter()
        .map(crate::common::sink::Request::json)
        .find(|n| n["kind"] == "soak_entered")
        .unwrap_or_else(|| panic!("no soak notification"));
    assert!(
        soak_note["message"].as_str().unwrap().contains(&expected),
        "{soak_note:#}\n{started}"
    );

    let plan = run(&project, &data, &["plan", "--json"], &soaking);
    let changes = &plan.container("app")["changes"];
    assert_eq!(changes["version"]["from"], "1.0.0", "{plan}");
    assert_eq!(changes["version"]["to"], "1.1.0");
    assert_eq!(changes["revision"]["to"], "bbb222");
    assert_eq!(changes["link"], link);
    let text = run(&project, &data, &["plan"], &soaking);
    assert!(text.stdout.contains("What changed:"), "{text}");
    let status = run(&project, &data, &["status", "--json"], &soaking);
    assert_eq!(status.container("app")["changes"]["link"], link, "{status}");

    let env = [("PP_SOAK", "0"), ("PP_NOTIFY_URL", hook.as_str())];
    let applied = run(&project, &data, &["apply", "--json"], &env);
    assert_eq!(
        applied.container("app")["result"]["outcome"],
        "updated",
        "{applied}"
    );
    let updated = sink
        .requests()
        .iter()
        .map(crate::common::sink::Request::json)
        .find(|n| n["kind"] == "updated")
        .unwrap_or_else(|| panic!("no update notification"));
    assert!(
        updated["message"].as_str().unwrap().contains(&expected),
        "{updated:#}"
    );
}
