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

/// aiosmtpd from the bed's venv, printing every message it receives.
struct SmtpSink {
    child: std::process::Child,
    port: u16,
    out: std::path::PathBuf,
}

impl SmtpSink {
    fn start(bed: &Bed, dir: &std::path::Path) -> SmtpSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = dir.join("smtp.log");
        let child = Command::new(&bed.python)
            .args([
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Debugging",
            ])
            .stdout(fs::File::create(&out).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        SmtpSink { child, port, out }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs the test bed and --features fault-injection"]
fn notifications_reach_every_service_once_per_event() {
    use crate::common::sink::Sink;

    let bed = Bed::get();
    let repo = unique_name("notify");
    bed.push_image(Reg::Open, &repo, "stable", Variant::V1);
    bed.push_image(Reg::Open, &format!("{repo}-bad"), "stable", Variant::V1);
    let open = bed.registry(Reg::Open);
    let project = Project::up(
        bed,
        &format!(
            "services:\n  app:\n    image: {}\n  bad:\n    image: {}\n    labels: {{ io.pullpilot.soak: \"0\" }}\n",
            open.image(&repo, "stable"),
            open.image(&format!("{repo}-bad"), "stable")
        ),
    );
    bed.push_image(Reg::Open, &repo, "stable", Variant::V2);
    bed.push_image(
        Reg::Open,
        &format!("{repo}-bad"),
        "stable",
        Variant::V2Exits,
    );

    let data = TempDir::new("notify");
    let http = Sink::start(false);
    let smtp = SmtpSink::start(bed, data.path());
    let h = &http.addr;
    let urls = [
        format!("generic+http://{h}/hook"),
        "slack://T0123ABCDE/B0123ABCDE/abcdefghijklmnopqrstuvwx".to_string(),
        "discord://tok@123".to_string(),
        format!("ntfy://{h}/updates?scheme=http"),
        format!("gotify://{h}/Atoken?disabletls=yes"),
        "telegram://123:abc@telegram?chats=42".to_string(),
        format!(
            "smtp://127.0.0.1:{}/?from=pullpilot@test.invalid&to=ops@test.invalid&encryption=none",
            smtp.port
        ),
    ]
    .join(" ");
    let base = format!("http://{h}");
    let env = [
        ("PP_NOTIFY_URL", urls.as_str()),
        ("PULLPILOT_TEST_NOTIFY_BASE", base.as_str()),
        ("PP_HEALTH_TIMEOUT", "20s"),
    ];
    let scope = format!("project:{}", project.name());
    for pass in 1..=3 {
        let run = pullpilot(
            bed,
            project.dir(),
            &bed.docker_config,
            data.path(),
            &["apply", "--scope", &scope],
            &env,
        );
        assert_eq!(
            run.code,
            i32::from(pass == 1),
            "only the first pass has a rollback (exit 1); pass {pass}\n{run}"
        );
        assert!(
            !run.stderr.contains("abcdefghijklmnop")
                && !run.stderr.contains("tok@")
                && !run.stderr.contains("Atoken"),
            "secrets leaked\n{run}"
        );
    }

    let requests = http.requests();
    let to = |path: &str| -> Vec<&crate::common::sink::Request> {
        requests
            .iter()
            .filter(|r| r.path.starts_with(path))
            .collect()
    };
    // Exactly two events over three passes: app entered soak (once), bad was rolled back (once).
    for (path, what) in [
        ("/hook", "generic"),
        (
            "/services/T0123ABCDE/B0123ABCDE/abcdefghijklmnopqrstuvwx",
            "slack",
        ),
        ("/api/webhooks/123/tok", "discord"),
        ("/updates", "ntfy"),
        ("/message", "gotify"),
        ("/bot123:abc/sendMessage", "telegram"),
    ] {
        let got = to(path);
        assert_eq!(got.len(), 2, "{what}: {got:#?}");
        assert!(got.iter().all(|r| r.method == "POST"), "{what}");
    }
    let kinds: Vec<String> = to("/hook")
        .iter()
        .map(|r| r.json()["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(
        kinds.contains(&"soak_entered".to_string()) && kinds.contains(&"rolled_back".to_string()),
        "{kinds:?}"
    );
    let generic = to("/hook")[0].json();
    for key in [
        "title",
        "message",
        "container",
        "service",
        "project",
        "image",
        "to_digest",
        "time",
    ] {
        assert!(
            generic.get(key).is_some(),
            "generic body lacks {key}: {generic:#}"
        );
    }
    assert!(
        to("/services/")[0].json()["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(
        to("/api/webhooks/")[0].json()["embeds"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    );
    assert!(
        to("/updates")[0].header("Title").is_some(),
        "ntfy title header"
    );
    let gotify = to("/message")[0];
    assert_eq!(gotify.header("X-Gotify-Key"), Some("Atoken"));
    assert!(gotify.json()["message"].is_string() && gotify.json()["priority"].is_number());
    let telegram = to("/bot")[0].json();
    assert_eq!(telegram["chat_id"].to_string().trim_matches('"'), "42");
    assert!(telegram["text"].is_string());

    std::thread::sleep(std::time::Duration::from_millis(500));
    let mail = fs::read_to_string(&smtp.out).unwrap();
    assert_eq!(
        mail.matches("---------- MESSAGE FOLLOWS ----------")
            .count(),
        2,
        "{mail}"
    );
    assert!(
        mail.contains("To: ops@test.invalid") && mail.contains("pullpilot@test.invalid"),
        "{mail}"
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn an_endpoint_that_never_answers_costs_at_most_its_timeout() {
    use crate::common::sink::Sink;

    let bed = Bed::get();
    let (_repo, project) = project_with_v2(bed, "notify-slow", "");
    let data = TempDir::new("notify-slow");
    let silent = Sink::start(true);
    let url = format!("generic+http://{}/hook", silent.addr);
    let scope = format!("project:{}", project.name());
    let started = std::time::Instant::now();
    let run = pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &["apply", "--scope", &scope],
        &[("PP_NOTIFY_URL", url.as_str())],
    );
    let took = started.elapsed();
    assert_eq!(run.code, 0, "the pass succeeds\n{run}");
    assert!(
        took < std::time::Duration::from_secs(20),
        "took {took:?}: more than the 10 s send timeout plus the pass"
    );
    assert!(
        run.stderr.contains("Notification to generic"),
        "the failed send is logged\n{run}"
    );
}
