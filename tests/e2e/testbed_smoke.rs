//! Smoke tests of the test bed itself: the engine, compose, the three registries, the token
//! issuer, the base images and the multi-arch index behave as the other e2e tests assume.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    Bed, DOCKER_LIST, DOCKER_MANIFEST, LogMark, OCI_INDEX, OCI_MANIFEST, Project, Reg, Variant,
    head_manifest, pulled_digest, unique_name,
};

/// A two-service project running `image`.
fn two_services(image: &str) -> String {
    format!("services:\n  web:\n    image: {image}\n  worker:\n    image: {image}\n")
}

/// The `Env` list of an image's or a container's `Config`.
fn env_of(config: &Value) -> Vec<String> {
    config["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn assert_running_v1(project: &Project<'_>, service: &str) {
    let c = project.container(service);
    assert_eq!(
        c["State"]["Status"], "running",
        "{service}: {:#}",
        c["State"]
    );
    assert_eq!(
        c["State"]["Health"]["Status"], "healthy",
        "{service}: {:#}",
        c["State"]
    );
    let env = env_of(&c["Config"]);
    assert!(
        env.contains(&"APP_VERSION=1".to_string()),
        "{service}: {env:?}"
    );
}

/// Pulls `image` with the config dir `config`, checks the pull reports `digest` and that the
/// local image now carries it.
fn pull_sees(bed: &Bed, config: &std::path::Path, image: &str, digest: &str) {
    let out = bed.docker_in(config, &["pull", image]);
    assert_eq!(
        pulled_digest(&out).as_deref(),
        Some(digest),
        "docker pull output: {out}"
    );
    let local = bed.inspect(image);
    let repo = image.rsplit_once(':').map_or(image, |(r, _)| r);
    let want = format!("{repo}@{digest}");
    assert!(
        local["RepoDigests"]
            .as_array()
            .is_some_and(|a| a.iter().any(|d| d == want.as_str())),
        "RepoDigests of {image} lack {want}: {}",
        local["RepoDigests"]
    );
    let env = env_of(&local["Config"]);
    assert!(
        env.contains(&"APP_VERSION=2".to_string()),
        "{image}: {env:?}"
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn open_registry_compose_up_then_pull_sees_new_digest() {
    let bed = Bed::get();
    let repo = format!("smoke/{}", unique_name("open"));
    let image = bed.open.image(&repo, "stable");

    let v1 = bed.push_image(Reg::Open, &repo, "stable", Variant::V1);
    let project = Project::up(bed, &two_services(&image));
    assert_running_v1(&project, "web");
    assert_running_v1(&project, "worker");

    let v2 = bed.push_image(Reg::Open, &repo, "stable", Variant::V2);
    assert_ne!(v1, v2, "v1 and v2 must have different digests");
    // One manifest HEAD is one access-log line.
    let heads = LogMark::new(&bed.open.log);
    let (status, head) = head_manifest(
        &bed.open.addr,
        &repo,
        "stable",
        &[DOCKER_MANIFEST, OCI_MANIFEST],
    );
    assert_eq!((status, head.as_deref()), (200, Some(v2.as_str())));
    let needle = format!("\"HEAD /v2/{repo}/manifests/stable HTTP/1.1\" 200 ");
    assert_eq!(heads.wait_count(&needle, 1, Duration::from_secs(5)), 1);
    std::thread::sleep(Duration::from_millis(200));
    let ours = format!(" /v2/{repo}/");
    assert_eq!(heads.count(&ours), 1, "{:#?}", heads.lines());

    let mark = LogMark::new(&bed.open.log);
    pull_sees(bed, &bed.docker_config, &image, &v2);
    let needle = format!("/v2/{repo}/manifests/");
    assert!(
        mark.wait_count(&needle, 1, Duration::from_secs(5)) >= 1,
        "the open registry's log shows no manifest request for {repo}"
    );
}

/// Compose up and pull through a registry that needs credentials; without them it refuses.
fn authenticated_registry(reg: Reg) {
    let bed = Bed::get();
    let registry = bed.registry(reg);
    let repo = format!("smoke/{}", unique_name(&format!("{reg:?}")));
    let image = registry.image(&repo, "stable");
    let with_creds = bed.docker_config_with(&[reg]);
    let no_creds = bed.docker_config_with(&[]);

    let v1 = bed.push_image(reg, &repo, "stable", Variant::V1);

    let refused = bed.try_docker_in(no_creds.path(), &["pull", &image]);
    let stderr = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(
        !refused.status.success(),
        "{reg:?}: a pull without credentials succeeded"
    );
    assert!(
        [
            "unauthorized",
            "denied",
            "no basic auth credentials",
            "authentication required"
        ]
        .iter()
        .any(|s| stderr.contains(s)),
        "{reg:?}: unexpected error for a pull without credentials: {stderr}"
    );
    let anonymous = Project::create(bed, &two_services(&image), no_creds.path());
    assert!(
        !anonymous.try_compose(&["pull"]).status.success(),
        "{reg:?}: compose pull without credentials succeeded"
    );

    let project = Project::up_with_config(bed, &two_services(&image), with_creds.path());
    assert_running_v1(&project, "web");
    assert_running_v1(&project, "worker");

    let v2 = bed.push_image(reg, &repo, "stable", Variant::V2);
    assert_ne!(v1, v2);
    let issuer = LogMark::new(&bed.token_issuer_log);
    pull_sees(bed, with_creds.path(), &image, &v2);
    if reg == Reg::Token {
        let scope = format!("repository:{repo}:pull");
        let granted = issuer
            .lines()
            .into_iter()
            .filter(|l| l.contains("auth=valid") && l.contains(&scope))
            .count();
        assert!(granted >= 1, "the token issuer logged no token for {scope}");
    }
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn basic_registry_needs_credentials() {
    authenticated_registry(Reg::Basic);
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn token_registry_needs_credentials() {
    authenticated_registry(Reg::Token);
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn multi_arch_index_has_two_platforms() {
    let bed = Bed::get();
    let (addr_repo, tag) = bed
        .multi_ref
        .rsplit_once(':')
        .expect("PPTB_MULTI_REF has a tag");
    let repo = addr_repo
        .strip_prefix(&format!("{}/", bed.open.addr))
        .expect("PPTB_MULTI_REF is in the open registry");

    let index = bed.registry_manifest(Reg::Open, repo, tag);
    let media_type = index["mediaType"].as_str().unwrap_or_default();
    assert!(
        [OCI_INDEX, DOCKER_LIST].contains(&media_type),
        "not an index: {index:#}"
    );
    let manifests = index["manifests"]
        .as_array()
        .expect("an index has manifests");
    assert_eq!(manifests.len(), 2, "{index:#}");
    let platforms: BTreeSet<String> = manifests
        .iter()
        .map(|m| format!("{}/{}", m["platform"]["os"], m["platform"]["architecture"]))
        .map(|p| p.replace('"', ""))
        .collect();
    assert_eq!(
        platforms,
        BTreeSet::from(["linux/amd64".into(), "linux/arm64".into()])
    );

    let digest = bed.registry_digest(Reg::Open, repo, tag);
    assert_eq!(digest, bed.multi_digest, "PPTB_MULTI_DIGEST is stale");
    let (status, head) = head_manifest(&bed.open.addr, repo, tag, &[OCI_INDEX, DOCKER_LIST]);
    assert_eq!((status, head.as_deref()), (200, Some(digest.as_str())));
    for m in manifests {
        let child = m["digest"].as_str().expect("a digest");
        let (status, head) = head_manifest(
            &bed.open.addr,
            repo,
            child,
            &[m["mediaType"].as_str().unwrap_or(DOCKER_MANIFEST)],
        );
        assert_eq!((status, head.as_deref()), (200, Some(child)));
    }
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn base_images_differ_as_documented() {
    let bed = Bed::get();
    let config = |v: Variant| bed.inspect(&v.base_image())["Config"].clone();
    let mut seen = BTreeSet::new();
    for v in Variant::ALL {
        let c = config(v);
        let version = if v == Variant::V1 {
            "1"
        } else if v == Variant::V3 {
            "3"
        } else {
            "2"
        };
        assert!(
            env_of(&c).contains(&format!("APP_VERSION={version}")),
            "{v:?}: {c:#}"
        );
        assert_eq!(c["Labels"]["org.example.variant"], v.tag(), "{v:?}");
        assert!(
            seen.insert(bed.inspect(&v.base_image())["Id"].to_string()),
            "{v:?} is not unique"
        );
    }
    let (v1, v2) = (config(Variant::V1), config(Variant::V2));
    assert_ne!(v1["Cmd"], v2["Cmd"]);
    assert_ne!(v1["Healthcheck"], v2["Healthcheck"]);
    assert_ne!(
        v1["Labels"]["org.example.version"],
        v2["Labels"]["org.example.version"]
    );
    assert_eq!(
        config(Variant::V2Crashloop)["Healthcheck"]["Test"][0],
        "NONE"
    );
}

/// Polls `docker inspect` of a container until `pred` holds, or panics after `timeout`.
fn wait_for(bed: &Bed, id: &str, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        let c = bed.inspect(id);
        if pred(&c) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen in {timeout:?}: {:#}",
            c["State"]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn failing_variants_fail_as_documented() {
    let bed = Bed::get();
    let yaml = [
        ("good", Variant::V1),
        ("unhealthy", Variant::V2Unhealthy),
        ("exits", Variant::V2Exits),
        ("crashloop", Variant::V2Crashloop),
    ]
    .iter()
    .fold(String::from("services:\n"), |mut y, (service, v)| {
        let _ = write!(y, "  {service}:\n    image: {}\n", v.base_image());
        y
    });
    let project = Project::create(bed, &yaml, &bed.docker_config);
    project.compose(&["up", "--detach"]);
    let id = |service: &str| project.container_ids(service).remove(0);
    let exited_1 = |c: &Value| c["State"]["Status"] == "exited" && c["State"]["ExitCode"] == 1;

    wait_for(
        bed,
        &id("good"),
        "v1 healthy",
        Duration::from_secs(20),
        |c| c["State"]["Health"]["Status"] == "healthy",
    );
    wait_for(
        bed,
        &id("unhealthy"),
        "v2-unhealthy unhealthy",
        Duration::from_secs(20),
        |c| c["State"]["Health"]["Status"] == "unhealthy" && c["State"]["Status"] == "running",
    );
    wait_for(
        bed,
        &id("exits"),
        "v2-exits exit 1",
        Duration::from_secs(20),
        exited_1,
    );
    let crash = id("crashloop");
    wait_for(
        bed,
        &crash,
        "v2-crashloop exit 1",
        Duration::from_secs(20),
        exited_1,
    );
    let c = bed.inspect(&crash);
    assert!(
        c["State"]["Health"].is_null(),
        "v2-crashloop has a healthcheck: {:#}",
        c["State"]
    );

    // The good image stops at once on SIGTERM (its shell traps TERM), not after a kill.
    let begin = Instant::now();
    project.compose(&["stop", "--timeout", "10", "good"]);
    assert!(
        begin.elapsed() < Duration::from_secs(5),
        "v1 took {:?} to stop",
        begin.elapsed()
    );
    let c = bed.inspect(&id("good"));
    assert_eq!(
        c["State"]["ExitCode"], 0,
        "v1 was killed instead of exiting: {:#}",
        c["State"]
    );
}
