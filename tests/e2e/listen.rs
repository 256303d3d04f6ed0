//! `pullpilot listen` and `pullpilot relay` with the real bed: a poke (by curl, through our
//! relay, or at the local receiver) leads to an ordinary pass, with every gate in force.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::pullpilot::{Running, pullpilot, spawn_pullpilot};
use crate::common::{Bed, Project, Reg, TempDir, Variant, unique_name};

const YAML: &str = r"
services:
  app:
    image: {image}
";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn image_id(bed: &Bed, variant: Variant) -> String {
    bed.inspect(&variant.base_image())["Id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn count(run: &Running, needle: &str) -> usize {
    run.stderr().matches(needle).count()
}

/// Waits until `needle` appears `n` times in `run`'s log.
fn wait_count(run: &Running, needle: &str, n: usize, within: Duration) {
    let until = Instant::now() + within;
    while count(run, needle) < n {
        assert!(
            Instant::now() < until,
            "{needle:?} did not appear {n} times within {within:?}\n--- log ---\n{}",
            run.stderr()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the service's container runs `image`; returns how long that took.
fn wait_image(project: &Project<'_>, image: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        // A pass may be recreating the container right now: `compose ps` itself can then fail
        // (a listed container is gone before compose inspects it), and listing again could see
        // two (old and new). So poll with the try variants, and inspect the id just listed.
        let listed = project.try_compose(&["ps", "--all", "--quiet", "app"]);
        let text = String::from_utf8_lossy(&listed.stdout);
        let ids: Vec<&str> = text.split_whitespace().collect();
        if let (true, [id]) = (listed.status.success(), ids.as_slice()) {
            let c = project.bed().try_inspect(id);
            if c.as_ref()
                .is_some_and(|c| c["Image"] == image && c["State"]["Running"] == true)
            {
                return started.elapsed();
            }
        }
        assert!(
            started.elapsed() < within,
            "the service did not run {image} within {within:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// `pullpilot listen --http` on `port` for `project`'s services, with short debounce and
/// minimum interval; returns once its first pass (at start) has finished.
fn receiver_listen(
    project: &Project<'_>,
    data: &Path,
    port: u16,
    secret: &str,
    env: &[(&str, &str)],
) -> Running {
    let bed = project.bed();
    let scope = format!("project:{}", project.name());
    let addr = format!("127.0.0.1:{port}");
    let mut env = env.to_vec();
    env.push(("PP_WEBHOOK_SECRET", secret));
    let args = [
        "listen",
        "--scope",
        &scope,
        "--http",
        &addr,
        "--debounce",
        "1s",
        "--min-interval",
        "1s",
    ];
    let listen = spawn_pullpilot(bed, project.dir(), &bed.docker_config, data, &args, &env);
    wait_count(&listen, "The pass finished", 1, Duration::from_secs(60));
    listen
}

/// `POST path` to the local receiver on `port` with an optional header; the status code.
fn notify(port: u16, path: &str, header: Option<&str>) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"]);
    if let Some(h) = header {
        cmd.args(["-H", h]);
    }
    let out = cmd
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A `pullpilot relay` on a free loopback port with its state in `dir`.
fn start_relay(bed: &Bed, dir: &Path, port: u16) -> Running {
    let addr = format!("127.0.0.1:{port}");
    let state = dir.to_str().unwrap();
    let relay = spawn_pullpilot(
        bed,
        dir,
        &bed.docker_config,
        dir,
        &["relay", "--listen", &addr, "--state-dir", state],
        &[],
    );
    let until = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).is_err() {
        assert!(
            Instant::now() < until,
            "the relay did not start\n{}",
            relay.stderr()
        );
        thread::sleep(Duration::from_millis(50));
    }
    relay
}

fn show_url(bed: &Bed, data: &Path) -> String {
    let run = pullpilot(
        bed,
        data,
        &bed.docker_config,
        data,
        &["listen", "--show-url"],
        &[],
    );
    assert_eq!(run.code, 0, "{run}");
    run.stdout.lines().next().unwrap().trim().to_string()
}

fn curl_poke(url: &str) {
    let out = Command::new("curl")
        .args(["-fsS", "-X", "POST", "-H", "Content-Type: application/json"])
        .args(["-d", r#"{"reason":"e2e"}"#, url])
        .output()
        .expect("running curl");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A raw `POST` without waiting for a new process; returns the status code.
fn post(url: &str) -> u16 {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn relay_pokes_update_within_seconds_and_survive_relay_restarts_and_forgetting() {
    let bed = Bed::get();
    let repo = unique_name("listen");
    bed.push_image(Reg::Open, &repo, "stable", Variant::V1);
    let image = bed.registry(Reg::Open).image(&repo, "stable");
    let project = Project::up(bed, &YAML.replace("{image}", &image));
    let data = TempDir::new("listen-data");
    let relay_dir = TempDir::new("relay-state");
    let port = free_port();
    let mut relay = start_relay(bed, relay_dir.path(), port);

    let scope = format!("project:{}", project.name());
    let base = format!("http://127.0.0.1:{port}");
    let mut listen = spawn_pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &[
            "listen",
            "--scope",
            &scope,
            // Longer than the relay's 5 s coalescing window, as the 10 s default is: the
            // relay's deferred deliveries during a burst then keep re-arming one debounce.
            "--debounce",
            "6s",
            "--min-interval",
            "4s",
        ],
        &[
            ("PP_WEBHOOK", "true"),
            ("PP_WEBHOOK_URL", &base),
            ("PP_SOAK", "0"),
            ("PP_HEALTH_STABLE", "1s"),
        ],
    );
    listen.wait_for_stderr("Connected to the relay", Duration::from_secs(20));
    wait_count(&listen, "The pass finished", 1, Duration::from_secs(60));
    let poke_url = show_url(bed, data.path());
    assert!(
        poke_url.starts_with(&format!("{base}/v1/poke/wh_")),
        "{poke_url}"
    );

    // 1. A poke by curl: within 15 s the service runs the new image.
    bed.push_image(Reg::Open, &repo, "stable", Variant::V2);
    curl_poke(&poke_url);
    let took = wait_image(
        &project,
        &image_id(bed, Variant::V2),
        Duration::from_secs(15),
    );
    wait_count(&listen, "The pass finished", 2, Duration::from_secs(30));
    assert!(took < Duration::from_secs(15), "took {took:?}");

    // 2. A thousand pokes in ten seconds: at most two passes.
    let passes_before = count(&listen, "Starting a pass");
    let started = Instant::now();
    let mut accepted = 0;
    for i in 0..1000u32 {
        if post(&poke_url) == 202 {
            accepted += 1;
        }
        let next = Duration::from_millis(u64::from(i + 1) * 10);
        if let Some(wait) = next.checked_sub(started.elapsed()) {
            thread::sleep(wait);
        }
    }
    assert!(accepted >= 100, "the relay accepted only {accepted} pokes");
    // Let the debounce and any follow-up pass run out.
    thread::sleep(Duration::from_secs(12));
    wait_count(
        &listen,
        "The pass finished",
        passes_before + 1,
        Duration::from_secs(30),
    );
    let passes = count(&listen, "Starting a pass") - passes_before;
    assert!((1..=2).contains(&passes), "{passes} passes for 1000 pokes");

    // 3. The relay restarts: listen reconnects, and the next poke works.
    drop(relay);
    relay = start_relay(bed, relay_dir.path(), port);
    wait_count(
        &listen,
        "Reconnected to the relay",
        1,
        Duration::from_secs(90),
    );
    bed.push_image(Reg::Open, &repo, "stable", Variant::V3);
    curl_poke(&poke_url);
    wait_image(
        &project,
        &image_id(bed, Variant::V3),
        Duration::from_secs(30),
    );

    // 4. The relay forgets the webhook: listen registers again and says where to see the URL.
    drop(relay);
    for entry in fs::read_dir(relay_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            fs::remove_file(path).unwrap();
        }
    }
    let _relay = start_relay(bed, relay_dir.path(), port);
    listen.wait_for_stderr("no longer knows", Duration::from_secs(90));
    wait_count(
        &listen,
        "Registered this host with the relay",
        2,
        Duration::from_secs(90),
    );
    let new_url = show_url(bed, data.path());
    assert_ne!(new_url, poke_url);
    let log = listen.stderr();
    assert!(log.contains("listen --show-url"), "{log}");
    for url in [&poke_url, &new_url] {
        let id = url.rsplit('/').next().unwrap();
        assert!(!log.contains(id), "the webhook id {id} was logged in full");
    }
    let before = count(&listen, "Starting a pass");
    wait_count(&listen, "Connected to the relay", 1, Duration::from_secs(1));
    thread::sleep(Duration::from_secs(2));
    curl_poke(&new_url);
    wait_count(
        &listen,
        "Starting a pass",
        before + 1,
        Duration::from_secs(30),
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn pokes_cannot_roll_out_an_unsoaked_or_blocked_digest() {
    let bed = Bed::get();
    let repo = unique_name("gates");
    bed.push_image(Reg::Open, &repo, "stable", Variant::V1);
    let image = bed.registry(Reg::Open).image(&repo, "stable");
    let project = Project::up(bed, &YAML.replace("{image}", &image));
    let data = TempDir::new("gates-data");
    let v1 = image_id(bed, Variant::V1);
    let secret = "e2e-secret-0123456789abcdef0123456789";
    let auth = format!("Authorization: Bearer {secret}");
    let start = |soak: &str, port: u16| {
        let env = [
            ("PP_SOAK", soak),
            ("PP_HEALTH_TIMEOUT", "10s"),
            ("PP_HEALTH_STABLE", "3s"),
        ];
        receiver_listen(&project, data.path(), port, secret, &env)
    };
    let notify = |port: u16, header: Option<&str>| notify(port, "/notify/app", header);

    // An image that exits at start: the poke's pass rolls it back and blocks it.
    let port = free_port();
    let listen = start("0", port);
    bed.push_image(Reg::Open, &repo, "stable", Variant::V2Exits);
    assert_eq!(notify(port, None), "401");
    assert_eq!(notify(port, Some("Authorization: Bearer wrong")), "401");
    thread::sleep(Duration::from_secs(3));
    assert_eq!(
        count(&listen, "Starting a pass"),
        1,
        "refused calls start no pass"
    );
    assert_eq!(notify(port, Some(&auth)), "202");
    wait_count(&listen, "The pass finished", 2, Duration::from_secs(90));
    wait_image(&project, &v1, Duration::from_secs(10));
    let state = || -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(data.path().join("state.json")).unwrap()).unwrap()
    };
    assert_eq!(
        state()["blocked"].as_object().map(serde_json::Map::len),
        Some(1),
        "the poke's pass blocked the failing digest"
    );
    // Poked again: the blocked digest is not tried again.
    let id_before = project.container("app")["Id"].clone();
    assert_eq!(notify(port, Some(&auth)), "202");
    wait_count(&listen, "The pass finished", 3, Duration::from_secs(60));
    let c = project.container("app");
    assert_eq!(c["Id"], id_before, "the blocked digest was not retried");
    assert_eq!(c["Image"], v1);
    drop(listen);

    // A new digest under a 24 h soak: the poke's pass only starts the clock.
    let port = free_port();
    let listen = start("24h", port);
    bed.push_image(Reg::Open, &repo, "stable", Variant::V3);
    assert_eq!(notify(port, Some(&auth)), "202");
    wait_count(&listen, "The pass finished", 2, Duration::from_secs(60));
    let c = project.container("app");
    assert_eq!(c["Id"], id_before, "an unsoaked digest was not rolled out");
    let v3 = bed.registry_digest(Reg::Open, &repo, "stable");
    let containers = state()["containers"].clone();
    let candidates: Vec<&serde_json::Value> = containers
        .as_object()
        .unwrap()
        .values()
        .filter_map(|c| c.get("candidate"))
        .collect();
    assert_eq!(candidates.len(), 1, "{containers:#}");
    assert_eq!(
        candidates[0]["digest"],
        v3.as_str(),
        "the soak clock runs for v3"
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn sigterm_mid_update_lets_the_pass_finish_then_exits_cleanly() {
    let bed = Bed::get();
    let repo = unique_name("stop");
    bed.push_image(Reg::Open, &repo, "stable", Variant::V1);
    let image = bed.registry(Reg::Open).image(&repo, "stable");
    let project = Project::up(bed, &YAML.replace("{image}", &image));
    let data = TempDir::new("stop-data");
    let secret = "e2e-secret-stop-0123456789abcdef0123";
    let port = free_port();
    let old_id = project.container("app")["Id"].clone();
    let env = [
        ("PP_SOAK", "0"),
        ("PP_HEALTH_STABLE", "1s"),
        // The tag has moved and compose is about to recreate the container.
        ("PULLPILOT_PAUSE_AT", "before-compose"),
        ("PULLPILOT_PAUSE_SECS", "4"),
    ];
    let mut listen = receiver_listen(&project, data.path(), port, secret, &env);
    bed.push_image(Reg::Open, &repo, "stable", Variant::V2);
    let auth = format!("Authorization: Bearer {secret}");
    assert_eq!(notify(port, "/notify", Some(&auth)), "202");
    listen.wait_for_stderr("pausing 4s at step before-compose", Duration::from_secs(60));
    listen.terminate();

    let run = listen.wait_within(Duration::from_secs(120));
    assert_eq!(run.code, 0, "SIGTERM is a clean stop:\n{}", run.stderr);
    assert_eq!(
        count_in(&run.stderr, "The pass finished"),
        2,
        "the pass in progress ran to its end:\n{}",
        run.stderr
    );
    let c = project.container("app");
    assert_eq!(
        c["Image"],
        image_id(bed, Variant::V2),
        "the update completed"
    );
    assert_eq!(c["State"]["Running"], true);
    assert_ne!(c["Id"], old_id, "the old container is gone");
    let state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(data.path().join("state.json")).unwrap()).unwrap();
    assert!(state.get("journal").is_none(), "journal left: {state:#}");
}

fn count_in(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}
