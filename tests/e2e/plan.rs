//! `pullpilot plan` against the real bed: every decision, digests equal to skopeo's, nothing
//! changed, the request floor, registry faults and scope resolution.

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use serde_json::Value;

use crate::common::fault_proxy::{Fault, FaultProxy};
use crate::common::pullpilot::{Run, pullpilot};
use crate::common::{Bed, LogMark, Project, Reg, TempDir, Variant, base64, unique_name};

/// Everything `plan` must not change: containers (ID, image, state), the images of the test's
/// repositories (other tests push concurrently), and the data dir.
fn snapshot(
    bed: &Bed,
    project: &str,
    repos: &[&str],
    data_dir: &std::path::Path,
) -> (String, Vec<String>, bool) {
    let containers = bed.docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
        "--format",
        "{{.ID}} {{.Image}} {{.State}} {{.Names}}",
    ]);
    let images = bed.docker(&[
        "images",
        "--digests",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}}@{{.Digest}} {{.ID}}",
    ]);
    let mut ours: Vec<String> = images
        .lines()
        .filter(|l| repos.iter().any(|r| l.contains(r)))
        .map(str::to_string)
        .collect();
    ours.sort();
    let mut containers: Vec<&str> = containers.lines().collect();
    containers.sort_unstable();
    (containers.join("\n"), ours, data_dir.exists())
}

fn decision(run: &Run, service: &str) -> Value {
    run.container(service)
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn plan_gives_every_container_the_right_decision_and_changes_nothing() {
    let bed = Bed::get();
    let creds = bed.docker_config_with(&[Reg::Basic, Reg::Token]);
    let repo = |what: &str| unique_name(&format!("plan-{what}"));
    let (open_r, basic_r, token_r, pinned_r, monitor_r, excluded_r, invalid_r) = (
        repo("open"),
        repo("basic"),
        repo("token"),
        repo("pinned"),
        repo("monitor"),
        repo("excluded"),
        repo("invalid"),
    );
    let v1 = |reg, r: &str| bed.push_image(reg, r, "stable", Variant::V1);
    let open_v1 = v1(Reg::Open, &open_r);
    let basic_v1 = v1(Reg::Basic, &basic_r);
    let token_v1 = v1(Reg::Token, &token_r);
    let pinned_v1 = v1(Reg::Open, &pinned_r);
    v1(Reg::Open, &monitor_r);
    v1(Reg::Open, &excluded_r);
    v1(Reg::Open, &invalid_r);
    // Built by compose from a local base image; never pulled, so never checked.
    let local_image = format!("local/{}:latest", repo("local"));

    let open = bed.registry(Reg::Open);
    let pinned_img = format!("{}/{pinned_r}:stable@{pinned_v1}", open.addr);
    let yaml = format!(
        r#"services:
  open:
    image: {open_img}
  basic:
    image: {basic_img}
  token:
    image: {token_img}
    labels: {{ io.pullpilot.soak: "0" }}
  pinned:
    image: {pinned_img}
  monitor:
    image: {monitor_img}
    labels: {{ io.pullpilot.monitor-only: "true" }}
  excluded:
    image: {excluded_img}
    labels: {{ io.pullpilot.exclude: "true" }}
  invalid:
    image: {invalid_img}
    labels: {{ io.pullpilot.soak: "soon" }}
  local:
    image: {local_image}
    build: .
    pull_policy: build
  multi:
    image: {multi}
"#,
        open_img = open.image(&open_r, "stable"),
        basic_img = bed.registry(Reg::Basic).image(&basic_r, "stable"),
        token_img = bed.registry(Reg::Token).image(&token_r, "stable"),
        monitor_img = open.image(&monitor_r, "stable"),
        excluded_img = open.image(&excluded_r, "stable"),
        invalid_img = open.image(&invalid_r, "stable"),
        multi = bed.multi_ref,
    );
    let project = Project::create(bed, &yaml, creds.path());
    fs::write(
        project.dir().join("Dockerfile"),
        format!("FROM {}\n", Variant::V1.base_image()),
    )
    .unwrap();
    project.compose(&["up", "--detach", "--wait", "--wait-timeout", "90"]);
    let v2 = |reg, r: &str| bed.push_image(reg, r, "stable", Variant::V2);
    let (open_v2, basic_v2, token_v2) = (
        v2(Reg::Open, &open_r),
        v2(Reg::Basic, &basic_r),
        v2(Reg::Token, &token_r),
    );
    let monitor_v2 = v2(Reg::Open, &monitor_r);
    v2(Reg::Open, &excluded_r);
    v2(Reg::Open, &pinned_r);

    let data = TempDir::new("plan-data");
    let data_dir = data.path().join("state");
    let repos = [
        open_r.as_str(),
        &basic_r,
        &token_r,
        &pinned_r,
        &monitor_r,
        &excluded_r,
        &invalid_r,
        &local_image,
    ];
    let before = snapshot(bed, project.name(), &repos, &data_dir);
    assert!(
        before.1.len() >= 2,
        "the snapshot sees the test's images: {:#?}",
        before.1
    );
    let excluded_log = LogMark::new(&open.log);
    let run = pullpilot(
        bed,
        project.dir(),
        creds.path(),
        &data_dir,
        &[
            "plan",
            "--json",
            "--scope",
            &format!("project:{}", project.name()),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        snapshot(bed, project.name(), &repos, &data_dir),
        before,
        "plan must change nothing\n{run}"
    );
    assert_eq!(
        excluded_log.count(&format!("/v2/{excluded_r}/")),
        0,
        "no registry request for an excluded container"
    );
    assert_eq!(
        excluded_log.count(&format!("/v2/{pinned_r}/")),
        0,
        "no registry request for a digest-pinned container"
    );

    let expect = |service: &str, word: &str| {
        let c = decision(&run, service);
        assert_eq!(c["decision"], word, "{service}: {c:#}");
        c
    };
    for (service, reg, r, current, available) in [
        ("open", Reg::Open, &open_r, &open_v1, &open_v2),
        ("basic", Reg::Basic, &basic_r, &basic_v1, &basic_v2),
        ("token", Reg::Token, &token_r, &token_v1, &token_v2),
    ] {
        let c = decision(&run, service);
        assert_eq!(c["current_digest"], current.as_str(), "{service}");
        assert_eq!(c["available_digest"], available.as_str(), "{service}");
        assert_eq!(
            c["available_digest"],
            bed.registry_digest(reg, r, "stable").as_str(),
            "{service} vs skopeo"
        );
    }
    let soaking = expect("open", "soaking");
    assert_eq!(soaking["new_candidate"], true);
    assert_eq!(soaking["remaining_seconds"], 86_400);
    expect("basic", "soaking");
    expect("token", "update");
    assert_eq!(
        expect("pinned", "digest-pinned")["digest"],
        pinned_v1.as_str()
    );
    assert_eq!(
        expect("monitor", "monitor-only")["available_digest"],
        monitor_v2.as_str()
    );
    assert_eq!(expect("excluded", "excluded")["by"], "exclude-label");
    let invalid = expect("invalid", "invalid-label");
    assert!(
        invalid["reason"]
            .as_str()
            .unwrap()
            .contains("io.pullpilot.soak"),
        "{invalid:#}"
    );
    expect("local", "locally-built");
    let multi = expect("multi", "up-to-date");
    assert_eq!(multi["available_digest"], bed.multi_digest.as_str());

    // The table names the same decisions for people.
    let table = pullpilot(
        bed,
        project.dir(),
        creds.path(),
        &data_dir,
        &["plan", "--scope", &format!("project:{}", project.name())],
        &[],
    );
    assert_eq!(table.code, 0, "{table}");
    for word in [
        "soaking",
        "update",
        "pinned (digest)",
        "update available",
        "excluded",
        "invalid label",
        "locally built",
        "up to date",
    ] {
        assert!(table.stdout.contains(word), "table lacks {word:?}\n{table}");
    }
    assert!(
        !data_dir.exists(),
        "plan must not create the data directory"
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn plan_makes_one_head_per_unique_image_and_one_token_request() {
    let bed = Bed::get();
    let creds = bed.docker_config_with(&[Reg::Token]);
    let token = bed.registry(Reg::Token);
    let (x, y) = (unique_name("floor-x"), unique_name("floor-y"));
    bed.push_image(Reg::Token, &x, "v", Variant::V1);
    bed.push_image(Reg::Token, &y, "v", Variant::V1);
    let yaml = format!(
        "services:\n  x1: {{ image: {x} }}\n  x2: {{ image: {x} }}\n  x3: {{ image: {x} }}\n  y1: {{ image: {y} }}\n  y2: {{ image: {y} }}\n",
        x = token.image(&x, "v"),
        y = token.image(&y, "v")
    );
    let project = Project::up_with_config(bed, &yaml, creds.path());
    bed.push_image(Reg::Token, &x, "v", Variant::V2);
    let data = TempDir::new("floor");
    let registry_log = LogMark::new(&token.log);
    let issuer_log = LogMark::new(&bed.token_issuer_log);
    let run = pullpilot(
        bed,
        project.dir(),
        creds.path(),
        data.path(),
        &[
            "plan",
            "--json",
            "--scope",
            &format!("project:{}", project.name()),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{run}");
    let heads = |repo: &str| {
        registry_log.wait_count(
            &format!("\"HEAD /v2/{repo}/manifests/"),
            1,
            Duration::from_secs(5),
        )
    };
    // The first HEAD goes out alone, without credentials, to learn the registry's auth from
    // its 401 challenge (no separate `/v2/` probe); then one token and one HEAD per image.
    assert!(heads(&x) + heads(&y) >= 3, "the HEADs reached the log");
    // Only pullpilot's requests for this test's repositories count: other tests (and their
    // pullpilot runs) use this registry at the same time.
    let ours: Vec<String> = registry_log
        .lines()
        .into_iter()
        .filter(|l| l.contains("\"pullpilot/") && (l.contains(&x) || l.contains(&y)))
        .collect();
    let answered = |repo: &str, status: &str| {
        ours.iter()
            .filter(|l| l.contains(&format!("\"HEAD /v2/{repo}/manifests/")))
            .filter(|l| l.contains(&format!("\" {status} ")))
            .count()
    };
    assert_eq!(
        answered(&x, "200"),
        1,
        "one HEAD for the 3 containers of {x}:\n{ours:#?}"
    );
    assert_eq!(
        answered(&y, "200"),
        1,
        "one HEAD for the 2 containers of {y}:\n{ours:#?}"
    );
    assert_eq!(
        answered(&x, "401") + answered(&y, "401"),
        1,
        "one unauthenticated HEAD learns the challenge:\n{ours:#?}"
    );
    assert_eq!(ours.len(), 3, "no manifest GETs or retries:\n{ours:#?}");
    let tokens: Vec<String> = issuer_log
        .lines()
        .into_iter()
        .filter(|l| l.contains("agent=pullpilot/") && (l.contains(&x) || l.contains(&y)))
        .collect();
    assert_eq!(
        tokens.len(),
        1,
        "one token request for both repositories: {tokens:#?}"
    );
    assert!(
        tokens[0].contains(&x) && tokens[0].contains(&y),
        "{tokens:#?}"
    );
    let words: BTreeSet<String> = ["x1", "x2", "x3", "y1", "y2"]
        .iter()
        .map(|s| run.container(s)["decision"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        words,
        ["soaking", "up-to-date"]
            .iter()
            .map(|s| (*s).to_string())
            .collect()
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn plan_reports_registry_faults_per_container_and_checks_the_rest() {
    let bed = Bed::get();
    let open = bed.registry(Reg::Open);
    let basic = bed.registry(Reg::Basic);
    let good_creds = bed.docker_config_with(&[Reg::Basic]);
    let down_proxy = FaultProxy::start(&open.addr);
    let proxy = FaultProxy::start(&open.addr);
    let r = |what: &str| unique_name(&format!("fault-{what}"));
    let (down_r, missing_r, limited_r, nodigest_r, basic_r, fine_r) = (
        r("down"),
        r("missing"),
        r("limited"),
        r("nodigest"),
        r("basic"),
        r("fine"),
    );
    for repo in [&down_r, &missing_r, &limited_r, &nodigest_r, &fine_r] {
        bed.push_image(Reg::Open, repo, "v1", Variant::V1);
    }
    bed.push_image(Reg::Basic, &basic_r, "v1", Variant::V1);
    let yaml = format!(
        "services:\n  down: {{ image: {}/{down_r}:v1 }}\n  missing: {{ image: {p}/{missing_r}:v1 }}\n  limited: {{ image: {p}/{limited_r}:v1 }}\n  nodigest: {{ image: {p}/{nodigest_r}:v1 }}\n  basic: {{ image: {} }}\n  fine: {{ image: {} }}\n",
        down_proxy.host(),
        basic.image(&basic_r, "v1"),
        open.image(&fine_r, "v1"),
        p = proxy.host(),
    );
    let project = Project::up_with_config(bed, &yaml, good_creds.path());
    drop(down_proxy);

    // pullpilot gets a wrong password for the Basic registry.
    let (user, _) = basic.credentials.clone().unwrap();
    let wrong = TempDir::new("wrong-creds");
    let auth = base64(format!("{user}:not-the-password").as_bytes());
    fs::write(
        wrong.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, basic.addr),
    )
    .unwrap();

    proxy.add(
        Some("HEAD"),
        &format!("/v2/{missing_r}/manifests/"),
        Fault::Status {
            code: 404,
            retry_after: None,
        },
        None,
    );
    proxy.add(
        Some("HEAD"),
        &format!("/v2/{limited_r}/manifests/"),
        Fault::Status {
            code: 429,
            retry_after: Some(1),
        },
        Some(1),
    );
    proxy.add(
        None,
        &format!("/v2/{nodigest_r}/manifests/"),
        Fault::StripDigest,
        None,
    );
    let data = TempDir::new("faults");
    let scope = format!("project:{}", project.name());
    let run = pullpilot(
        bed,
        project.dir(),
        wrong.path(),
        data.path(),
        &["plan", "--json", "--scope", &scope],
        &[],
    );
    assert_eq!(run.code, 1, "a failed check makes the exit code 1\n{run}");

    let failed = |service: &str, kind: &str, words: &[&str]| {
        let c = run.container(service);
        assert_eq!(c["decision"], "registry-error", "{service}: {c:#}");
        assert_eq!(c["kind"], kind, "{service}: {c:#}");
        let message = c["reason"].as_str().unwrap().to_lowercase();
        for w in words {
            assert!(message.contains(w), "{service}: {message:?} lacks {w:?}");
        }
    };
    failed("down", "unreachable", &["127.0.0.1"]);
    failed("missing", "not-found", &["not found", "v1"]);
    failed("basic", "unauthorized", &[&basic.addr]);
    assert!(
        !run.stdout.contains("not-the-password") && !run.stderr.contains("not-the-password"),
        "secrets never printed"
    );
    assert_eq!(
        run.container("limited")["decision"],
        "up-to-date",
        "429 + Retry-After is waited out"
    );
    assert_eq!(
        run.container("nodigest")["decision"],
        "up-to-date",
        "missing digest header falls back to GET"
    );
    assert_eq!(run.container("fine")["decision"], "up-to-date");
    assert!(
        proxy.count(&format!("GET /v2/{nodigest_r}/manifests/")) >= 1,
        "{:?}",
        proxy.requests()
    );

    // Only the containers whose fallback worked: exit 0.
    proxy.add(
        Some("HEAD"),
        &format!("/v2/{limited_r}/manifests/"),
        Fault::Status {
            code: 429,
            retry_after: Some(1),
        },
        Some(1),
    );
    let ok = pullpilot(
        bed,
        project.dir(),
        wrong.path(),
        data.path(),
        &[
            "plan", "--json", "--scope", &scope, "limited", "nodigest", "fine",
        ],
        &[],
    );
    assert_eq!(ok.code, 0, "{ok}");
    assert_eq!(ok.json()["containers"].as_array().unwrap().len(), 3);
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn plan_scope_follows_the_working_directory() {
    let bed = Bed::get();
    let repo = unique_name("scope");
    bed.push_image(Reg::Open, &repo, "v1", Variant::V1);
    let image = bed.registry(Reg::Open).image(&repo, "v1");
    let a = Project::up(bed, &format!("services:\n  a: {{ image: {image} }}\n"));
    let b = Project::up(bed, &format!("services:\n  b: {{ image: {image} }}\n"));
    // Name each project in its file, the way compose users do, so the directory names it.
    for p in [&a, &b] {
        let text = fs::read_to_string(p.compose_file()).unwrap();
        fs::write(p.compose_file(), format!("name: {}\n{text}", p.name())).unwrap();
    }
    let data = TempDir::new("scope");
    let projects = |run: &Run| -> BTreeSet<String> {
        run.json()["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["project"].as_str().unwrap().to_string())
            .collect()
    };

    let from_a = pullpilot(
        bed,
        a.dir(),
        &bed.docker_config,
        data.path(),
        &["plan", "--json"],
        &[],
    );
    assert_eq!(from_a.code, 0, "{from_a}");
    assert_eq!(from_a.json()["scope"], format!("project:{}", a.name()));
    assert_eq!(projects(&from_a), [a.name().to_string()].into());

    let sub = a.dir().join("deeper/still");
    fs::create_dir_all(&sub).unwrap();
    let from_sub = pullpilot(
        bed,
        &sub,
        &bed.docker_config,
        data.path(),
        &["plan", "--json"],
        &[],
    );
    assert_eq!(
        projects(&from_sub),
        [a.name().to_string()].into(),
        "parents are searched like compose does\n{from_sub}"
    );

    let all = pullpilot(
        bed,
        a.dir(),
        &bed.docker_config,
        data.path(),
        &["plan", "--json", "--scope", "all"],
        &[],
    );
    let seen = projects(&all);
    assert!(seen.contains(a.name()) && seen.contains(b.name()), "{all}");

    let nowhere = TempDir::new("no-project");
    let none = pullpilot(
        bed,
        nowhere.path(),
        &bed.docker_config,
        data.path(),
        &["plan"],
        &[],
    );
    assert_eq!(none.code, 2, "{none}");
    assert!(none.stderr.contains("no compose project found"), "{none}");
    assert!(
        none.stdout.is_empty(),
        "nothing is planned without a project\n{none}"
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn plan_with_an_unknown_service_is_a_usage_error() {
    let bed = Bed::get();
    let repo = unique_name("unknown-svc");
    bed.push_image(Reg::Open, &repo, "v1", Variant::V1);
    let p = Project::up(
        bed,
        &format!(
            "services:\n  web: {{ image: {} }}\n",
            bed.registry(Reg::Open).image(&repo, "v1")
        ),
    );
    let data = TempDir::new("unknown-svc");
    let run = pullpilot(
        bed,
        p.dir(),
        &bed.docker_config,
        data.path(),
        &["plan", "--scope", &format!("project:{}", p.name()), "wbe"],
        &[],
    );
    assert_eq!(run.code, 2, "{run}");
    assert!(
        run.stderr.contains("no service or container named \"wbe\"") && run.stderr.contains("web"),
        "{run}"
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn plan_with_docker_unreachable_exits_3() {
    let bed = Bed::get();
    let data = TempDir::new("no-docker");
    let run = pullpilot(
        bed,
        data.path(),
        &bed.docker_config,
        data.path(),
        &["plan", "--scope", "all"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stderr.contains("/nonexistent/docker.sock"), "{run}");
}

/// Builds the bed's base image `variant` with `labels` added (`docker build` on the bed's
/// engine, offline: the base is local), pushes it as `<open registry>/<repo>:stable`, removes
/// the local tag again (so compose really pulls it) and returns the pushed digest.
pub(crate) fn push_labelled_image(
    bed: &Bed,
    repo: &str,
    variant: Variant,
    labels: &[(&str, &str)],
) -> String {
    use std::fmt::Write as _;
    use std::io::Write as _;
    use std::process::Stdio;

    let image = bed.registry(Reg::Open).image(repo, "stable");
    let mut dockerfile = format!("FROM {}\n", variant.base_image());
    for (key, value) in labels {
        let _ = writeln!(dockerfile, "LABEL {key}={value:?}");
    }
    let mut child = bed
        .docker_command(&bed.docker_config)
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--quiet", "--tag", &image, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running docker build");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .expect("writing the Dockerfile");
    let out = child.wait_with_output().expect("waiting for docker build");
    assert!(
        out.status.success(),
        "docker build -t {image} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    bed.docker(&["push", "--quiet", &image]);
    bed.docker(&["rmi", &image]);
    bed.registry_digest(Reg::Open, repo, "stable")
}

/// The policy labels an image publisher might ship, to skip the soak and exclude itself.
pub(crate) const IMAGE_POLICY: [(&str, &str); 3] = [
    ("io.pullpilot.soak", "0"),
    ("io.pullpilot.exclude", "true"),
    ("io.pullpilot.monitor-only", "true"),
];

/// Three services on one image that carries [`IMAGE_POLICY`]: one leaves it at that, one
/// sets the image's own `soak=0` again in the compose file (mapping form), one sets `0s` (list
/// form).
pub(crate) const IMAGE_POLICY_YAML: &str = r#"services:
  inherited:
    image: {image}
  same:
    image: {image}
    labels: { io.pullpilot.soak: "0" }
  respelled:
    image: {image}
    labels:
      - io.pullpilot.soak=0s
"#;

fn ignored_labels(c: &Value) -> Vec<String> {
    c["ignored_labels"]
        .as_array()
        .unwrap_or_else(|| panic!("no ignored_labels: {c:#}"))
        .iter()
        .map(|l| {
            assert!(
                l["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("label from the image, ignored"),
                "{l:#}"
            );
            format!(
                "{}={}",
                l["label"].as_str().unwrap(),
                l["value"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn plan_ignores_policy_labels_from_the_image_and_honours_the_compose_file() {
    let bed = Bed::get();
    let repo = unique_name("plan-image-labels");
    let v1 = push_labelled_image(bed, &repo, Variant::V1, &IMAGE_POLICY);
    let image = bed.registry(Reg::Open).image(&repo, "stable");
    let project = Project::up(bed, &IMAGE_POLICY_YAML.replace("{image}", &image));
    // Docker really copied the image's labels onto the container.
    let inherited = project.container("inherited");
    assert_eq!(
        inherited["Config"]["Labels"]["io.pullpilot.soak"], "0",
        "{inherited:#}"
    );
    let v2 = push_labelled_image(bed, &repo, Variant::V2, &IMAGE_POLICY);
    let data = TempDir::new("plan-image-labels");
    let scope = format!("project:{}", project.name());
    let run = pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &["plan", "--json", "--scope", &scope],
        &[],
    );
    assert_eq!(run.code, 0, "{run}");

    let c = decision(&run, "inherited");
    assert_eq!(c["current_digest"], v1.as_str(), "{c:#}");
    assert_eq!(
        c["decision"], "soaking",
        "the image's soak=0, exclude and monitor-only are not read: {c:#}"
    );
    assert_eq!(c["available_digest"], v2.as_str());
    assert_eq!(
        c["remaining_seconds"], 86_400,
        "the default 24h soak: {c:#}"
    );
    assert_eq!(
        ignored_labels(&c),
        [
            "io.pullpilot.exclude=true",
            "io.pullpilot.monitor-only=true",
            "io.pullpilot.soak=0"
        ]
    );
    for service in ["same", "respelled"] {
        let c = decision(&run, service);
        assert_eq!(
            c["decision"], "update",
            "{service}: the compose file's soak counts: {c:#}"
        );
        assert_eq!(
            ignored_labels(&c),
            [
                "io.pullpilot.exclude=true",
                "io.pullpilot.monitor-only=true"
            ],
            "{service}"
        );
    }

    let table = pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &["plan", "--scope", &scope],
        &[],
    );
    assert_eq!(table.code, 0, "{table}");
    let section = table
        .stdout
        .split_once("Ignored labels:\n")
        .unwrap_or_else(|| panic!("no ignored labels section\n{table}"))
        .1;
    assert!(
        section.contains("  inherited (")
            && section.contains("    io.pullpilot.soak=\"0\": label from the image, ignored"),
        "{table}"
    );
}
