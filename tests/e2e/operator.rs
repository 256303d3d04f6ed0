//! The commands a person runs by hand: `status`, `rollback`, `pin`/`unpin` (with `--compose`)
//! and `unblock`, and every operator error path with its message and exit status.

use std::fs;
use std::process::{Child, Command};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::common::fault_proxy::FaultProxy;
use crate::common::pullpilot::{Run, pullpilot};
use crate::common::{Bed, Project, Reg, TempDir, Variant, unique_name};

/// A one-service project (`app`, healthchecked v1 from the open registry) and a data dir.
struct Ops<'a> {
    bed: &'a Bed,
    repo: String,
    project: Project<'a>,
    data: TempDir,
}

impl<'a> Ops<'a> {
    fn new(bed: &'a Bed, prefix: &str) -> Ops<'a> {
        let repo = unique_name(prefix);
        bed.push_image(Reg::Open, &repo, "stable", Variant::V1);
        let image = bed.registry(Reg::Open).image(&repo, "stable");
        let project = Project::up(bed, &format!("services:\n  app:\n    image: {image}\n"));
        Ops {
            bed,
            repo,
            project,
            data: TempDir::new(prefix),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        let scope = format!("project:{}", self.project.name());
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--scope", &scope]);
        pullpilot(
            self.bed,
            self.project.dir(),
            &self.bed.docker_config,
            self.data.path(),
            &all,
            &[("PP_SOAK", "0")],
        )
    }

    fn push(&self, variant: Variant) -> String {
        self.bed
            .push_image(Reg::Open, &self.repo, "stable", variant)
    }

    fn image(&self) -> Value {
        self.project.container("app")["Image"].clone()
    }
}

fn image_id(bed: &Bed, variant: Variant) -> Value {
    bed.inspect(&variant.base_image())["Id"].clone()
}

fn expect(run: &Run, code: i32, words: &[&str]) {
    assert_eq!(run.code, code, "{run}");
    for w in words {
        assert!(
            run.stderr.contains(w) || run.stdout.contains(w),
            "output lacks {w:?}\n{run}"
        );
    }
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn rollback_returns_to_the_previous_image_pins_it_and_unpin_resumes() {
    let bed = Bed::get();
    let ops = Ops::new(bed, "rollback");
    let v1 = ops.bed.registry_digest(Reg::Open, &ops.repo, "stable");
    let v2 = ops.push(Variant::V2);
    expect(&ops.run(&["apply"]), 0, &[]);
    assert_eq!(ops.image(), image_id(bed, Variant::V2));

    let back = ops.run(&["rollback", "app", "--json"]);
    expect(&back, 0, &[]);
    assert_eq!(back.json()["result"]["outcome"], "updated", "{back}");
    let c = ops.project.container("app");
    assert_eq!(c["Image"], image_id(bed, Variant::V1), "runs v1 again");
    assert_eq!(c["State"]["Running"], true);

    let plan = ops.run(&["plan", "--json"]);
    let app = plan.container("app");
    assert_eq!(app["decision"], "pinned-in-state", "{plan}");
    assert_eq!(app["digest"], v1.as_str());
    assert!(app["reason"].as_str().unwrap().contains("unpin"), "{plan}");
    let apply = ops.run(&["apply", "--json"]);
    expect(&apply, 0, &[]);
    assert!(
        apply.container("app")["result"].is_null(),
        "the pinned service is left alone\n{apply}"
    );
    assert_eq!(ops.image(), image_id(bed, Variant::V1));

    let status = ops.run(&["status", "--json"]);
    let s = status.container("app");
    assert_eq!(s["pin"]["digest"], v1.as_str(), "{status}");
    assert_eq!(
        s["blocked"][0]["digest"],
        v2.as_str(),
        "the abandoned digest is blocked\n{status}"
    );

    expect(&ops.run(&["unpin", "app"]), 0, &["Unpinned"]);
    ops.push(Variant::V3);
    let resumed = ops.run(&["apply", "--json"]);
    assert_eq!(
        resumed.container("app")["result"]["outcome"],
        "updated",
        "{resumed}"
    );
    assert_eq!(ops.image(), image_id(bed, Variant::V3));
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn pin_compose_edits_only_the_image_line_and_compose_keeps_the_digest() {
    let bed = Bed::get();
    let ops = Ops::new(bed, "pincompose");
    let file = ops.project.compose_file();
    let original = format!(
        "# the shop\n{}  # end\n",
        fs::read_to_string(&file).unwrap()
    );
    fs::write(&file, &original).unwrap();
    let v1 = bed.registry_digest(Reg::Open, &ops.repo, "stable");

    expect(
        &ops.run(&["pin", "app", "--compose"]),
        0,
        &["Pinned", "Compose recreated app on the same image"],
    );
    ops.project.assert_quiet("after pin --compose");
    let pinned = fs::read_to_string(&file).unwrap();
    let changed: Vec<(&str, &str)> = original
        .lines()
        .zip(pinned.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "exactly one line differs:\n{pinned}");
    assert!(
        changed[0]
            .1
            .ends_with(&format!("/{}:stable@{v1}", ops.repo)),
        "{changed:?}"
    );
    assert_eq!(original.lines().count(), pinned.lines().count());

    ops.project.compose(&["up", "-d", "--wait"]);
    let c = ops.project.container("app");
    assert!(
        c["Config"]["Image"].as_str().unwrap().ends_with(&v1),
        "compose runs the pinned digest"
    );
    assert_eq!(c["Image"], image_id(bed, Variant::V1));
    ops.push(Variant::V2);
    let plan = ops.run(&["plan", "--json"]);
    assert_eq!(plan.container("app")["decision"], "digest-pinned", "{plan}");

    // The bed's push removed the local tag; an operator's host still has it.
    bed.docker(&[
        "tag",
        &Variant::V1.base_image(),
        &bed.registry(Reg::Open).image(&ops.repo, "stable"),
    ]);
    expect(
        &ops.run(&["unpin", "app", "--compose"]),
        0,
        &["Unpinned", "Compose recreated app on the same image"],
    );
    ops.project.assert_quiet("after unpin --compose");
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        original,
        "unpin restores the file exactly"
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn pin_compose_with_a_variable_edits_only_the_dotenv_line() {
    let bed = Bed::get();
    let repo = unique_name("pinvar");
    bed.push_image(Reg::Open, &repo, "stable", Variant::V1);
    let image = bed.registry(Reg::Open).image(&repo, "stable");
    let project = Project::create(
        bed,
        "services:\n  app:\n    image: ${APP_IMAGE}\n",
        &bed.docker_config,
    );
    let dotenv = project.dir().join(".env");
    let env_text = format!("# images\nAPP_IMAGE={image}\nOTHER=1\n");
    fs::write(&dotenv, &env_text).unwrap();
    project.compose(&["up", "-d", "--wait"]);
    let compose_before = fs::read_to_string(project.compose_file()).unwrap();
    let data = TempDir::new("pinvar");
    let scope = format!("project:{}", project.name());
    let run = pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &["pin", "app", "--compose", "--scope", &scope],
        &[],
    );
    expect(&run, 0, &[".env"]);
    assert_eq!(
        fs::read_to_string(project.compose_file()).unwrap(),
        compose_before,
        "compose.yaml untouched"
    );
    let digest = bed.registry_digest(Reg::Open, &repo, "stable");
    let after = fs::read_to_string(&dotenv).unwrap();
    assert_eq!(
        after,
        format!("# images\nAPP_IMAGE={image}@{digest}\nOTHER=1\n")
    );
    project.compose(&["up", "-d", "--wait"]);
    assert!(
        project.container("app")["Config"]["Image"]
            .as_str()
            .unwrap()
            .ends_with(&digest)
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn status_lists_everything_without_asking_any_registry() {
    let bed = Bed::get();
    let proxy = FaultProxy::start(&bed.registry(Reg::Open).addr);
    let repo = unique_name("status");
    bed.push_image(Reg::Open, &repo, "stable", Variant::V1);
    bed.push_image(Reg::Open, &format!("{repo}-other"), "stable", Variant::V1);
    let p = proxy.host();
    let project = Project::up(
        bed,
        &format!(
            "services:\n  app:\n    image: {p}/{repo}:stable\n  other:\n    image: {p}/{repo}-other:stable\n    labels: {{ io.pullpilot.soak: 1h }}\n"
        ),
    );
    let data = TempDir::new("status");
    let scope = format!("project:{}", project.name());
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--scope", &scope]);
        pullpilot(
            bed,
            project.dir(),
            &bed.docker_config,
            data.path(),
            &all,
            &[("PP_SOAK", "0")],
        )
    };
    bed.push_image(Reg::Open, &repo, "stable", Variant::V2);
    bed.push_image(Reg::Open, &format!("{repo}-other"), "stable", Variant::V2);
    expect(&run(&["apply"]), 0, &[]);
    expect(&run(&["rollback", "app"]), 0, &[]);

    let before = proxy.requests().len();
    let status = run(&["status", "--json"]);
    expect(&status, 0, &[]);
    assert_eq!(
        proxy.requests().len(),
        before,
        "status asked the registry: {:?}",
        &proxy.requests()[before..]
    );
    drop(proxy);
    let offline = run(&["status", "--json"]);
    expect(&offline, 0, &[]);
    let app = offline.container("app");
    assert!(
        app["pin"]["reason"].as_str().unwrap().contains("rollback"),
        "{offline}"
    );
    assert_eq!(app["blocked"].as_array().unwrap().len(), 1, "{offline}");
    let history = app["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{offline}");
    assert_eq!(history[1]["outcome"], "manual-rollback");
    assert_eq!(app["last_update"]["outcome"], "manual-rollback");
    let other = offline.container("other");
    assert!(
        other["soak"]["first_seen"].is_string(),
        "the soak clock is shown\n{offline}"
    );
    assert!(other["soak"]["rollout_at"].is_string());
    assert!(other["pin"].is_null() && other["history"].as_array().unwrap().is_empty());
    let text = run(&["status"]);
    for word in ["soaking", "pinned", "blocked", "manual-rollback"] {
        assert!(
            text.stdout.contains(word),
            "status text lacks {word}\n{text}"
        );
    }
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn unblock_allows_a_blocked_digest_again() {
    let bed = Bed::get();
    let ops = Ops::new(bed, "unblock");
    let bad = ops.push(Variant::V2Exits);
    expect(&ops.run(&["apply"]), 1, &[]);
    assert_eq!(
        ops.run(&["plan", "--json"]).container("app")["decision"],
        "blocked"
    );
    expect(&ops.run(&["unblock", &bad]), 0, &["Unblocked"]);
    assert_eq!(
        ops.run(&["plan", "--json"]).container("app")["decision"],
        "update"
    );
    expect(&ops.run(&["unblock", &bad]), 2, &["is not blocked"]);
}

fn hold_lock(data: &std::path::Path) -> Child {
    fs::create_dir_all(data).unwrap();
    // -o: flock itself holds the lock, not its `sleep`, so killing flock releases it.
    let child = Command::new("flock")
        .arg("-o")
        .arg(data.join("lock"))
        .args(["sleep", "20"])
        .spawn()
        .expect("flock (util-linux)");
    thread::sleep(Duration::from_millis(300));
    child
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn operator_errors_say_what_is_wrong_with_the_documented_status() {
    let bed = Bed::get();
    let ops = Ops::new(bed, "operrors");

    expect(
        &ops.run(&["rollback", "nope"]),
        2,
        &["no service or container named \"nope\"", "app"],
    );
    expect(
        &ops.run(&["pin", "nope"]),
        2,
        &["no service or container named \"nope\""],
    );

    let twin = Project::up(
        bed,
        &format!(
            "services:\n  app:\n    image: {}\n",
            bed.registry(Reg::Open).image(&ops.repo, "stable")
        ),
    );
    let ambiguous = pullpilot(
        bed,
        ops.project.dir(),
        &bed.docker_config,
        ops.data.path(),
        &["pin", "app", "--scope", "all"],
        &[],
    );
    expect(
        &ambiguous,
        2,
        &["is ambiguous", ops.project.name(), twin.name()],
    );

    let unknown = format!("sha256:{}", "9".repeat(64));
    expect(
        &ops.run(&["rollback", "app", "--to", &unknown]),
        2,
        &["is not in the history"],
    );
    expect(&ops.run(&["rollback", "app"]), 2, &["no previous image"]);
    expect(
        &ops.run(&["pin", "app", "not-a-digest"]),
        2,
        &["not a valid digest"],
    );

    let mut holder = hold_lock(ops.data.path());
    expect(&ops.run(&["pin", "app"]), 75, &["holds the lock"]);
    expect(&ops.run(&["rollback", "app"]), 75, &["holds the lock"]);
    holder.kill().unwrap();
    holder.wait().unwrap();

    let file = ops.project.compose_file();
    let mut perms = fs::metadata(&file).unwrap().permissions();
    perms.set_readonly(true);
    fs::set_permissions(&file, perms).unwrap();
    expect(
        &ops.run(&["pin", "app", "--compose"]),
        2,
        &["is read-only", "nothing was changed"],
    );
    let state = fs::read_to_string(ops.data.path().join("state.json")).unwrap_or_default();
    assert!(
        !state.contains("\"pin\""),
        "a refused pin leaves no pin behind: {state}"
    );
}
