//! Following versions (`io.pullpilot.track`) on the bed: tags pushed to the bed's registries,
//! the newest tag of the right shape chosen, soaked, applied through compose with the compose
//! file (or `.env`) moved one line, rolled back with the file, refused when the file cannot be
//! edited, a 1,500-tag repository listed through its `Link` pages, and kills at each new step
//! healed to a consistent pair of file and container.

use std::fmt::Write as _;
use std::fs;

use serde_json::Value;

use crate::common::fault_proxy::{Fault, FaultProxy};
use crate::common::pullpilot::{Run, pullpilot};
use crate::common::sink::Sink;
use crate::common::{Bed, Project, Reg, TempDir, Variant, unique_name};

/// Pushes each `(tag, variant)` of `repo` to `reg`.
fn push_tags(bed: &Bed, reg: Reg, repo: &str, tags: &[(&str, Variant)]) {
    for (tag, variant) in tags {
        bed.push_image(reg, repo, tag, *variant);
    }
}

fn id_of(bed: &Bed, variant: Variant) -> Value {
    bed.inspect(&variant.base_image())["Id"].clone()
}

/// Runs pullpilot on `project` with `env`, scoped to it, with the bed's Docker config.
fn run(project: &Project<'_>, data: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Run {
    run_with(project, &project.bed().docker_config, data, args, env)
}

/// [`run`] with the Docker config (credentials) in `config`.
fn run_with(
    project: &Project<'_>,
    config: &std::path::Path,
    data: &TempDir,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let scope = format!("project:{}", project.name());
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--scope", &scope]);
    pullpilot(project.bed(), project.dir(), config, data.path(), &all, env)
}

/// The lines that differ between two texts of the same length in lines.
fn changed_lines<'t>(before: &'t str, after: &'t str) -> Vec<(&'t str, &'t str)> {
    assert_eq!(
        before.lines().count(),
        after.lines().count(),
        "no line added or removed:\n{after}"
    );
    before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect()
}

fn state(data: &TempDir) -> Value {
    serde_json::from_str(&fs::read_to_string(data.path().join("state.json")).unwrap()).unwrap()
}

/// Every shape and level in one project: the newest tag each track allows is chosen (numbers
/// compared numerically, pre-releases skipped, the prefix and suffix kept), soaked with its
/// tag, then applied; the compose file changes by exactly those tags, compose agrees, and the
/// history records the tag change.
#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn tracked_services_move_to_the_newest_tag_of_their_shape_and_the_file_follows() {
    let bed = Bed::get();
    let repo = unique_name("track");
    push_tags(
        bed,
        Reg::Token,
        &repo,
        &[
            ("1.2.3", Variant::V1),
            ("1.2.4", Variant::V2),
            ("1.2.9", Variant::V2),
            ("1.2.10", Variant::V3),
            ("1.3.0", Variant::V2),
            ("2.0.0", Variant::V3),
            ("1.2.11-rc1", Variant::V2),
            ("v1.2.3", Variant::V1),
            ("v1.2.5", Variant::V2),
            ("1.2.3-alpine", Variant::V1),
            ("1.2.9-alpine", Variant::V2),
            ("build-7", Variant::V1),
            ("build-12", Variant::V2),
            ("build-9", Variant::V3),
        ],
    );
    // Date tags have three numbers too: in the same repository `major` would take them for
    // versions (see the README), so they get their own.
    let dates = format!("{repo}-dated");
    push_tags(
        bed,
        Reg::Token,
        &dates,
        &[
            ("2024.01.05", Variant::V1),
            ("2024.10.01", Variant::V2),
            ("2024.9.30", Variant::V3),
        ],
    );
    let image = bed.registry(Reg::Token).image(&repo, "");
    let image = image.trim_end_matches(':');
    let dated_image = bed.registry(Reg::Token).image(&dates, "");
    let dated_image = dated_image.trim_end_matches(':');
    // (service, current tag, track, expected tag, expected image)
    let cases: [(&str, &str, &str, &str, Variant); 7] = [
        ("patch", "1.2.3", "patch", "1.2.10", Variant::V3),
        ("minor", "1.2.3", "minor", "1.3.0", Variant::V2),
        ("major", "1.2.3", "major", "2.0.0", Variant::V3),
        ("vee", "v1.2.3", "patch", "v1.2.5", Variant::V2),
        (
            "alpine",
            "1.2.3-alpine",
            "patch",
            "1.2.9-alpine",
            Variant::V2,
        ),
        (
            "build",
            "build-7",
            r"'regex:^build-(\d+)$'",
            "build-12",
            Variant::V2,
        ),
        (
            "dated",
            "2024.01.05",
            r"'regex:^(\d{4})\.(\d{2})\.(\d{2})$'",
            "2024.10.01",
            Variant::V2,
        ),
    ];
    let mut yaml = String::from("# versions under test\nservices:\n");
    let image_of = |service: &str| {
        if service == "dated" {
            dated_image
        } else {
            image
        }
    };
    for (service, tag, track, _, _) in &cases {
        let _ = write!(
            yaml,
            "  {service}:\n    image: {}:{tag}   # keep this comment\n    labels:\n      \
             io.pullpilot.track: {track}\n",
            image_of(service)
        );
    }
    let tokens = bed.docker_config_with(&[Reg::Token]);
    let project = Project::up_with_config(bed, &yaml, tokens.path());
    let before = fs::read_to_string(project.compose_file()).unwrap();
    let data = TempDir::new("track");
    let soaking = [("PP_SOAK", "1h")];

    let plan = run_with(
        &project,
        tokens.path(),
        &data,
        &["plan", "--json"],
        &soaking,
    );
    assert_eq!(plan.code, 0, "{plan}");
    for (service, from, _, to, _) in &cases {
        let row = plan.container(service);
        assert_eq!(row["decision"], "soaking", "{service}: {row:#}");
        assert_eq!(row["tag"], *to, "{service} chooses {to}: {row:#}");
        assert_eq!(row["version"]["current_tag"], *from, "{row:#}");
        assert_eq!(row["version"]["candidate_tag"], *to, "{row:#}");
        assert_eq!(row["version"]["tags_complete"], true, "{row:#}");
    }
    assert_eq!(
        plan.container("patch")["version"]["held_back"]["tag"],
        "2.0.0",
        "{plan}"
    );
    let text = run_with(&project, tokens.path(), &data, &["plan"], &soaking);
    assert!(
        text.stdout
            .contains("2.0.0 is available; track=patch keeps 1.2.x"),
        "{text}"
    );

    // The first apply starts the clocks with the tags; plan then shows when and until when.
    let started = run_with(&project, tokens.path(), &data, &["apply"], &soaking);
    assert_eq!(started.code, 0, "{started}");
    let again = run_with(
        &project,
        tokens.path(),
        &data,
        &["plan", "--json"],
        &soaking,
    );
    let patch = again.container("patch");
    assert_eq!(patch["new_candidate"], false, "{again}");
    assert!(patch["first_seen"].is_string() && patch["rollout_at"].is_string());
    let st = state(&data);
    let key = format!("{}/patch", project.name());
    assert_eq!(
        st["containers"][&key]["candidate"]["tag"], "1.2.10",
        "{st:#}"
    );
    assert_eq!(
        fs::read_to_string(project.compose_file()).unwrap(),
        before,
        "nothing moves while soaking"
    );

    let applied = run_with(
        &project,
        tokens.path(),
        &data,
        &["apply", "--json"],
        &[("PP_SOAK", "0")],
    );
    assert_eq!(applied.code, 0, "{applied}");
    let after = fs::read_to_string(project.compose_file()).unwrap();
    let changed = changed_lines(&before, &after);
    assert_eq!(changed.len(), cases.len(), "one line per service:\n{after}");
    // The services are written in the order of `cases`, one image line each.
    for ((old, new), (service, from, _, to, _)) in changed.iter().zip(&cases) {
        assert!(old.contains(&format!(":{from} ")), "{service}: {old}");
        assert_eq!(
            *new,
            old.replacen(&format!(":{from} "), &format!(":{to} "), 1),
            "{service}: only the tag changes, the comment stays"
        );
    }
    let config: Value = serde_json::from_str(&project.compose(&["config", "--format", "json"]))
        .expect("compose config JSON");
    for (service, from, _, to, variant) in &cases {
        assert_eq!(
            applied.container(service)["result"]["outcome"],
            "updated",
            "{applied}"
        );
        let c = project.container(service);
        let image = image_of(service);
        assert_eq!(c["Config"]["Image"], format!("{image}:{to}"), "{service}");
        assert_eq!(c["Image"], id_of(bed, *variant), "{service} runs {to}");
        assert_eq!(c["State"]["Running"], true);
        assert_eq!(
            config["services"][service]["image"],
            format!("{image}:{to}"),
            "compose config shows the new tag"
        );
        let key = format!("{}/{service}", project.name());
        let last = st_history_last(&data, &key);
        assert_eq!(last["tag"], *to, "{last:#}");
        assert_eq!(last["previous_tag"], *from, "{last:#}");
    }
    project.assert_quiet("after the version moves");
    let settled = run_with(
        &project,
        tokens.path(),
        &data,
        &["plan", "--json"],
        &[("PP_SOAK", "0")],
    );
    assert_eq!(
        settled.container("patch")["decision"],
        "up-to-date",
        "{settled}"
    );
}

fn st_history_last(data: &TempDir, key: &str) -> Value {
    let st = state(data);
    st["containers"][key]["history"]
        .as_array()
        .and_then(|h| h.last().cloned())
        .unwrap_or_else(|| panic!("no history for {key}: {st:#}"))
}

/// A version that fails its gate: container and file back on the old tag, the digest blocked
/// and not retried; a later version goes normally; `pullpilot rollback` takes both back.
#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn a_failed_version_rolls_back_image_and_file_and_a_later_one_is_tried() {
    let bed = Bed::get();
    let repo = unique_name("trackfail");
    push_tags(
        bed,
        Reg::Open,
        &repo,
        &[("1.2.3", Variant::V1), ("1.2.10", Variant::V2Unhealthy)],
    );
    let image = bed.registry(Reg::Open).image(&repo, "1.2.3");
    let yaml = format!(
        "services:\n  app:\n    image: {image}\n    labels:\n      io.pullpilot.track: patch\n"
    );
    let project = Project::up(bed, &yaml);
    let data = TempDir::new("trackfail");
    let env = [("PP_SOAK", "0"), ("PP_HEALTH_TIMEOUT", "8s")];

    let failed = run(&project, &data, &["apply", "--json"], &env);
    assert_eq!(failed.code, 1, "{failed}");
    assert_eq!(
        failed.container("app")["result"]["outcome"],
        "rolled-back",
        "{failed}"
    );
    assert_eq!(
        fs::read_to_string(project.compose_file()).unwrap(),
        yaml,
        "the file says 1.2.3 again, byte for byte"
    );
    let c = project.container("app");
    assert_eq!(c["Config"]["Image"], image.as_str());
    assert_eq!(c["Image"], id_of(bed, Variant::V1));
    project.assert_quiet("after the rollback");
    let bad = bed.registry_digest(Reg::Open, &repo, "1.2.10");
    let st = state(&data);
    assert!(
        st["blocked"].to_string().contains(&bad),
        "the failed digest is blocked: {st:#}"
    );

    let next = run(&project, &data, &["apply", "--json"], &env);
    assert_eq!(next.code, 0, "{next}");
    let row = next.container("app");
    assert_eq!(row["decision"], "blocked", "{next}");
    assert_eq!(row["tag"], "1.2.10");
    assert!(row["result"].is_null(), "not retried: {next}");

    bed.push_image(Reg::Open, &repo, "1.2.12", Variant::V2);
    let later = run(&project, &data, &["apply", "--json"], &env);
    assert_eq!(later.code, 0, "{later}");
    assert_eq!(later.container("app")["result"]["outcome"], "updated");
    let moved = fs::read_to_string(project.compose_file()).unwrap();
    assert_eq!(moved, yaml.replace(":1.2.3", ":1.2.12"));
    assert_eq!(project.container("app")["Image"], id_of(bed, Variant::V2));
    project.assert_quiet("after 1.2.12");
    let status = run(&project, &data, &["status"], &env);
    assert!(
        status.stdout.contains("tag 1.2.3 → 1.2.12"),
        "status shows the tag change\n{status}"
    );

    let back = run(&project, &data, &["rollback", "app", "--json"], &env);
    assert_eq!(back.code, 0, "{back}");
    assert_eq!(
        fs::read_to_string(project.compose_file()).unwrap(),
        yaml,
        "rollback puts the file back on 1.2.3"
    );
    let c = project.container("app");
    assert_eq!(c["Config"]["Image"], image.as_str());
    assert_eq!(c["Image"], id_of(bed, Variant::V1));
    project.assert_quiet("after pullpilot rollback");
}

/// A read-only compose file: "update available: cannot edit", notified with the tags, the
/// container untouched. A variable from `.env`: only its line moves.
#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn a_read_only_file_is_only_notified_and_a_dotenv_variable_moves_alone() {
    let bed = Bed::get();
    let repo = unique_name("trackedit");
    push_tags(
        bed,
        Reg::Open,
        &repo,
        &[("1.2.3", Variant::V1), ("1.2.10", Variant::V2)],
    );
    let base = bed.registry(Reg::Open).image(&repo, "");
    let base = base.trim_end_matches(':');
    let sink = Sink::start(false);
    let hook = format!("generic+http://{}/hook", sink.addr);
    let env = [("PP_SOAK", "0"), ("PP_NOTIFY_URL", hook.as_str())];

    let locked_yaml = format!(
        "services:\n  app:\n    image: {base}:1.2.3\n    labels:\n      io.pullpilot.track: patch\n"
    );
    let locked = Project::up(bed, &locked_yaml);
    let file = locked.compose_file();
    let mut perms = fs::metadata(&file).unwrap().permissions();
    perms.set_readonly(true);
    fs::set_permissions(&file, perms).unwrap();
    let data = TempDir::new("trackedit");
    let before = locked.container("app");
    let plan = run(&locked, &data, &["plan", "--json"], &env);
    let row = plan.container("app");
    assert_eq!(row["decision"], "cannot-edit", "{plan}");
    assert_eq!(row["summary"], "update available");
    assert!(
        row["reason"].as_str().unwrap().contains("read-only"),
        "{row:#}"
    );
    let applied = run(&locked, &data, &["apply", "--json"], &env);
    assert_eq!(applied.code, 0, "{applied}");
    assert!(applied.container("app")["result"].is_null(), "{applied}");
    assert_eq!(locked.container("app")["Id"], before["Id"], "untouched");
    assert_eq!(fs::read_to_string(&file).unwrap(), locked_yaml);
    let sent: Vec<Value> = sink
        .requests()
        .iter()
        .map(crate::common::sink::Request::json)
        .collect();
    let note = sent
        .iter()
        .find(|m| m["kind"] == "update_available")
        .unwrap_or_else(|| panic!("no update-available notification: {sent:?}"));
    assert!(
        note["message"].as_str().unwrap().contains("cannot edit"),
        "{note:#}"
    );
    assert_eq!(note["from_tag"], "1.2.3");
    assert_eq!(note["to_tag"], "1.2.10");
    let again = run(&locked, &data, &["apply"], &env);
    assert_eq!(again.code, 0, "{again}");
    assert_eq!(sink.requests().len(), sent.len(), "notified once");

    let var = Project::create(
        bed,
        &format!(
            "services:\n  app:\n    image: {base}:${{APP_TAG}}\n    labels:\n      \
             io.pullpilot.track: patch\n"
        ),
        &bed.docker_config,
    );
    let dotenv = var.dir().join(".env");
    fs::write(&dotenv, "# pinned versions\nAPP_TAG=1.2.3\nOTHER=1\n").unwrap();
    var.compose(&["up", "-d", "--wait"]);
    let compose_before = fs::read_to_string(var.compose_file()).unwrap();
    let vdata = TempDir::new("trackvar");
    let moved = run(&var, &vdata, &["apply", "--json"], &[("PP_SOAK", "0")]);
    assert_eq!(
        moved.container("app")["result"]["outcome"],
        "updated",
        "{moved}"
    );
    assert_eq!(
        fs::read_to_string(&dotenv).unwrap(),
        "# pinned versions\nAPP_TAG=1.2.10\nOTHER=1\n"
    );
    assert_eq!(
        fs::read_to_string(var.compose_file()).unwrap(),
        compose_before
    );
    assert_eq!(
        var.container("app")["Config"]["Image"],
        format!("{base}:1.2.10")
    );
    var.assert_quiet("after moving the .env variable");
}

/// A repository with 1,500 tags is listed completely, through `Link` pages. The bed's
/// registry (Debian's docker-registry 2.8) answers a tag list in one piece whatever `n` says, so
/// the fault proxy in front of it pages the list as distribution 3 and the hosted registries
/// do; the tags, manifests and pulls are the real registry's.
#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn a_repository_with_more_tags_than_a_page_is_listed_through_link() {
    let bed = Bed::get();
    let repo = unique_name("tracklong");
    bed.push_image(Reg::Open, &repo, "1.0.0", Variant::V1);
    let registry = bed.registry(Reg::Open);
    let agent = ureq::Agent::new_with_defaults();
    let mut got = agent
        .get(&format!(
            "http://{}/v2/{repo}/manifests/1.0.0",
            registry.addr
        ))
        .header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json",
        )
        .call()
        .expect("reading the manifest");
    let media_type = got
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_string();
    let body = got.body_mut().read_to_vec().unwrap();
    for i in 1..1500 {
        agent
            .put(&format!(
                "http://{}/v2/{repo}/manifests/1.0.{i}",
                registry.addr
            ))
            .header("Content-Type", &media_type)
            .send(&body[..])
            .unwrap_or_else(|e| panic!("tagging 1.0.{i}: {e}"));
    }
    let proxy = FaultProxy::start(&registry.addr);
    proxy.add(Some("GET"), "/tags/list", Fault::PaginateTags, None);
    let project = Project::up(
        bed,
        &format!(
            "services:\n  app:\n    image: {}/{repo}:1.0.0\n    labels:\n      \
             io.pullpilot.track: patch\n",
            proxy.host()
        ),
    );
    let data = TempDir::new("tracklong");
    let plan = run(&project, &data, &["plan", "--json"], &[("PP_SOAK", "1h")]);
    assert_eq!(plan.code, 0, "{plan}");
    let version = &plan.container("app")["version"];
    assert_eq!(version["tags_listed"], 1500, "{plan}");
    assert_eq!(version["tags_complete"], true);
    assert_eq!(version["candidate_tag"], "1.0.1499", "numeric, not lexical");
    let pages: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.contains("/tags/list"))
        .collect();
    assert_eq!(pages.len(), 2, "two pages of 1,000, one listing: {pages:?}");
    assert!(pages[0].ends_with("/tags/list?n=1000"), "{pages:?}");
    assert!(
        pages[1].contains("last="),
        "the second page follows Link: {pages:?}"
    );
}

/// Killed after the compose edit, before the recreate and during the gate: the next apply
/// heals to one consistent pair (the file and the container on the same tag), and compose has
/// nothing to do.
fn crash_version_move(step: &str, compose: bool) {
    let bed = Bed::get();
    let repo = unique_name(&format!("trackcrash-{step}"));
    push_tags(
        bed,
        Reg::Open,
        &repo,
        &[("1.2.3", Variant::V1), ("1.2.10", Variant::V2)],
    );
    let image = bed.registry(Reg::Open).image(&repo, "1.2.3");
    let yaml = format!(
        "services:\n  app:\n    image: {image}   # app\n    labels:\n      io.pullpilot.track: \
         patch\n"
    );
    let project = Project::up(bed, &yaml);
    let data = TempDir::new("trackcrash");
    let route = if compose { "auto" } else { "off" };
    let killed = run(
        &project,
        &data,
        &["apply"],
        &[
            ("PP_SOAK", "0"),
            ("PP_COMPOSE", route),
            ("PULLPILOT_CRASH_AT", step),
        ],
    );
    assert_eq!(killed.code, -1, "to be killed at {step}\n{killed}");
    let healed = run(
        &project,
        &data,
        &["apply", "--json"],
        &[("PP_SOAK", "0"), ("PP_COMPOSE", route)],
    );
    assert_eq!(healed.code, 0, "after a crash at {step}\n{healed}");
    assert_eq!(
        fs::read_to_string(project.compose_file()).unwrap(),
        yaml.replace(":1.2.3 ", ":1.2.10 "),
        "after {step} the file says 1.2.10, like the container"
    );
    let c = project.container("app");
    assert!(
        c["Config"]["Image"].as_str().unwrap().ends_with(":1.2.10"),
        "{step}: {}",
        c["Config"]["Image"]
    );
    assert_eq!(c["Image"], id_of(bed, Variant::V2), "{step}");
    assert_eq!(c["State"]["Running"], true);
    assert!(
        state(&data).get("journal").is_none(),
        "{step}: journal left"
    );
    if compose {
        project.assert_quiet(&format!("after a crash at {step}"));
    }
}

macro_rules! version_crash_tests {
    ($($test:ident => $step:literal, $compose:literal),* $(,)?) => {$(
        #[test]
        #[ignore = "needs the test bed and --features fault-injection"]
        fn $test() {
            crash_version_move($step, $compose);
        }
    )*};
}

version_crash_tests! {
    crash_version_after_edit => "after-edit", true,
    crash_version_before_compose => "before-compose", true,
    crash_version_during_gate => "during-gate", true,
    crash_version_api_after_edit => "after-edit", false,
    crash_version_api_during_gate => "during-gate", false,
}
