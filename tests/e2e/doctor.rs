//! `pullpilot doctor` against the bed: a healthy setup is all ok (exit 0), and a wrong
//! registry credential, a dead notification URL and a read-only data directory are each a
//! named fail with what to do (exit 1).

use std::fmt::Write as _;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use serde_json::Value;

use crate::common::pullpilot::{Run, pullpilot};
use crate::common::sink::Sink;
use crate::common::{Bed, Project, Reg, TempDir, Tmpfs, Variant, base64, unique_name};

/// A project with one service per registry of the bed (open, Basic, token), started with
/// credentials for all of them.
struct Setup<'a> {
    bed: &'a Bed,
    creds: TempDir,
    project: Project<'a>,
}

impl<'a> Setup<'a> {
    fn new(bed: &'a Bed) -> Setup<'a> {
        let creds = bed.docker_config_with(&[Reg::Basic, Reg::Token]);
        let mut yaml = String::from("services:\n");
        for (name, reg) in [
            ("open", Reg::Open),
            ("basic", Reg::Basic),
            ("token", Reg::Token),
        ] {
            let repo = unique_name(&format!("doctor-{name}"));
            bed.push_image(reg, &repo, "stable", Variant::V1);
            let _ = write!(
                yaml,
                "  {name}:\n    image: {}\n",
                bed.registry(reg).image(&repo, "stable")
            );
        }
        let project = Project::up_with_config(bed, &yaml, creds.path());
        Setup {
            bed,
            creds,
            project,
        }
    }

    /// `pullpilot doctor --json ARGS` with `config` as `DOCKER_CONFIG` and `data` as the data dir.
    fn doctor(&self, config: &Path, data: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let scope = format!("project:{}", self.project.name());
        let mut all = vec!["doctor", "--json", "--scope", &scope];
        all.extend(args);
        pullpilot(self.bed, self.project.dir(), config, data, &all, env)
    }
}

/// A data directory fit for use: mode 0700.
fn private_dir(prefix: &str) -> TempDir {
    let dir = TempDir::new(prefix);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// The lines of `check` in the JSON report.
fn lines(run: &Run, check: &str) -> Vec<Value> {
    run.json()["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks\n{run}"))
        .iter()
        .filter(|c| c["check"] == check)
        .cloned()
        .collect()
}

/// The line of `check` at `level` whose message contains `words`.
fn line(run: &Run, check: &str, level: &str, words: &str) -> Value {
    lines(run, check)
        .into_iter()
        .find(|c| c["level"] == level && c["message"].as_str().unwrap_or("").contains(words))
        .unwrap_or_else(|| panic!("no {level} {check} line with {words:?}\n{run}"))
}

fn fails(run: &Run) -> Vec<Value> {
    run.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["level"] == "fail")
        .cloned()
        .collect()
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn a_healthy_bed_is_all_ok() {
    let bed = Bed::get();
    let setup = Setup::new(bed);
    let data = private_dir("doctor-ok");
    let run = setup.doctor(setup.creds.path(), data.path(), &[], &[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["ok"], true, "{run}");
    assert_eq!(run.json()["schema_version"], 1, "{run}");
    assert!(fails(&run).is_empty(), "{run}");
    line(&run, "docker", "ok", &format!("API {}", bed.api_version));
    line(&run, "compose", "ok", "compose 2.");
    line(
        &run,
        "compose",
        "ok",
        &format!("compose project {}", setup.project.name()),
    );
    line(&run, "scope", "ok", "3 containers");
    // Where the bed itself runs in a container, a temp dir is rightly "not on a volume".
    for l in lines(&run, "data dir") {
        let message = l["message"].as_str().unwrap_or("");
        assert!(
            l["level"] == "ok" && message.contains("writable, mode 0700")
                || l["level"] == "warn" && message.contains("is not on a volume"),
            "{run}"
        );
    }
    for reg in Reg::ALL {
        line(
            &run,
            "registry",
            "ok",
            &format!("{}: ", bed.registry(reg).addr),
        );
    }
    // Text too: one line per check, the level first.
    let text = pullpilot(
        bed,
        setup.project.dir(),
        setup.creds.path(),
        data.path(),
        &[
            "doctor",
            "--scope",
            &format!("project:{}", setup.project.name()),
        ],
        &[],
    );
    assert_eq!(text.code, 0, "{text}");
    assert!(text.stdout.contains("\nok    docker    Docker "), "{text}");
    assert!(text.stdout.contains(" 0 fail"), "{text}");
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn a_wrong_credential_a_dead_notification_url_and_a_read_only_data_dir_are_named_fails() {
    let bed = Bed::get();
    let setup = Setup::new(bed);

    // A wrong password for the Basic registry (the token registry's stays right).
    let wrong = TempDir::new("doctor-wrong-creds");
    let basic = bed.registry(Reg::Basic);
    let token = bed.registry(Reg::Token);
    let (user, _) = basic.credentials.clone().unwrap();
    let (token_user, token_password) = token.credentials.clone().unwrap();
    let config = serde_json::json!({ "auths": {
        basic.addr.clone(): { "auth": base64(format!("{user}:not-the-password").as_bytes()) },
        token.addr.clone(): { "auth": base64(format!("{token_user}:{token_password}").as_bytes()) },
    }});
    fs::write(wrong.path().join("config.json"), config.to_string()).unwrap();
    let data = private_dir("doctor-creds");
    let run = setup.doctor(wrong.path(), data.path(), &[], &[]);
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(run.json()["ok"], false, "{run}");
    let refused = line(&run, "registry", "fail", &basic.addr);
    let text = refused["message"].as_str().unwrap();
    assert!(
        text.contains("refused the credentials")
            && text.contains(&format!("docker login {}", basic.addr)),
        "{run}"
    );
    assert!(!run.stdout.contains("not-the-password"), "{run}");
    line(&run, "registry", "ok", &format!("{}: ", token.addr));
    assert_eq!(fails(&run).len(), 1, "only the credential fails\n{run}");

    // A dead notification URL, next to a live one, with --send-test.
    let sink = Sink::start(false);
    let dead_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let urls = format!(
        "generic+http://{}/hook?token=live-secret generic+http://127.0.0.1:{dead_port}/hook?token=dead-secret",
        sink.addr
    );
    let run = setup.doctor(
        setup.creds.path(),
        data.path(),
        &["--send-test"],
        &[("PP_NOTIFY_URL", urls.as_str())],
    );
    assert_eq!(run.code, 1, "{run}");
    line(
        &run,
        "notify",
        "ok",
        &format!(
            "generic+http://{}/…: the test message was accepted",
            sink.addr
        ),
    );
    let dead = line(
        &run,
        "notify",
        "fail",
        &format!("generic+http://127.0.0.1:{dead_port}/…: the test message failed"),
    );
    assert!(
        dead["fix"].as_str().unwrap_or("").contains("check the URL"),
        "{run}"
    );
    assert!(
        !run.stdout.contains("-secret") && !run.stderr.contains("-secret"),
        "a token leaked\n{run}"
    );
    let sent = sink.requests();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].json()["kind"], "test");
    assert_eq!(fails(&run).len(), 1, "only the dead URL fails\n{run}");

    // A read-only data directory.
    let tmpfs = Tmpfs::mount("doctor-ro", 1024);
    tmpfs.remount("ro");
    let run = setup.doctor(setup.creds.path(), tmpfs.path(), &[], &[]);
    assert_eq!(run.code, 1, "{run}");
    let ro = line(&run, "data dir", "fail", "cannot be written");
    assert!(
        ro["message"]
            .as_str()
            .unwrap()
            .contains("Read-only file system")
            && ro["fix"].as_str().unwrap().contains("make it writable"),
        "{run}"
    );
    assert_eq!(fails(&run).len(), 1, "only the data dir fails\n{run}");
}
