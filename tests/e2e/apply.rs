//! `pullpilot apply` against the real bed. Every check reads `docker inspect`, not the tool's
//! word: image IDs, names, config, networks, volumes, health, and compose's own verdict.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::pullpilot::{Run, pullpilot};
use crate::common::{Bed, LogMark, Project, Reg, TempDir, Variant, unique_name};

/// A compose project with one repository of its own on the open registry.
struct Setup<'a> {
    bed: &'a Bed,
    repo: String,
    project: Project<'a>,
    data: TempDir,
}

impl<'a> Setup<'a> {
    /// Pushes v1 of a fresh repository as `stable`, then brings up `yaml` with `{image}`
    /// replaced by that reference.
    /// A `{image}-side` in the YAML names a second repository (`<repo>-side`), also at v1.
    fn new(bed: &'a Bed, prefix: &str, yaml: &str) -> Setup<'a> {
        let repo = unique_name(prefix);
        bed.push_image(Reg::Open, &repo, "stable", Variant::V1);
        let image = bed.registry(Reg::Open).image(&repo, "stable");
        let mut yaml = yaml.to_string();
        if yaml.contains("{image}-side") {
            bed.push_image(Reg::Open, &format!("{repo}-side"), "stable", Variant::V1);
            let side = bed
                .registry(Reg::Open)
                .image(&format!("{repo}-side"), "stable");
            yaml = yaml.replace("{image}-side", &side);
        }
        let project = Project::up(bed, &yaml.replace("{image}", &image));
        Setup {
            bed,
            repo,
            project,
            data: TempDir::new(prefix),
        }
    }

    fn push(&self, variant: Variant) -> String {
        self.bed
            .push_image(Reg::Open, &self.repo, "stable", variant)
    }

    fn apply(&self, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let scope = format!("project:{}", self.project.name());
        let mut args = vec!["apply", "--json", "--scope", &scope];
        args.extend_from_slice(extra);
        pullpilot(
            self.bed,
            self.project.dir(),
            &self.bed.docker_config,
            self.data.path(),
            &args,
            env,
        )
    }

    fn state(&self) -> Value {
        let text =
            fs::read_to_string(self.data.path().join("state.json")).expect("state.json exists");
        serde_json::from_str(&text).expect("state.json is JSON")
    }

    /// Image ID the local `repo:stable` tag points to.
    fn tag_target(&self) -> String {
        let image = self.bed.registry(Reg::Open).image(&self.repo, "stable");
        self.bed.inspect(&image)["Id"].as_str().unwrap().to_string()
    }

    /// Every container of the project, by name (catches leftovers such as `*-pp-old`).
    fn container_names(&self) -> Vec<String> {
        let out = self.bed.docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project.name()),
            "--format",
            "{{.Names}}",
        ]);
        let mut names: Vec<String> = out.lines().map(str::to_string).collect();
        names.sort();
        names
    }
}

fn wait_healthy(bed: &Bed, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = bed.inspect(id);
        if c["State"]["Health"]["Status"] == "healthy" || Instant::now() > deadline {
            return c;
        }
        thread::sleep(Duration::from_millis(300));
    }
}

fn image_id(bed: &Bed, variant: Variant) -> String {
    bed.inspect(&variant.base_image())["Id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn env_of(c: &Value) -> Vec<String> {
    let mut env: Vec<String> = c["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    env.sort();
    env
}

const HAPPY: &str = r#"
services:
  app:
    image: {image}
    restart: unless-stopped
    environment:
      APP_MODE: compose
    labels:
      com.example.team: storefront
    ports:
      - "127.0.0.1::8080"
    volumes:
      - /data
    networks:
      front:
        aliases: [shop, shop-web]
      back:
        ipv4_address: 10.213.251.10
networks:
  front: {}
  back:
    ipam:
      config:
        - subnet: 10.213.251.0/24
"#;

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn apply_updates_to_the_new_digest_and_keeps_everything() {
    let bed = Bed::get();
    let s = Setup::new(bed, "happy", HAPPY);
    let before = s.project.container("app");
    let old_id = before["Id"].as_str().unwrap().to_string();
    s.project
        .compose(&["exec", "-T", "app", "sh", "-c", "echo kept > /data/proof"]);
    let v2 = s.push(Variant::V2);

    let run = s.apply(&[], &[("PP_SOAK", "0")]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        run.container("app")["result"]["outcome"],
        "updated",
        "{run}"
    );

    let after = wait_healthy(bed, s.project.container_ids("app").first().unwrap());
    let new_id = after["Id"].as_str().unwrap();
    assert_ne!(new_id, old_id, "the container was recreated");
    assert_eq!(
        after["Image"],
        image_id(bed, Variant::V2),
        "runs v2's image"
    );
    assert_eq!(after["Name"], before["Name"], "same name");
    assert_eq!(after["State"]["Health"]["Status"], "healthy");
    assert!(
        bed.try_docker(&["inspect", &old_id]).status.code() != Some(0),
        "the old container is gone"
    );
    assert_eq!(
        s.container_names(),
        [before["Name"].as_str().unwrap().trim_start_matches('/')],
        "no leftovers"
    );
    assert_eq!(
        s.tag_target(),
        image_id(bed, Variant::V2),
        "the tag points at v2"
    );

    // Configuration carried over.
    for path in [
        ["HostConfig", "RestartPolicy"],
        ["HostConfig", "PortBindings"],
        ["HostConfig", "Binds"],
        ["Config", "Image"],
    ] {
        assert_eq!(
            after[path[0]][path[1]], before[path[0]][path[1]],
            "{path:?}"
        );
    }
    let labels = |c: &Value, k: &str| c["Config"]["Labels"][k].clone();
    for key in [
        "com.example.team",
        "com.docker.compose.project",
        "com.docker.compose.service",
        "com.docker.compose.config-hash",
    ] {
        assert_eq!(labels(&after, key), labels(&before, key), "label {key}");
    }
    assert_eq!(
        labels(&after, "com.docker.compose.image"),
        after["Image"],
        "compose sees the new image"
    );
    let nets = |c: &Value| {
        c["NetworkSettings"]["Networks"]
            .as_object()
            .unwrap()
            .clone()
    };
    let (nb, na) = (nets(&before), nets(&after));
    assert_eq!(
        na.keys().collect::<Vec<_>>(),
        nb.keys().collect::<Vec<_>>(),
        "same networks"
    );
    for (name, endpoint) in &na {
        let was = &nb[name];
        let aliases = |e: &Value| -> Vec<String> {
            let mut a: Vec<String> = e["Aliases"]
                .as_array()
                .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            a.retain(|x| x.len() != 12 || !x.bytes().all(|b| b.is_ascii_hexdigit()));
            a.sort();
            a
        };
        assert_eq!(aliases(endpoint), aliases(was), "aliases on {name}");
        assert_eq!(
            endpoint["IPAMConfig"], was["IPAMConfig"],
            "static IP config on {name}"
        );
    }
    let back = na.iter().find(|(n, _)| n.ends_with("_back")).unwrap().1;
    assert_eq!(
        back["IPAddress"], "10.213.251.10",
        "the static IP is in use"
    );

    // Data in the anonymous volume survived, and it is the same volume.
    let proof = s
        .project
        .compose(&["exec", "-T", "app", "cat", "/data/proof"]);
    assert_eq!(proof.trim(), "kept");
    let vol = |c: &Value| {
        c["Mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["Destination"] == "/data")
            .unwrap()["Name"]
            .clone()
    };
    assert_eq!(vol(&after), vol(&before));

    // The new image's defaults apply; compose's env keeps its value.
    let env = env_of(&after);
    assert!(env.contains(&"APP_VERSION=2".to_string()), "{env:?}");
    assert!(env.contains(&"APP_MODE=compose".to_string()), "{env:?}");
    let v2_image = bed.inspect(&Variant::V2.base_image());
    assert_eq!(
        after["Config"]["Cmd"], v2_image["Config"]["Cmd"],
        "v2's CMD"
    );
    assert_eq!(
        after["Config"]["Healthcheck"], v2_image["Config"]["Healthcheck"],
        "v2's HEALTHCHECK"
    );
    assert_ne!(
        before["Config"]["Healthcheck"],
        after["Config"]["Healthcheck"]
    );

    // compose's own verdict: nothing to do.
    let up = s.project.try_compose(&["up", "-d"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&up.stdout),
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(up.status.success(), "{said}");
    assert!(
        !said.contains("Recreate"),
        "compose wanted to recreate:\n{said}"
    );
    assert_eq!(
        s.project.container_ids("app"),
        [new_id.to_string()],
        "compose kept the container"
    );

    // State: history and no journal.
    let state = s.state();
    let key = format!("{}/app", s.project.name());
    assert_eq!(
        state["containers"][&key]["history"][0]["digest"],
        v2.as_str()
    );
    assert!(state.get("journal").is_none(), "{state:#}");
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn apply_soaks_a_new_digest_and_restarts_the_clock_when_it_changes() {
    let bed = Bed::get();
    let s = Setup::new(bed, "soak", "services:\n  app:\n    image: {image}\n");
    let old_id = s.project.container_ids("app");
    let v2 = s.push(Variant::V2);
    // Long enough that the "only ~3s" check below keeps a wide margin on a loaded machine,
    // where one apply can take seconds.
    let soak = [("PP_SOAK", "10s")];

    let first = s.apply(&[], &soak);
    assert_eq!(first.code, 0, "{first}");
    assert_eq!(first.container("app")["decision"], "soaking", "{first}");
    assert_eq!(
        s.project.container_ids("app"),
        old_id,
        "nothing changes during the soak"
    );
    let key = format!("{}/app", s.project.name());
    let cand = s.state()["containers"][&key]["candidate"].clone();
    assert_eq!(cand["digest"], v2.as_str());

    thread::sleep(Duration::from_secs(2));
    let v3 = s.push(Variant::V3);
    let second = s.apply(&[], &soak);
    // v3's clock started during that run, so no later than now.
    let v3_seen_by = Instant::now();
    assert_eq!(second.container("app")["decision"], "soaking", "{second}");
    let restarted = s.state()["containers"][&key]["candidate"].clone();
    assert_eq!(
        restarted["digest"],
        v3.as_str(),
        "a different digest replaces the candidate"
    );
    assert_ne!(
        restarted["first_seen"], cand["first_seen"],
        "and restarts the clock"
    );
    assert_eq!(s.project.container_ids("app"), old_id);

    thread::sleep(Duration::from_secs(3));
    let early = s.apply(&[], &soak);
    assert_eq!(
        early.container("app")["decision"],
        "soaking",
        "v3 has soaked only ~3s\n{early}"
    );
    let soaked = v3_seen_by + Duration::from_secs(11);
    thread::sleep(soaked.saturating_duration_since(Instant::now()));
    let third = s.apply(&[], &soak);
    assert_eq!(
        third.container("app")["result"]["outcome"],
        "updated",
        "{third}"
    );
    let c = s.project.container("app");
    assert_eq!(c["Image"], image_id(bed, Variant::V3));
}

const BAD: &str = r"
services:
  unhealthy:
    image: {image}-unhealthy
  exits:
    image: {image}-exits
  crashloop:
    image: {image}-crashloop
    restart: always
";

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn apply_rolls_back_bad_images_blocks_them_and_tries_a_later_one() {
    let bed = Bed::get();
    let open = bed.registry(Reg::Open);
    let repo = unique_name("bad");
    let services = [
        ("unhealthy", Variant::V2Unhealthy),
        ("exits", Variant::V2Exits),
        ("crashloop", Variant::V2Crashloop),
    ];
    for (svc, _) in services {
        bed.push_image(Reg::Open, &format!("{repo}-{svc}"), "stable", Variant::V1);
    }
    let yaml = BAD
        .replace(
            "{image}-unhealthy",
            &open.image(&format!("{repo}-unhealthy"), "stable"),
        )
        .replace(
            "{image}-exits",
            &open.image(&format!("{repo}-exits"), "stable"),
        )
        .replace(
            "{image}-crashloop",
            &open.image(&format!("{repo}-crashloop"), "stable"),
        );
    let project = Project::up(bed, &yaml);
    let data = TempDir::new("bad");
    let before: Vec<(String, Value)> = services
        .iter()
        .map(|(s, _)| ((*s).to_string(), project.container(s)))
        .collect();
    for (svc, variant) in services {
        bed.push_image(Reg::Open, &format!("{repo}-{svc}"), "stable", variant);
    }
    let env = [
        ("PP_SOAK", "0"),
        ("PP_HEALTH_TIMEOUT", "20s"),
        ("PP_HEALTH_STABLE", "6s"),
    ];
    let scope = format!("project:{}", project.name());
    let run = pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &["apply", "--json", "--scope", &scope],
        &env,
    );
    assert_eq!(run.code, 1, "a rollback makes the run fail\n{run}");
    let v1 = image_id(bed, Variant::V1);
    for (svc, old) in &before {
        assert_eq!(
            run.container(svc)["result"]["outcome"],
            "rolled-back",
            "{svc}\n{run}"
        );
        // Compose rolled it back: a container made from the same model on the old image.
        let name = old["Name"].as_str().unwrap().trim_start_matches('/');
        let now = wait_healthy(bed, name);
        let hash = |c: &Value| c["Config"]["Labels"]["com.docker.compose.config-hash"].clone();
        assert_eq!(hash(&now), hash(old), "{svc}: the same compose model");
        assert_eq!(now["Config"]["Env"], old["Config"]["Env"], "{svc}");
        assert_eq!(now["HostConfig"], old["HostConfig"], "{svc}");
        assert_eq!(now["Name"], old["Name"], "{svc}: under its name");
        assert_eq!(now["Image"], v1, "{svc}: on v1");
        assert_eq!(now["State"]["Running"], true, "{svc}");
        assert_eq!(now["State"]["Health"]["Status"], "healthy", "{svc}");
        assert_eq!(
            project.container_ids(svc).len(),
            1,
            "{svc}: no leftover replacement"
        );
        let tag = bed.inspect(&open.image(&format!("{repo}-{svc}"), "stable"));
        assert_eq!(tag["Id"], v1, "{svc}: the tag points at v1 again");
    }
    let state: Value =
        serde_json::from_str(&fs::read_to_string(data.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(state["blocked"].as_object().unwrap().len(), 3, "{state:#}");

    let again = pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &["apply", "--json", "--scope", &scope],
        &env,
    );
    for (svc, _) in services {
        assert_eq!(
            again.container(svc)["decision"],
            "blocked",
            "{svc} is not retried\n{again}"
        );
        assert!(again.container(svc)["result"].is_null(), "{again}");
    }
    assert_eq!(again.code, 0, "{again}");

    bed.push_image(Reg::Open, &format!("{repo}-exits"), "stable", Variant::V3);
    let later = pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &["apply", "--json", "--scope", &scope, "exits"],
        &env,
    );
    assert_eq!(
        later.container("exits")["result"]["outcome"],
        "updated",
        "v3 is tried normally\n{later}"
    );
    assert_eq!(
        project.container("exits")["Image"],
        image_id(bed, Variant::V3)
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn apply_updates_dependencies_before_dependents() {
    let bed = Bed::get();
    let s = Setup::new(
        bed,
        "order",
        "services:\n  web:\n    image: {image}\n    depends_on: [db]\n  db:\n    image: {image}\n  zz:\n    image: {image}\n    labels: { io.pullpilot.order: \"-1\" }\n",
    );
    s.push(Variant::V2);
    let run = s.apply(&[], &[("PP_SOAK", "0")]);
    assert_eq!(run.code, 0, "{run}");
    let created = |svc: &str| {
        s.project.container(svc)["Created"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(created("zz") < created("db"), "the order label goes first");
    assert!(
        created("db") < created("web"),
        "db before the web that depends on it"
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn a_second_apply_exits_75_at_once_and_changes_nothing() {
    let bed = Bed::get();
    let s = Setup::new(bed, "lock", "services:\n  app:\n    image: {image}\n");
    s.push(Variant::V2);
    let scope = format!("project:{}", s.project.name());
    let mut first = Command::new(env!("CARGO_BIN_EXE_pullpilot"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DOCKER_HOST", &bed.docker_host)
        .env("DOCKER_CONFIG", &bed.docker_config)
        .env("PP_DATA_DIR", s.data.path())
        .env("PP_SOAK", "0")
        .env("PULLPILOT_PAUSE_AT", "after-journal")
        .env("PULLPILOT_PAUSE_SECS", "6")
        .args(["apply", "--scope", &scope])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_journal(s.data.path());
    let ids = s.project.container_ids("app");
    let started = Instant::now();
    let second = s.apply(&[], &[("PP_SOAK", "0")]);
    assert_eq!(second.code, 75, "{second}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "it did not wait"
    );
    assert!(second.stderr.contains("holds the lock"), "{second}");
    assert_eq!(
        s.project.container_ids("app"),
        ids,
        "the second run changed nothing"
    );
    assert!(
        first.wait().unwrap().success(),
        "the first run finished its update"
    );
    assert_eq!(
        s.project.container("app")["Image"],
        image_id(bed, Variant::V2)
    );
}

fn wait_for_journal(data: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if fs::read_to_string(data.join("state.json")).is_ok_and(|t| t.contains("\"journal\"")) {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "the first apply never wrote its journal (was the e2e binary built with --features fault-injection?)"
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn containers_sharing_the_network_follow_the_updated_one() {
    let bed = Bed::get();
    let s = Setup::new(
        bed,
        "netns",
        "services:\n  app:\n    image: {image}\n  sidecar:\n    image: {image}-side\n    network_mode: service:app\n",
    );
    let mac = |svc: &str| {
        s.project
            .compose(&["exec", "-T", svc, "cat", "/sys/class/net/eth0/address"])
            .trim()
            .to_string()
    };
    assert_eq!(
        mac("sidecar"),
        mac("app"),
        "the sidecar starts in app's namespace"
    );
    let old_sidecar = s.project.container("sidecar")["Id"].clone();
    s.push(Variant::V2);

    let run = s.apply(&[], &[("PP_SOAK", "0")]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        run.container("app")["result"]["outcome"],
        "updated",
        "{run}"
    );
    let app = s.project.container("app");
    let sidecar = s.project.container("sidecar");
    assert_ne!(sidecar["Id"], old_sidecar, "the sidecar was recreated");
    assert_eq!(
        sidecar["HostConfig"]["NetworkMode"],
        format!("container:{}", app["Id"].as_str().unwrap())
    );
    assert_eq!(sidecar["State"]["Running"], true);
    assert_eq!(
        mac("sidecar"),
        mac("app"),
        "the sidecar shares the new app's network"
    );
    assert_eq!(
        s.container_names().len(),
        2,
        "no leftovers: {:?}",
        s.container_names()
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn apply_takes_policy_from_the_compose_file_never_from_the_image() {
    use crate::plan::{IMAGE_POLICY, IMAGE_POLICY_YAML, push_labelled_image};

    let bed = Bed::get();
    let repo = unique_name("apply-image-labels");
    let hook_ran = TempDir::new("image-hook");
    let marker = hook_ran.path().join("ran");
    let hook = format!("touch {}", marker.display());
    let mut labels = IMAGE_POLICY.to_vec();
    labels.push(("io.pullpilot.pre-update", &hook));
    push_labelled_image(bed, &repo, Variant::V1, &labels);
    let image = bed.registry(Reg::Open).image(&repo, "stable");
    let project = Project::up(bed, &IMAGE_POLICY_YAML.replace("{image}", &image));
    let before = project.container_ids("inherited");
    let v1_id = project.container("inherited")["Image"].clone();
    push_labelled_image(bed, &repo, Variant::V2, &labels);
    let data = TempDir::new("apply-image-labels");
    let scope = format!("project:{}", project.name());
    let run = pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &["apply", "--json", "--scope", &scope],
        &[],
    );
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        run.container("inherited")["decision"],
        "soaking",
        "the image's soak=0 and exclude are not read\n{run}"
    );
    assert_eq!(project.container_ids("inherited"), before, "{run}");
    for service in ["same", "respelled"] {
        assert_eq!(
            run.container(service)["result"]["outcome"],
            "updated",
            "{service}: the compose file's soak counts\n{run}"
        );
        let updated = project.container(service);
        assert_ne!(updated["Image"], v1_id, "{service} runs the new image");
        assert_eq!(updated["Image"], project.container("same")["Image"]);
    }
    assert!(
        !marker.exists(),
        "the image's pre-update hook must never run on the host\n{run}"
    );
    assert!(
        run.stderr.contains("Ignoring io.pullpilot.pre-update"),
        "the ignored hook is logged\n{run}"
    );
}

/// Publishes a two-platform index as `<repo>:stable` in the open registry: linux/amd64 is
/// `pptb/app:<amd64>` as is, linux/arm64 a copy whose config carries `arm_note` (and the
/// repository's name, so no two repositories share an index and, on containerd, an image).
/// Returns the index digest.
/// With `own_amd64`, the amd64 config carries the repository's name too: an image (and, on the
/// classic store, an image ID) no other tag shares.
fn publish_index(bed: &Bed, repo: &str, amd64: &str, arm_note: &str, own_amd64: bool) -> String {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testbed/registry_tool.py");
    let out = Command::new(&bed.python)
        .arg(tool)
        .args(["make-index", "--registry", &bed.open.addr])
        .args(["--from", &format!("pptb/app:{amd64}")])
        .args(["--to", &format!("{repo}:stable")])
        .args(["--arm-note", &format!("{repo} {arm_note}")])
        .args(if own_amd64 {
            vec!["--amd-note", repo]
        } else {
            Vec::new()
        })
        .output()
        .expect("running registry_tool.py");
    assert!(
        out.status.success(),
        "registry_tool.py make-index failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(digest.starts_with("sha256:"), "{digest:?}");
    digest
}

/// A project running `<repo>:stable` where that tag is a two-platform index.
fn multi_setup<'a>(bed: &'a Bed, prefix: &str, own_amd64: bool) -> (Setup<'a>, String) {
    let repo = unique_name(prefix);
    let first = publish_index(bed, &repo, "v1", "one", own_amd64);
    let image = bed.registry(Reg::Open).image(&repo, "stable");
    let project = Project::up(bed, &format!("services:\n  app:\n    image: {image}\n"));
    let setup = Setup {
        bed,
        repo,
        project,
        data: TempDir::new(prefix),
    };
    (setup, first)
}

fn plan_json(s: &Setup<'_>) -> Value {
    let scope = format!("project:{}", s.project.name());
    let run = pullpilot(
        s.bed,
        s.project.dir(),
        &s.bed.docker_config,
        s.data.path(),
        &["plan", "--json", "--scope", &scope],
        &[("PP_SOAK", "0")],
    );
    assert_eq!(run.code, 0, "{run}");
    run.container("app")
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn an_index_changed_only_for_another_platform_restarts_nothing() {
    let bed = Bed::get();
    let (s, first) = multi_setup(bed, "multi-other", false);
    let before = s.project.container("app");
    let old_id = before["Id"].as_str().unwrap().to_string();

    let second = publish_index(bed, &s.repo, "v1", "two", false);
    assert_ne!(second, first, "the index changed");
    let registry_log = LogMark::new(&bed.open.log);
    let plan = plan_json(&s);
    assert_eq!(plan["decision"], "up-to-date", "{plan:#}");
    assert_eq!(plan["available_digest"], second.as_str());
    let check = &plan["platform_check"];
    assert_eq!(check["platform"], "linux/amd64", "{plan:#}");
    assert_eq!(check["same"], true, "{plan:#}");
    assert_eq!(check["local"], check["remote"], "{plan:#}");
    let compared = if bed.image_store == "containerd" {
        "manifest"
    } else {
        "config"
    };
    assert_eq!(check["compared"], compared, "{plan:#}");
    // One HEAD, then the index by digest (and on the classic store its amd64 manifest).
    let manifest_gets = if compared == "config" { 2 } else { 1 };
    let wanted = 1 + manifest_gets;
    registry_log.wait_count(
        &format!("/v2/{}/manifests/", s.repo),
        wanted,
        Duration::from_secs(5),
    );
    let ours: Vec<String> = registry_log
        .lines()
        .into_iter()
        .filter(|l| l.contains("\"pullpilot/") && l.contains(&format!("/v2/{}/", s.repo)))
        .collect();
    assert_eq!(ours.len(), wanted, "{ours:#?}");
    assert_eq!(
        ours.iter()
            .filter(|l| l.contains("\"GET /v2/") && l.contains("/manifests/sha256:"))
            .count(),
        manifest_gets,
        "manifest GETs by digest only: {ours:#?}"
    );
    assert!(
        !ours.iter().any(|l| l.contains("/blobs/")),
        "no layer or config blob is fetched: {ours:#?}"
    );
    if compared == "config" {
        assert_eq!(
            check["local"], before["Image"],
            "the image ID is the config digest"
        );
    }
    assert!(
        plan["reason"]
            .as_str()
            .unwrap()
            .starts_with("index changed, your platform's image did not"),
        "{plan:#}"
    );

    let run = s.apply(&[], &[("PP_SOAK", "0")]);
    assert_eq!(run.code, 0, "{run}");
    let row = run.container("app");
    assert_eq!(row["decision"], "up-to-date", "{run}");
    assert!(row["result"].is_null(), "nothing was done: {run}");
    assert_eq!(
        s.project.container_ids("app"),
        std::slice::from_ref(&old_id),
        "not recreated"
    );
    s.project.compose(&["up", "-d"]);
    assert_eq!(
        s.project.container_ids("app"),
        std::slice::from_ref(&old_id),
        "docker compose up -d stays quiet"
    );

    // A change for this host's platform is an update as usual.
    let third = publish_index(bed, &s.repo, "v2", "two", false);
    let plan = plan_json(&s);
    assert_eq!(plan["decision"], "update", "{plan:#}");
    assert_eq!(plan["platform_check"]["same"], false, "{plan:#}");
    let run = s.apply(&[], &[("PP_SOAK", "0")]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        run.container("app")["result"]["outcome"],
        "updated",
        "{run}"
    );
    assert_eq!(run.container("app")["available_digest"], third.as_str());
    let after = s.project.container("app");
    assert_ne!(after["Id"], old_id.as_str(), "recreated");
    assert_ne!(after["Image"], before["Image"], "runs the new image");
    let ids = s.project.container_ids("app");
    s.project.compose(&["up", "-d"]);
    assert_eq!(
        s.project.container_ids("app"),
        ids,
        "compose quiet after the update"
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn a_running_image_left_dangling_by_a_manual_pull_gets_a_clear_decision() {
    let bed = Bed::get();
    let (s, _) = multi_setup(bed, "multi-dangling", true);
    let old_id = s.project.container_ids("app")[0].clone();
    let image = bed.registry(Reg::Open).image(&s.repo, "stable");

    // Another platform changed and someone pulled it by hand.
    publish_index(bed, &s.repo, "v1", "two", true);
    bed.docker(&["pull", "--quiet", &image]);
    let plan = plan_json(&s);
    assert_eq!(plan["decision"], "up-to-date", "{plan:#}");

    // This platform changed and someone pulled it by hand: the running image loses its name.
    publish_index(bed, &s.repo, "v2", "two", true);
    bed.docker(&["pull", "--quiet", &image]);
    let running = bed.inspect(bed.inspect(&old_id)["Image"].as_str().unwrap());
    assert_eq!(
        running["RepoTags"],
        serde_json::json!([]),
        "dangling: {running:#}"
    );
    let plan = plan_json(&s);
    let decision = plan["decision"].as_str().unwrap();
    if running["RepoDigests"].as_array().is_none_or(Vec::is_empty)
        && bed.image_store != "containerd"
    {
        assert_eq!(decision, "dangling", "{plan:#}");
        assert!(plan["reason"].as_str().unwrap().contains("lost its name"));
    } else {
        assert_eq!(decision, "update", "{plan:#}");
        assert_eq!(plan["platform_check"]["same"], false, "{plan:#}");
        let run = s.apply(&[], &[("PP_SOAK", "0")]);
        assert_eq!(
            run.container("app")["result"]["outcome"],
            "updated",
            "{run}"
        );
        assert_eq!(
            s.project.container("app")["Image"],
            bed.inspect(&image)["Id"],
            "runs what the tag names now"
        );
    }
}
