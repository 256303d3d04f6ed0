//! The fault suite (issue #8): `pullpilot apply` against a registry that misbehaves, a data dir
//! that runs full or read-only, a damaged state file, and a dockerd restarted mid-pass. Every
//! case checks the same three things: the service still runs (its old image, or the new one
//! when the update could honestly finish), its config, data and pullpilot's state are all
//! still there, and the output says what happened.
//!
//! The registry is the bed's open one behind a [`FaultProxy`]: the compose file names the
//! proxy's `127.0.0.1:PORT`, so both pullpilot's checks and dockerd's pulls go through it
//! (Docker treats every loopback registry as insecure, so no daemon setting is needed).
//! Tests named `serial_*` restart the bed's dockerd, which disturbs every other test: the suite
//! runs them on their own, one at a time (`--test-threads=1 serial_`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::common::fault_proxy::{Fault, FaultProxy};
use crate::common::pullpilot::{Run, pullpilot, spawn_pullpilot};
use crate::common::{Bed, Project, Reg, TempDir, Tmpfs, Variant, unique_name};

/// One compose service `app` on an image served through a fault proxy, with pullpilot state
/// that matters: an applied update (v1 → v2) in its history, and a soak clock running for v3.
struct Service<'a> {
    bed: &'a Bed,
    repo: String,
    proxy: FaultProxy,
    project: Project<'a>,
    data: PathBuf,
    name: String,
    v3_digest: String,
    /// `status --json` of `app` right after the setup.
    before: Value,
}

const SOAK_LONG: (&str, &str) = ("PP_SOAK", "24h");
const SOAK_NOW: (&str, &str) = ("PP_SOAK", "0");

impl<'a> Service<'a> {
    /// Sets everything up with pullpilot's state in `data`.
    fn new(bed: &'a Bed, prefix: &str, data: &Path) -> Service<'a> {
        let repo = unique_name(prefix);
        bed.push_image(Reg::Open, &repo, "stable", Variant::V1);
        let proxy = FaultProxy::start(&bed.registry(Reg::Open).addr);
        let yaml = format!(
            "services:\n  app:\n    image: {}/{repo}:stable\n    restart: unless-stopped\n    \
             environment:\n      APP_MODE: faults\n    volumes: [/data]\n",
            proxy.host()
        );
        let project = Project::up(bed, &yaml);
        project.compose(&["exec", "-T", "app", "sh", "-c", "echo kept > /data/proof"]);
        let name = project.container("app")["Name"]
            .as_str()
            .unwrap()
            .trim_start_matches('/')
            .to_string();
        let mut s = Service {
            bed,
            repo,
            proxy,
            project,
            data: data.to_path_buf(),
            name,
            v3_digest: String::new(),
            before: Value::Null,
        };
        s.push(Variant::V2);
        let run = s.apply(&[SOAK_NOW]);
        assert_eq!(run.code, 0, "setup: update to v2\n{run}");
        assert_eq!(
            run.container("app")["result"]["outcome"],
            "updated",
            "{run}"
        );
        s.v3_digest = bed.push_fresh_image(Reg::Open, &s.repo, "stable", Variant::V3);
        let run = s.apply(&[SOAK_LONG]);
        assert_eq!(run.code, 0, "setup: v3 starts soaking\n{run}");
        assert_eq!(run.container("app")["decision"], "soaking", "{run}");
        s.before = s.status_of_app();
        assert_eq!(s.before["soak"]["digest"], s.v3_digest.as_str());
        assert_eq!(s.before["history"].as_array().unwrap().len(), 1);
        s
    }

    fn push(&self, variant: Variant) -> String {
        self.bed
            .push_image(Reg::Open, &self.repo, "stable", variant)
    }

    fn scope(&self) -> String {
        format!("project:{}", self.project.name())
    }

    /// `pullpilot COMMAND --json --scope project:NAME` with `env`.
    fn run(&self, command: &str, env: &[(&str, &str)]) -> Run {
        let scope = self.scope();
        pullpilot(
            self.bed,
            self.project.dir(),
            &self.bed.docker_config,
            &self.data,
            &[command, "--json", "--scope", &scope],
            env,
        )
    }

    fn apply(&self, env: &[(&str, &str)]) -> Run {
        self.run("apply", env)
    }

    /// `status --json` must work; returns the `app` row.
    fn status_of_app(&self) -> Value {
        let run = self.run("status", &[]);
        assert_eq!(
            run.code, 0,
            "status works and shows no interrupted update\n{run}"
        );
        run.container("app")
    }

    fn state_file(&self) -> PathBuf {
        self.data.join("state.json")
    }

    fn image_id(&self, variant: Variant) -> String {
        self.bed.inspect(&variant.base_image())["Id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn container_id(&self) -> String {
        self.project.container("app")["Id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Every container of the project, by name.
    fn container_names(&self) -> Vec<String> {
        let out = self.bed.docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project.name()),
            "--format",
            "{{.Names}}",
        ]);
        out.lines().map(str::to_string).collect()
    }

    /// The service runs `variant` with its config and data, in exactly one container with its
    /// own name; the state file is whole JSON and `status` still shows the history (and, while
    /// v3 is not rolled out, the soak clock) from before the fault.
    fn assert_intact(&self, variant: Variant, what: &str) {
        assert_eq!(
            self.container_names(),
            vec![self.name.clone()],
            "{what}: exactly one container, with its own name, and no leftovers"
        );
        let c = self.project.container("app");
        assert_eq!(c["State"]["Running"], true, "{what}: the service runs");
        let image = if variant == Variant::V3 {
            // The fresh image pushed as v3, by the digest it was pulled by.
            let pulled = format!("{}/{}@{}", self.proxy.host(), self.repo, self.v3_digest);
            self.bed.inspect(&pulled)["Id"]
                .as_str()
                .unwrap()
                .to_string()
        } else {
            self.image_id(variant)
        };
        assert_eq!(c["Image"], image.as_str(), "{what}: image");
        assert!(
            c["Config"]["Env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "APP_MODE=faults"),
            "{what}: the compose config is kept"
        );
        let proof = self
            .project
            .compose(&["exec", "-T", "app", "cat", "/data/proof"]);
        assert_eq!(proof.trim(), "kept", "{what}: the volume's data is kept");
        let text = fs::read_to_string(self.state_file()).expect("state.json exists");
        let state: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what}: state.json is not whole JSON ({e}): {text}"));
        assert!(
            state.get("journal").is_none(),
            "{what}: journal left: {state:#}"
        );
        let now = self.status_of_app();
        let history = now["history"].as_array().unwrap();
        assert_eq!(
            history[0], self.before["history"][0],
            "{what}: the v2 update is still in the history"
        );
        if variant == Variant::V2 {
            assert_eq!(history.len(), 1, "{what}: {now:#}");
            assert_eq!(
                now["soak"], self.before["soak"],
                "{what}: v3's soak clock is unchanged"
            );
        } else {
            assert_eq!(history.last().unwrap()["outcome"], "updated", "{what}");
            assert_eq!(history.last().unwrap()["digest"], self.v3_digest.as_str());
        }
    }
}

/// All that a run printed, lower-cased, for key-word checks.
fn said(run: &Run) -> String {
    format!("{}\n{}", run.stdout, run.stderr).to_lowercase()
}

fn assert_says(run: &Run, words: &[&str], what: &str) {
    let text = said(run);
    for w in words {
        assert!(
            text.contains(&w.to_lowercase()),
            "{what}: the output lacks {w:?}\n{run}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Registry faults during apply

/// What a registry fault must lead to.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The tag could not be checked (`check failed`, of this kind): nothing is pulled.
    CheckFailed(&'static str),
    /// The check worked but the pull failed: nothing was changed.
    PullFailed,
    /// The client's retries got through: the update went ahead.
    Updated,
}

/// Sets the service up, adds the faults, applies with no soak, checks the outcome and the
/// words of the message, then clears the faults and checks the next apply updates normally.
fn registry_fault(
    prefix: &str,
    faults: &dyn Fn(&FaultProxy, &str),
    expect: Expect,
    words: &[&str],
) {
    let bed = Bed::get();
    let data = TempDir::new(prefix);
    let s = Service::new(bed, prefix, data.path());
    s.proxy.clear();
    faults(&s.proxy, &s.repo);
    let run = s.apply(&[SOAK_NOW]);
    let app = run.container("app");
    match expect {
        Expect::CheckFailed(kind) => {
            assert_eq!(run.code, 1, "README: a failed check exits 1\n{run}");
            assert_eq!(app["decision"], "registry-error", "{run}");
            assert_eq!(app["kind"], kind, "{run}");
            assert!(app["result"].is_null(), "never turned into a pull\n{run}");
            assert_eq!(
                s.proxy
                    .requests()
                    .iter()
                    .filter(|r| r.contains(&pull_path(&s.repo)))
                    .count(),
                0,
                "nothing pulled: {:?}",
                s.proxy.requests()
            );
            assert_says(&run, &[&s.proxy.host(), &s.repo, "stable"], prefix);
            s.assert_intact(Variant::V2, prefix);
        }
        Expect::PullFailed => {
            assert_eq!(run.code, 1, "README: a failed update exits 1\n{run}");
            assert_eq!(app["result"]["outcome"], "failed", "{run}");
            assert_says(&run, &["pulling", &s.repo, "nothing was changed"], prefix);
            s.assert_intact(Variant::V2, prefix);
        }
        Expect::Updated => {
            assert_eq!(run.code, 0, "{run}");
            assert_eq!(app["result"]["outcome"], "updated", "{run}");
            s.assert_intact(Variant::V3, prefix);
        }
    }
    assert_says(&run, words, prefix);

    if !matches!(expect, Expect::Updated) {
        s.proxy.clear();
        let healthy = s.apply(&[SOAK_NOW]);
        assert_eq!(
            healthy.code, 0,
            "{prefix}: once the registry behaves\n{healthy}"
        );
        assert_eq!(
            healthy.container("app")["result"]["outcome"],
            "updated",
            "{prefix}: nothing was blocked or poisoned by the fault\n{healthy}"
        );
        s.assert_intact(Variant::V3, &format!("{prefix}, then a good apply"));
    }
}

/// Requests for the tag (pullpilot's check), by method.
fn tag_path(repo: &str) -> String {
    format!("/v2/{repo}/manifests/stable")
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_check_connection_reset() {
    registry_fault(
        "reset",
        &|p, repo| p.add(Some("HEAD"), &tag_path(repo), Fault::Close, None),
        Expect::CheckFailed("unreachable"),
        &["cannot reach registry", "attempts"],
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_check_stalls_past_the_client_timeout() {
    // The client gives one request 20 s (RegistryOptions::request_timeout) and tries 3 times.
    // The stall is three times that budget: a 22 s stall once lost the race on a loaded CI
    // machine, where the client's timer fired late and the forwarded answer got through.
    // The proxy's sleeping thread costs the test no time; the client gives up on its own.
    registry_fault(
        "stall",
        &|p, repo| {
            p.add(
                Some("HEAD"),
                &tag_path(repo),
                Fault::Stall(Duration::from_secs(60)),
                None,
            );
        },
        Expect::CheckFailed("unreachable"),
        &["cannot reach registry", "no answer within 20s"],
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_check_500_on_every_attempt() {
    registry_fault(
        "five-hundred",
        &|p, repo| {
            p.add(
                Some("HEAD"),
                &tag_path(repo),
                Fault::Status {
                    code: 500,
                    retry_after: None,
                },
                None,
            );
        },
        Expect::CheckFailed("bad-response"),
        &["500"],
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_check_500_once_is_retried() {
    registry_fault(
        "five-hundred-once",
        &|p, repo| {
            p.add(
                Some("HEAD"),
                &tag_path(repo),
                Fault::Status {
                    code: 500,
                    retry_after: None,
                },
                Some(1),
            );
        },
        Expect::Updated,
        &["updated"],
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_429_storm_on_every_request() {
    registry_fault(
        "storm",
        &|p, _| {
            p.add(
                None,
                "/v2/",
                Fault::Status {
                    code: 429,
                    retry_after: Some(1),
                },
                None,
            );
        },
        Expect::CheckFailed("rate-limited"),
        &["429"],
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_check_truncated_manifest_body() {
    // No digest header, so pullpilot GETs the manifest to hash it, and gets half of it.
    registry_fault(
        "truncated-manifest",
        &|p, repo| {
            p.add(Some("HEAD"), &tag_path(repo), Fault::StripDigest, None);
            p.add(Some("GET"), &tag_path(repo), Fault::Truncate, None);
        },
        Expect::CheckFailed("unreachable"),
        &["cannot reach registry"],
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_check_digest_header_lies() {
    // The tag "moved" to a digest that does not exist: with no soak, pullpilot pulls exactly
    // that digest, the registry has no such manifest, and nothing is touched.
    let lie = format!("sha256:{}", "0".repeat(64));
    registry_fault(
        "lying-check",
        &move |p, repo| {
            p.add(
                Some("HEAD"),
                &tag_path(repo),
                Fault::LieDigest(lie.clone()),
                None,
            );
        },
        Expect::PullFailed,
        &["sha256:0000000000"],
    );
}

/// Requests for the manifest by digest: what dockerd's pull asks for first.
fn pull_path(repo: &str) -> String {
    format!("/v2/{repo}/manifests/sha256:")
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_pull_connection_reset() {
    registry_fault(
        "pull-reset",
        &|p, repo| {
            p.add(None, &pull_path(repo), Fault::Close, None);
        },
        Expect::PullFailed,
        &[],
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_pull_500() {
    registry_fault(
        "pull-500",
        &|p, repo| {
            p.add(
                None,
                &pull_path(repo),
                Fault::Status {
                    code: 500,
                    retry_after: None,
                },
                None,
            );
        },
        Expect::PullFailed,
        &["500"],
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_pull_truncated_blobs() {
    // The image's config blob arrives cut short (its layers are the base image's, already here).
    registry_fault(
        "pull-truncated",
        &|p, repo| {
            p.add(
                Some("GET"),
                &format!("/v2/{repo}/blobs/"),
                Fault::Truncate,
                None,
            );
        },
        Expect::PullFailed,
        &[],
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_pull_manifest_digest_header_lies() {
    // dockerd pulls by digest and checks what it gets against that digest, not the header.
    let lie = format!("sha256:{}", "1".repeat(64));
    registry_fault(
        "pull-lie",
        &move |p, repo| {
            p.add(None, &pull_path(repo), Fault::LieDigest(lie.clone()), None);
        },
        Expect::Updated,
        &[],
    );
}

// ---------------------------------------------------------------------------------------------
// A data dir that runs full or read-only

/// The pause every paused run below uses: long enough to act in, short for the suite.
const PAUSE_SECS: &str = "4";

/// Runs `apply` (no soak) paused at `step`, calls `during` while it waits there, and returns
/// the finished run.
fn apply_paused_at(s: &Service<'_>, step: &str, secs: &str, during: &dyn Fn()) -> Run {
    apply_paused_with(s, step, secs, &[], during)
}

/// [`apply_paused_at`] with more variables for pullpilot.
fn apply_paused_with(
    s: &Service<'_>,
    step: &str,
    secs: &str,
    extra: &[(&str, &str)],
    during: &dyn Fn(),
) -> Run {
    let scope = s.scope();
    let mut running = spawn_pullpilot(
        s.bed,
        s.project.dir(),
        &s.bed.docker_config,
        &s.data,
        &["apply", "--json", "--scope", &scope],
        &[
            &[
                SOAK_NOW,
                ("PULLPILOT_PAUSE_AT", step),
                ("PULLPILOT_PAUSE_SECS", secs),
            ],
            extra,
        ]
        .concat(),
    );
    running.wait_for_stderr(
        &format!("pausing {secs}s at step {step}"),
        Duration::from_secs(60),
    );
    during();
    running.wait()
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up) and --features fault-injection"]
fn faults_data_dir_full_when_the_update_is_journaled() {
    let bed = Bed::get();
    let data = Tmpfs::mount("full-journal", 1024);
    let s = Service::new(bed, "full-journal", data.path());
    let before = fs::read(s.state_file()).unwrap();
    let run = apply_paused_at(&s, "after-pull", PAUSE_SECS, &|| data.fill());
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(run.container("app")["result"]["outcome"], "failed", "{run}");
    assert_says(
        &run,
        &[
            "recording the update in the journal",
            &format!(
                "could not write to the data directory {}",
                data.path().display()
            ),
            "free space",
            "nothing was changed",
        ],
        "full at the journal",
    );
    assert_eq!(
        fs::read(s.state_file()).unwrap(),
        before,
        "the previous state file is untouched"
    );
    assert!(
        !said(&run).contains("action needed"),
        "nothing needs a person: the container was never touched\n{run}"
    );
    s.assert_intact(Variant::V2, "full at the journal");

    data.drain();
    let run = s.apply(&[SOAK_NOW]);
    assert_eq!(run.code, 0, "with room again\n{run}");
    s.assert_intact(Variant::V3, "full at the journal, then room again");
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up) and --features fault-injection"]
fn faults_data_dir_full_when_the_update_finishes() {
    let bed = Bed::get();
    let data = Tmpfs::mount("full-finish", 1024);
    let s = Service::new(bed, "full-finish", data.path());
    let run = apply_paused_at(&s, "after-compose", PAUSE_SECS, &|| data.fill());
    assert_eq!(run.code, 1, "{run}");
    assert_says(
        &run,
        &[
            &format!(
                "could not write to the data directory {}",
                data.path().display()
            ),
            "free space",
        ],
        "full at the finish",
    );
    let app = run.container("app");
    assert_eq!(app["result"]["outcome"], "action-needed", "{run}");
    // Up on the new image (compose removed the old container); the next run finishes it.
    let c = bed.inspect(&s.name);
    assert_eq!(c["State"]["Running"], true, "the service runs");
    assert_eq!(s.container_names(), std::slice::from_ref(&s.name));
    let text = fs::read_to_string(s.state_file()).unwrap();
    let state: Value = serde_json::from_str(&text).expect("state.json is whole JSON");
    assert_eq!(
        state["journal"][0]["phase"], "started",
        "the last good save is intact: {state:#}"
    );

    data.drain();
    let run = s.apply(&[SOAK_NOW]);
    assert_eq!(
        run.code, 0,
        "with room again, the next run finishes it\n{run}"
    );
    assert_eq!(run.json()["healed"].as_array().unwrap().len(), 1, "{run}");
    s.assert_intact(Variant::V3, "full at the finish, then room again");
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_data_dir_read_only() {
    let bed = Bed::get();
    let data = Tmpfs::mount("read-only", 1024);
    let s = Service::new(bed, "read-only", data.path());
    let id = s.container_id();
    let before = fs::read(s.state_file()).unwrap();
    data.remount("ro");
    let run = s.apply(&[SOAK_NOW]);
    assert_eq!(run.code, 1, "{run}");
    assert_says(
        &run,
        &[
            &format!(
                "could not write to the data directory {}",
                data.path().display()
            ),
            "make it writable",
            "nothing was changed",
            "read-only file system",
        ],
        "read-only data dir",
    );
    assert_eq!(s.container_id(), id, "the container was not touched");
    assert_eq!(fs::read(s.state_file()).unwrap(), before);
    let plan = s.run("plan", &[SOAK_NOW]);
    assert_eq!(plan.code, 0, "plan only reads the data dir\n{plan}");
    assert_eq!(plan.container("app")["decision"], "update", "{plan}");
    s.assert_intact(Variant::V2, "read-only data dir");

    data.remount("rw");
    let run = s.apply(&[SOAK_NOW]);
    assert_eq!(run.code, 0, "writable again\n{run}");
    s.assert_intact(Variant::V3, "read-only, then writable again");
}

// ---------------------------------------------------------------------------------------------
// A damaged state file

/// Damages `state.json` with `damage` (of its current bytes), with or without its backup, then
/// runs `plan`, `status` and `apply` (long soak: nothing is due) and checks that each names the
/// file, keeps the damaged bytes and touches no container. Returns the three runs.
fn damaged_state(
    prefix: &str,
    damage: fn(&[u8]) -> Vec<u8>,
    keep_backup: bool,
) -> (Service<'static>, Vec<u8>, [Run; 3], TempDir) {
    let bed = Bed::get();
    let data = TempDir::new(prefix);
    let s = Service::new(bed, prefix, data.path());
    if !keep_backup {
        fs::remove_file(data.path().join("state.json.bak")).unwrap();
    }
    let damaged = damage(&fs::read(s.state_file()).unwrap());
    fs::write(s.state_file(), &damaged).unwrap();
    let id = s.container_id();
    let runs = ["plan", "status", "apply"].map(|command| {
        let run = s.run(command, &[SOAK_LONG]);
        assert_says(&run, &[&s.state_file().display().to_string()], prefix);
        assert_eq!(
            s.container_id(),
            id,
            "{prefix}: {command} touched no container"
        );
        let c = s.project.container("app");
        assert_eq!(c["State"]["Running"], true, "{prefix}: the service runs");
        run
    });
    // Where the damaged bytes are now: in place, or moved aside by apply; never lost.
    let kept = fs::read_dir(data.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name == "state.json" || name.starts_with("state.json.corrupt-"))
                && fs::read(e.path()).unwrap() == damaged
        });
    assert!(kept, "{prefix}: the damaged file is kept");
    (s, damaged, runs, data)
}

fn truncate_mid_json(text: &[u8]) -> Vec<u8> {
    text[..text.len() / 2].to_vec()
}

fn garbage(_: &[u8]) -> Vec<u8> {
    b"\x00\xff\xfe this is not JSON \x7f\n".to_vec()
}

fn newer_schema(text: &[u8]) -> Vec<u8> {
    let mut state: Value = serde_json::from_slice(text).unwrap();
    state["version"] = 99.into();
    serde_json::to_vec_pretty(&state).unwrap()
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_state_truncated_with_a_backup_uses_the_backup() {
    let prefix = "state-truncated-backup";
    let (s, _, [plan, status, apply], _data) = damaged_state(prefix, truncate_mid_json, true);
    for run in [&plan, &status, &apply] {
        assert_eq!(run.code, 0, "{run}");
        assert_says(run, &["is damaged", "using the backup"], prefix);
    }
    assert_says(&apply, &["kept as", "state.json.corrupt-"], prefix);
    // The backup is one save older: the history is there, the soak clock may restart.
    let now = s.status_of_app();
    assert_eq!(now["history"], s.before["history"], "{now:#}");
    assert_eq!(now["soak"]["digest"], s.v3_digest.as_str(), "{now:#}");
}

/// Without a usable backup, every command refuses and changes nothing.
fn refused_without_backup(prefix: &str, damage: fn(&[u8]) -> Vec<u8>, words: &[&str]) {
    let (s, damaged, runs, _data) = damaged_state(prefix, damage, false);
    for run in &runs {
        assert_eq!(run.code, 1, "{run}");
        assert_says(run, words, prefix);
        assert_says(run, &["nothing was changed"], prefix);
    }
    assert_eq!(
        fs::read(s.state_file()).unwrap(),
        damaged,
        "{prefix}: the damaged file stays where it is"
    );
    let names: Vec<String> = fs::read_dir(&s.data)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("state.json"))
        .collect();
    assert_eq!(
        names,
        vec!["state.json".to_string()],
        "{prefix}: nothing written"
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_state_truncated_without_a_backup_is_refused() {
    refused_without_backup(
        "state-truncated",
        truncate_mid_json,
        &[
            "is damaged",
            "no backup",
            "restore it from your backups",
            "move it aside",
        ],
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_state_garbage_without_a_backup_is_refused() {
    refused_without_backup(
        "state-garbage",
        garbage,
        &["is damaged", "no backup", "move it aside"],
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn faults_state_newer_schema_is_refused() {
    let prefix = "state-newer";
    let (s, damaged, runs, _data) = damaged_state(prefix, newer_schema, true);
    for run in &runs {
        assert_eq!(run.code, 1, "{run}");
        assert_says(
            run,
            &["newer pullpilot", "schema 99", "upgrade pullpilot"],
            prefix,
        );
    }
    assert_eq!(fs::read(s.state_file()).unwrap(), damaged, "left as it is");
}

// ---------------------------------------------------------------------------------------------
// dockerd restarted in the middle of a pass (serial: it disturbs every other test)

/// `tests/testbed/testbed.sh restart-engine DOWN_SECS`: dockerd stops cleanly, stays down that
/// long, and is back (answering) when this returns.
fn restart_engine(down_secs: u32) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testbed/testbed.sh");
    let out = std::process::Command::new(&script)
        .args(["restart-engine", &down_secs.to_string()])
        .output()
        .expect("running testbed.sh restart-engine");
    assert!(
        out.status.success(),
        "restart-engine failed\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Pauses an update at `step`, restarts dockerd (down `down_secs`) meanwhile, and checks that
/// the pass ends with a clear message and the next `apply` heals to one running container.
fn restart_mid_pass(prefix: &str, step: &str, pause_secs: &str, down_secs: u32, compose: bool) {
    let bed = Bed::get();
    let data = TempDir::new(prefix);
    let s = Service::new(bed, prefix, data.path());
    let path = [("PP_COMPOSE", if compose { "auto" } else { "off" })];
    let run = apply_paused_with(&s, step, pause_secs, &path, &|| {
        restart_engine(down_secs);
    });
    match run.code {
        0 => assert_eq!(
            run.container("app")["result"]["outcome"],
            "updated",
            "{run}"
        ),
        1 => assert_says(&run, &["cannot reach docker"], prefix),
        other => panic!("{prefix}: exit code {other} is not documented for this\n{run}"),
    }
    // dockerd may still be starting containers with a restart policy.
    std::thread::sleep(Duration::from_secs(2));
    let healed = s.apply(&[SOAK_NOW]);
    assert_eq!(healed.code, 0, "{prefix}: the next apply heals\n{healed}");
    s.assert_intact(Variant::V3, prefix);
}

#[test]
#[ignore = "restarts the bed's dockerd: run alone (--test-threads=1 serial_), --features fault-injection"]
fn serial_dockerd_restarts_while_the_old_container_is_stopped() {
    // Old container stopped, replacement created: dockerd is back before the pass goes on.
    restart_mid_pass("restart-after-stop", "after-stop", "30", 0, false);
}

#[test]
#[ignore = "restarts the bed's dockerd: run alone (--test-threads=1 serial_), --features fault-injection"]
fn serial_dockerd_is_down_when_the_pass_goes_on() {
    // The old container has its temporary name and the pass resumes with no Docker to talk to.
    restart_mid_pass("down-after-rename", "after-rename-old", "3", 15, false);
}

#[test]
#[ignore = "restarts the bed's dockerd: run alone (--test-threads=1 serial_), --features fault-injection"]
fn serial_dockerd_restarts_just_before_compose_recreates() {
    // The tag has moved and compose is about to run: dockerd is back before the pass goes on.
    restart_mid_pass("restart-before-compose", "before-compose", "30", 0, true);
}

#[test]
#[ignore = "restarts the bed's dockerd: run alone (--test-threads=1 serial_), --features fault-injection"]
fn serial_dockerd_is_down_when_compose_has_recreated() {
    // Compose made the replacement; the gate finds no Docker to talk to.
    restart_mid_pass("down-after-compose", "after-compose", "3", 15, true);
}
