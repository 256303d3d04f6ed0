//! pullpilot deployed as the README says: its image built by `packaging/build-image.sh`, run by
//! `packaging/compose.example.yaml` beside the services it manages (the example's hardening
//! kept, its images swapped for the bed's), and `pullpilot plan` by hand reading the same
//! settings file as the units.

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use serde_yaml::{Mapping, Value as Yaml};

use crate::common::pullpilot::pullpilot;
use crate::common::{Bed, Project, Reg, TempDir, Variant, unique_name};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn image_id(bed: &Bed, variant: Variant) -> Value {
    bed.inspect(&variant.base_image())["Id"].clone()
}

/// The pullpilot image, built from the binary under test by the documented command; removed
/// from the bed's daemon on drop.
struct Image<'a> {
    bed: &'a Bed,
    tag: String,
}

impl<'a> Image<'a> {
    fn build(bed: &'a Bed) -> Image<'a> {
        let tag = format!("pptb/pullpilot:{}", unique_name("e2e"));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/build-image.sh");
        let images = crate::common::image_lock();
        let out = Command::new("sh")
            .arg(script)
            .arg(&tag)
            .env("PP_BINARY", env!("CARGO_BIN_EXE_pullpilot"))
            .env("DOCKER", &bed.docker_cli)
            .env("DOCKER_HOST", &bed.docker_host)
            .env("DOCKER_CONFIG", &bed.docker_config)
            .output()
            .expect("running packaging/build-image.sh");
        drop(images);
        assert!(
            out.status.success(),
            "packaging/build-image.sh failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Image { bed, tag }
    }
}

impl Drop for Image<'_> {
    fn drop(&mut self) {
        let _ = self.bed.try_docker(&["rmi", "--force", &self.tag]);
    }
}

/// A service of the stack: its name, image and labels.
type Sibling<'a> = (&'a str, String, &'a [(&'a str, &'a str)]);

/// `packaging/compose.example.yaml` for the bed: its `web` service replaced by `siblings`
/// (name, image, labels), pullpilot's image, command and environment adapted, the bed's
/// socket mounted in place of /var/run/docker.sock, and the host network (the bed's
/// registries listen on loopback). Everything else (read-only root, no capabilities,
/// no-new-privileges, the named volume on /data, the self label) is the example's.
fn stack(
    bed: &Bed,
    image: &str,
    siblings: &[Sibling<'_>],
    command: &[&str],
    env: &[(&str, &str)],
    tweak: impl FnOnce(&mut Mapping),
) -> String {
    let example = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/compose.example.yaml"
    ))
    .unwrap();
    let mut doc: Yaml = serde_yaml::from_str(&example).unwrap();
    let top = doc.as_mapping_mut().unwrap();
    top.remove("name");
    let services = top["services"].as_mapping_mut().unwrap();
    assert!(
        services.remove("web").is_some(),
        "the example has a web service"
    );
    for (name, sibling_image, labels) in siblings {
        let mut service = Mapping::new();
        service.insert("image".into(), sibling_image.as_str().into());
        let mut l = Mapping::new();
        for (k, v) in *labels {
            l.insert((*k).into(), (*v).into());
        }
        service.insert("labels".into(), Yaml::Mapping(l));
        services.insert((*name).into(), Yaml::Mapping(service));
    }
    let pp = services["pullpilot"].as_mapping_mut().unwrap();
    assert_eq!(pp["read_only"], Yaml::Bool(true));
    assert_eq!(pp["environment"]["PP_DATA_DIR"], "/data");
    pp.insert("image".into(), image.into());
    pp.insert(
        "command".into(),
        Yaml::Sequence(command.iter().map(|a| (*a).into()).collect()),
    );
    pp.insert("network_mode".into(), "host".into());
    let environment = pp["environment"].as_mapping_mut().unwrap();
    for (k, v) in env {
        environment.insert((*k).into(), (*v).into());
    }
    let socket = bed.docker_host.trim_start_matches("unix://");
    let volumes = pp["volumes"].as_sequence_mut().unwrap();
    let at = volumes
        .iter()
        .position(|v| v == "/var/run/docker.sock:/var/run/docker.sock")
        .expect("the example mounts the Docker socket");
    volumes[at] = format!("{socket}:/var/run/docker.sock").into();
    tweak(pp);
    serde_yaml::to_string(&doc).unwrap()
}

/// `docker logs` of container `id`, both streams.
fn logs(bed: &Bed, id: &str) -> String {
    let out = bed.try_docker(&["logs", id]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits until `docker logs` of `id` has `n` lines containing `needle`.
fn wait_logs(bed: &Bed, id: &str, needle: &str, n: usize, within: Duration) {
    let started = Instant::now();
    loop {
        let text = logs(bed, id);
        if text.matches(needle).count() >= n {
            return;
        }
        assert!(
            started.elapsed() < within,
            "{needle:?} did not appear {n} times in the logs of pullpilot within {within:?}:\n{text}"
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// `pullpilot ARGS` inside the running pullpilot container (the image has no shell): its
/// stdout parsed as the one JSON document.
fn exec_json(bed: &Bed, id: &str, args: &[&str]) -> Value {
    let mut all = vec!["exec", id, "/usr/bin/pullpilot"];
    all.extend(args);
    let out = bed.try_docker(&all);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "pullpilot {} in the container printed no JSON ({e}):\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn row<'v>(doc: &'v Value, service: &str) -> &'v Value {
    doc["containers"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["service"] == service))
        .unwrap_or_else(|| panic!("no row for {service}: {doc:#}"))
}

/// `POST /notify` to the receiver on `port` with the bearer secret; the status code.
fn poke(port: u16, secret: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(["-H", &format!("Authorization: Bearer {secret}")])
        .arg(format!("http://127.0.0.1:{port}/notify"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn the_example_stack_updates_its_siblings_never_itself_and_keeps_its_clocks_across_a_restart() {
    let bed = Bed::get();
    let image = Image::build(bed);
    let open = bed.registry(Reg::Open);
    let repos: Vec<String> = ["good", "bad", "slow"]
        .iter()
        .map(|p| unique_name(&format!("ctr-{p}")))
        .collect();
    for repo in &repos {
        bed.push_image(Reg::Open, repo, "stable", Variant::V1);
    }
    let port = free_port();
    let secret = "e2e-container-secret-0123456789abcdef";
    let addr = format!("127.0.0.1:{port}");
    let yaml = stack(
        bed,
        &image.tag,
        &[
            ("good", open.image(&repos[0], "stable"), &[]),
            ("bad", open.image(&repos[1], "stable"), &[]),
            (
                "slow",
                open.image(&repos[2], "stable"),
                &[("io.pullpilot.soak", "1h")],
            ),
        ],
        &[
            "listen",
            "--http",
            &addr,
            "--debounce",
            "1s",
            "--min-interval",
            "1s",
        ],
        &[
            ("PP_SOAK", "0"),
            ("PP_HEALTH_STABLE", "1s"),
            ("PP_HEALTH_TIMEOUT", "20s"),
            ("PP_LOG_LEVEL", "debug"),
            ("PP_WEBHOOK_SECRET", secret),
        ],
        |_| {},
    );
    let project = Project::up(bed, &yaml);
    let me = project.container("pullpilot");
    let my_id = me["Id"].as_str().unwrap().to_string();
    let started_at = me["State"]["StartedAt"].clone();
    assert_eq!(me["HostConfig"]["ReadonlyRootfs"], true);
    assert_eq!(me["HostConfig"]["CapDrop"][0], "ALL");

    // The pass at start: the scope is the project, found from pullpilot's own container.
    wait_logs(bed, &my_id, "The pass finished", 1, Duration::from_secs(90));
    let text = logs(bed, &my_id);
    assert!(
        !text.contains("is not a volume"),
        "/data is the named volume:\n{text}"
    );

    bed.push_image(Reg::Open, &repos[0], "stable", Variant::V2);
    let unhealthy = bed.push_image(Reg::Open, &repos[1], "stable", Variant::V2Unhealthy);
    let slow_v2 = bed.push_image(Reg::Open, &repos[2], "stable", Variant::V2);

    // What the container would do: its own container excluded, the good one by the API (the
    // image has no compose CLI), and plan says so.
    let plan = exec_json(bed, &my_id, &["plan", "--json"]);
    assert_eq!(plan["schema_version"], 1, "{plan:#}");
    assert_eq!(
        plan["scope"],
        format!("project:{}", project.name()),
        "{plan:#}"
    );
    assert_eq!(row(&plan, "pullpilot")["decision"], "excluded", "{plan:#}");
    assert_eq!(row(&plan, "pullpilot")["by"], "own-container", "{plan:#}");
    let good = row(&plan, "good");
    assert_eq!(good["decision"], "update", "{plan:#}");
    assert_eq!(good["recreate"]["by"], "api", "{plan:#}");
    assert!(
        good["recreate"]["reason"]
            .as_str()
            .unwrap()
            .contains("no compose v2 CLI was found"),
        "{plan:#}"
    );

    assert_eq!(poke(port, secret), "202");
    wait_logs(
        bed,
        &my_id,
        "The pass finished",
        2,
        Duration::from_secs(180),
    );

    assert_eq!(
        project.container("good")["Image"],
        image_id(bed, Variant::V2),
        "the sibling was rolled out\n{}",
        logs(bed, &my_id)
    );
    let bad = project.container("bad");
    assert_eq!(
        bad["Image"],
        image_id(bed, Variant::V1),
        "the failing one was rolled back"
    );
    assert_eq!(bad["State"]["Running"], true);
    let me = project.container("pullpilot");
    assert_eq!(
        me["Id"],
        my_id.as_str(),
        "pullpilot's own container is untouched"
    );
    assert_eq!(me["State"]["StartedAt"], started_at);
    assert_eq!(me["RestartCount"], 0);

    let status = exec_json(bed, &my_id, &["status", "--json"]);
    assert_eq!(status["schema_version"], 1, "{status:#}");
    assert_eq!(
        row(&status, "bad")["blocked"][0]["digest"],
        unhealthy.as_str(),
        "{status:#}"
    );
    let soak = row(&status, "slow")["soak"].clone();
    assert_eq!(soak["digest"], slow_v2.as_str(), "{status:#}");
    assert!(soak["first_seen"].is_string(), "{status:#}");

    // A restart of the container keeps the state on the volume: the same soak clock, the same
    // blocked digest, and no update of the slow one.
    project.compose(&["restart", "pullpilot"]);
    wait_logs(bed, &my_id, "The pass finished", 3, Duration::from_secs(90));
    let after = exec_json(bed, &my_id, &["status", "--json"]);
    assert_eq!(row(&after, "slow")["soak"], soak, "{after:#}");
    assert_eq!(
        row(&after, "bad")["blocked"][0]["digest"],
        unhealthy.as_str()
    );
    assert_eq!(
        project.container("slow")["Image"],
        image_id(bed, Variant::V1),
        "still soaking"
    );
    assert_eq!(project.container("pullpilot")["Id"], my_id.as_str());
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn a_data_dir_that_is_not_a_volume_is_warned_about_at_start() {
    let bed = Bed::get();
    let image = Image::build(bed);
    let repo = unique_name("ctr-novol");
    bed.push_image(Reg::Open, &repo, "stable", Variant::V1);
    let yaml = stack(
        bed,
        &image.tag,
        &[("app", bed.registry(Reg::Open).image(&repo, "stable"), &[])],
        &["listen"],
        // A directory of the container's own file system, which must then be writable.
        &[("PP_DATA_DIR", "/var/lib/pullpilot")],
        |pp| {
            pp.insert("read_only".into(), false.into());
        },
    );
    let project = Project::up(bed, &yaml);
    let id = project.container("pullpilot")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_logs(bed, &id, "The pass finished", 1, Duration::from_secs(90));
    let text = logs(bed, &id);
    assert!(
        text.contains("PP_DATA_DIR (/var/lib/pullpilot) is not a volume"),
        "{text}"
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn plan_by_hand_reads_the_units_settings_file_and_the_environment_wins() {
    let bed = Bed::get();
    let repo = unique_name("settings");
    bed.push_image(Reg::Open, &repo, "stable", Variant::V1);
    let image = bed.registry(Reg::Open).image(&repo, "stable");
    let project = Project::up(bed, &format!("services:\n  app:\n    image: {image}\n"));
    bed.push_image(Reg::Open, &repo, "stable", Variant::V2);
    let data = TempDir::new("settings-data");
    let etc = TempDir::new("settings-etc");
    let file = etc.path().join("pullpilot");
    // As the .deb's file would be edited: a comment, quotes, the scope of this project.
    fs::write(
        &file,
        format!(
            "# pullpilot settings\nPP_SOAK=\"2h\"\nPP_SCOPE=project:{}\n",
            project.name()
        ),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        pullpilot(
            bed,
            Path::new("/"),
            &bed.docker_config,
            data.path(),
            args,
            env,
        )
    };

    let plan = run(&["plan", "--json"], &[("PP_CONFIG_FILE", path)]);
    assert_eq!(plan.code, 0, "{plan}");
    let doc = plan.json();
    assert_eq!(doc["schema_version"], 1, "{plan}");
    let app = plan.container("app");
    assert_eq!(
        app["decision"], "soaking",
        "PP_SOAK=2h from the file\n{plan}"
    );
    let remaining = app["remaining_seconds"].as_u64().unwrap();
    assert!((7000..=7200).contains(&remaining), "{plan}");

    let text = run(&["plan"], &[("PP_CONFIG_FILE", path)]);
    assert_eq!(text.code, 0, "{text}");
    assert!(
        text.stdout
            .contains(&format!("Settings file: {path} (2 settings).")),
        "{text}"
    );

    let overridden = run(
        &["plan", "--json"],
        &[("PP_CONFIG_FILE", path), ("PP_SOAK", "0")],
    );
    assert_eq!(
        overridden.container("app")["decision"],
        "update",
        "the environment wins\n{overridden}"
    );
    let text = run(&["plan"], &[("PP_CONFIG_FILE", path), ("PP_SOAK", "0")]);
    assert!(
        text.stdout.contains("the environment overrides PP_SOAK"),
        "{text}"
    );
}
