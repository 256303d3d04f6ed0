//! Tests of the facade against the fake engine: what goes over the socket and what comes back.
//! No Docker needed.

use std::os::unix::net::UnixListener;
use std::time::Duration;

use super::fake_engine::{FakeEngine, Reply, Seen, unique_socket_path, version_body};
use super::{DaemonAddress, Docker, DockerError, ImageRemoval, Limits};

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const IMAGE: &str = include_str!("testdata/image_app.json");

fn connect(engine: &FakeEngine) -> Docker {
    let target = DaemonAddress::parse(&engine.host(), false).expect("target");
    Docker::open(&target, None, Limits::DEFAULT).expect("connects to the fake engine")
}

fn not_found(what: &str) -> Reply {
    Reply::json(404, &format!(r#"{{"message":"No such {what}"}}"#))
}

/// Everything but the version handshake.
fn calls(engine: &FakeEngine) -> Vec<Seen> {
    engine
        .seen()
        .into_iter()
        .filter(|s| s.target != "/version")
        .collect()
}

#[test]
fn every_request_carries_the_negotiated_version() {
    let engine = FakeEngine::start(|seen| {
        if seen.target.contains("/containers/json") {
            Reply::json(200, "[]")
        } else {
            Reply::json(0, "")
        }
    });
    let docker = connect(&engine);
    assert_eq!(docker.api_version(), "1.41");
    assert!(
        docker
            .list_containers(Some("shop"))
            .expect("list")
            .is_empty()
    );
    let calls = calls(&engine);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "GET");
    // all=true and the compose project filter, URL-encoded JSON.
    assert_eq!(
        calls[0].target,
        "/v1.41/containers/json?all=true&size=false&filters=%7B%22label%22%3A%5B%22com.docker.\
         compose.project%3Dshop%22%5D%7D"
    );
}

#[test]
fn newer_engines_get_their_own_version_and_pins_win() {
    let engine = FakeEngine::start(|seen| {
        if seen.target == "/version" {
            Reply::json(200, &version_body("1.51"))
        } else {
            Reply::json(0, "")
        }
    });
    assert_eq!(connect(&engine).api_version(), "1.51");
    let target = DaemonAddress::parse(&engine.host(), false).expect("target");
    let pinned = Docker::open(&target, Some("1.44"), Limits::DEFAULT).expect("pinned");
    assert_eq!(pinned.api_version(), "1.44");
    let bad = Docker::open(&target, Some("latest"), Limits::DEFAULT).expect_err("bad pin");
    assert!(bad.is_config());
    let too_new = Docker::open(&target, Some("1.52"), Limits::DEFAULT).expect_err("too new");
    assert!(too_new.is_config());
    assert!(
        too_new.to_string().starts_with(&format!(
            "DOCKER_API_VERSION=1.52 is not served by Docker at {} (it speaks API 1.24 to 1.51)",
            engine.host()
        )),
        "{too_new}"
    );
}

#[test]
fn missing_socket_is_unreachable() {
    let path = unique_socket_path();
    let target = DaemonAddress::Unix(path.display().to_string());
    let err = Docker::open(&target, None, Limits::DEFAULT).expect_err("no socket");
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn socket_without_a_daemon_is_connection_refused() {
    let path = unique_socket_path();
    drop(UnixListener::bind(&path).expect("bind"));
    let target = DaemonAddress::Unix(path.display().to_string());
    let err = Docker::open(&target, None, Limits::DEFAULT).expect_err("refused");
    let _ = std::fs::remove_file(&path);
    assert!(err.is_unreachable(), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot reach Docker at unix://{}: connection refused; start the Docker daemon \
             (`systemctl start docker`) or point DOCKER_HOST at its socket",
            path.display()
        )
    );
}

#[test]
fn silent_daemon_fails_fast_as_unreachable() {
    let path = unique_socket_path();
    let listener = UnixListener::bind(&path).expect("bind");
    let target = DaemonAddress::Unix(path.display().to_string());
    let limits = Limits {
        ping: Duration::from_millis(200),
        ..Limits::DEFAULT
    };
    let err = Docker::open(&target, None, limits).expect_err("silent");
    drop(listener);
    let _ = std::fs::remove_file(&path);
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("no answer within 200ms"), "{err}");
}

#[test]
fn missing_container_is_not_found_and_missing_image_is_none() {
    let engine = FakeEngine::start(|seen| match seen.target.as_str() {
        "/version" => Reply::json(0, ""),
        t if t.starts_with("/v1.41/containers/") => not_found("container: web-1"),
        _ => not_found("image: app:1"),
    });
    let docker = connect(&engine);
    let err = docker.inspect_container("web-1").expect_err("404");
    assert!(err.is_not_found());
    assert!(
        err.to_string().contains("no such container \"web-1\""),
        "{err}"
    );
    assert_eq!(docker.inspect_image("app:1").expect("404 is fine"), None);
}

#[test]
fn inspect_returns_facts_and_a_snapshot() {
    let engine = FakeEngine::start(|seen| {
        if seen.target == "/v1.41/containers/shop-web-1/json" {
            Reply::json(
                200,
                include_str!("testdata/inspect_compose_healthcheck.json"),
            )
        } else {
            Reply::json(0, "")
        }
    });
    let docker = connect(&engine);
    let facts = docker.inspect_container("shop-web-1").expect("inspect");
    assert_eq!(facts.name, "shop-web-1");
    let snapshot = docker.snapshot_container("shop-web-1").expect("snapshot");
    assert_eq!(snapshot.facts(), facts);
}

fn pull_engine(stream: &'static str, image_present: bool) -> FakeEngine {
    FakeEngine::start(move |seen| {
        if seen.target.starts_with("/v1.41/images/create?") {
            Reply::json(200, stream)
        } else if seen.target.contains("/images/") && seen.target.ends_with("/json") {
            if image_present {
                Reply::json(200, IMAGE)
            } else {
                not_found("image")
            }
        } else {
            Reply::json(0, "")
        }
    })
}

const GOOD_STREAM: &str = concat!(
    r#"{"status":"Pulling from pptb/app","id":"sha256:1111"}"#,
    "\n",
    r#"{"status":"Digest: sha256:1111111111111111111111111111111111111111111111111111111111111111"}"#,
    "\n"
);

#[test]
fn pull_sends_digest_platform_and_auth_and_returns_the_image() {
    let engine = pull_engine(GOOD_STREAM, true);
    let docker = connect(&engine);
    let auth = "eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAifQ==";
    let facts = docker
        .pull_by_digest(
            "127.0.0.1:15001/pptb/app",
            DIGEST,
            Some("linux/arm64/v8"),
            Some(auth),
        )
        .expect("pull");
    assert_eq!(facts.repo_tags, ["127.0.0.1:15001/pptb/app:stable"]);
    let calls = calls(&engine);
    assert_eq!(calls.len(), 2, "{calls:?}");
    let pull = &calls[0];
    assert_eq!(pull.method, "POST");
    assert_eq!(
        pull.target,
        format!(
            "/v1.41/images/create?fromImage=127.0.0.1%3A15001%2Fpptb%2Fapp&tag=sha256%3A{}\
             &platform=linux%2Farm64%2Fv8",
            "1".repeat(64)
        )
    );
    assert_eq!(pull.header("x-registry-auth"), Some(auth));
    // The check afterwards asks for exactly that digest.
    assert_eq!(
        calls[1].target,
        format!("/v1.41/images/127.0.0.1:15001/pptb/app@{DIGEST}/json")
    );
    assert_eq!(calls[1].header("x-registry-auth"), None);
}

#[test]
fn pull_with_an_error_line_after_progress_fails() {
    const STREAM: &str = concat!(
        r#"{"status":"Pulling from pptb/app","id":"sha256:1111"}"#,
        "\n",
        r#"{"status":"Downloading","progressDetail":{"current":1,"total":2},"id":"3a4b"}"#,
        "\n",
        r#"{"errorDetail":{"message":"read tcp: connection reset by peer"},"error":"read tcp: connection reset by peer"}"#,
        "\n"
    );
    let engine = pull_engine(STREAM, true);
    let docker = connect(&engine);
    let err = docker
        .pull_by_digest("127.0.0.1:15001/pptb/app", DIGEST, None, None)
        .expect_err("error line");
    assert!(
        matches!(&err, DockerError::Pull { message, .. } if message == "read tcp: connection reset by peer"),
        "{err:?}"
    );
    assert!(calls(&engine)[0].header("x-registry-auth").is_none());
}

#[test]
fn pull_that_leaves_no_image_fails() {
    let engine = pull_engine(GOOD_STREAM, false);
    let docker = connect(&engine);
    let err = docker
        .pull_by_digest("127.0.0.1:15001/pptb/app", DIGEST, None, None)
        .expect_err("no image");
    assert!(err.to_string().contains("not in the image store"), "{err}");
}

#[test]
fn pull_refused_by_the_daemon_is_a_pull_error() {
    let engine = FakeEngine::start(|seen| {
        if seen.target.contains("/images/create") {
            Reply::json(
                404,
                r#"{"message":"manifest for 127.0.0.1:15001/pptb/app@sha256:1111 not found"}"#,
            )
        } else {
            Reply::json(0, "")
        }
    });
    let docker = connect(&engine);
    let err = docker
        .pull_by_digest("127.0.0.1:15001/pptb/app", DIGEST, None, None)
        .expect_err("refused");
    assert!(matches!(err, DockerError::Pull { .. }), "{err:?}");
    assert!(err.to_string().contains("not found (HTTP 404)"), "{err}");
}

#[test]
fn image_removal_outcomes() {
    let engine = FakeEngine::start(|seen| match seen.target.as_str() {
        "/version" => Reply::json(0, ""),
        t if t.starts_with("/v1.41/images/sha256:used") => Reply::json(
            409,
            r#"{"message":"conflict: unable to delete 9a1c1b7a4e2f (cannot be forced) - image is being used by running container 4f1e2d3c4b5a"}"#,
        ),
        t if t.starts_with("/v1.41/images/sha256:gone") => not_found("image"),
        _ => Reply::json(200, r#"[{"Untagged":"app:1"},{"Deleted":"sha256:old"}]"#),
    });
    let docker = connect(&engine);
    assert_eq!(
        docker.remove_image("sha256:old").expect("removed"),
        ImageRemoval::Removed
    );
    assert!(matches!(
        docker.remove_image("sha256:used").expect("kept"),
        ImageRemoval::InUse { message } if message.contains("being used")
    ));
    assert_eq!(
        docker.remove_image("sha256:gone").expect("gone"),
        ImageRemoval::NotFound
    );
    let targets: Vec<String> = calls(&engine).into_iter().map(|s| s.target).collect();
    assert_eq!(
        targets[0],
        "/v1.41/images/sha256:old?force=false&noprune=false"
    );
}

#[test]
fn container_operations_send_their_options() {
    let engine = FakeEngine::start(|seen| match seen.target.as_str() {
        "/version" => Reply::json(0, ""),
        t if t.contains("/rename") => Reply::json(
            409,
            r#"{"message":"Conflict. The container name \"/web-1_pp_old\" is already in use"}"#,
        ),
        _ => Reply::json(204, ""),
    });
    let docker = connect(&engine);
    docker.stop_container("web-1", Some(30)).expect("stop");
    docker.stop_container("web-1", None).expect("stop default");
    docker.start_container("web-1").expect("start");
    docker
        .remove_container("web-1", true, false)
        .expect("remove");
    let err = docker
        .rename_container("web-1", "web-1_pp_old")
        .expect_err("taken");
    assert!(err.is_conflict());
    assert!(
        err.to_string()
            .starts_with("renaming container \"web-1\" to \"web-1_pp_old\" on Docker at unix://"),
        "{err}"
    );
    let seen: Vec<(String, String)> = calls(&engine)
        .into_iter()
        .map(|s| (s.method, s.target))
        .collect();
    let expect = |m: &str, t: &str| (m.to_owned(), t.to_owned());
    assert_eq!(
        seen,
        [
            expect("POST", "/v1.41/containers/web-1/stop?t=30"),
            // bollard leaves an empty query; the daemon does not mind.
            expect("POST", "/v1.41/containers/web-1/stop?"),
            expect("POST", "/v1.41/containers/web-1/start"),
            expect(
                "DELETE",
                "/v1.41/containers/web-1?v=true&force=false&link=false"
            ),
            expect("POST", "/v1.41/containers/web-1/rename?name=web-1_pp_old"),
        ]
    );
}

#[test]
fn engine_info_combines_version_and_info() {
    let engine = FakeEngine::start(|seen| match seen.target.as_str() {
        "/version" | "/v1.51/version" => {
            Reply::json(200, include_str!("testdata/version_28_5.json"))
        }
        "/v1.51/info" => Reply::json(200, include_str!("testdata/info_containerd.json")),
        _ => not_found("thing"),
    });
    let docker = connect(&engine);
    let info = docker.engine_info().expect("info");
    assert!(info.containerd_image_store);
    assert_eq!(info.client_api_version, "1.51");
    assert_eq!(info.server_version, "28.5.1");
}

// ---------------------------------------------------------------- MAC addresses at recreate

const OLD_ID: &str = "4f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const NEW_ID: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const NEW_IMAGE: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// An engine of API `api` holding the old container (inspect `old`, raw) and creating the
/// replacement.
fn recreate_engine(api: &'static str, old: &'static str) -> FakeEngine {
    let mut new: serde_json::Value = serde_json::from_str(old).expect("fixture");
    new["Id"] = NEW_ID.into();
    new["Image"] = NEW_IMAGE.into();
    let new = new.to_string();
    FakeEngine::start(move |seen| {
        let path = seen.path();
        if path.ends_with("/version") {
            Reply::json(200, &version_body(api))
        } else if path.ends_with(&format!("/containers/{OLD_ID}/json")) {
            Reply::json(200, old)
        } else if path.ends_with(&format!("/containers/{NEW_ID}/json")) {
            Reply::json(200, &new)
        } else if path.ends_with("/containers/create") {
            Reply::json(201, &format!(r#"{{"Id":"{NEW_ID}","Warnings":[]}}"#))
        } else {
            Reply::json(204, "")
        }
    })
}

fn recreate(engine: &FakeEngine, old: &str) -> serde_json::Value {
    let docker = connect(engine);
    let snapshot = super::ContainerSnapshot::new(serde_json::from_str(old).expect("fixture"));
    let id = docker
        .create_replacement(
            &snapshot,
            &super::ImageDefaults::default(),
            NEW_IMAGE,
            "shop-web-1-pp-new",
            None,
            None,
        )
        .expect("created");
    assert_eq!(id, NEW_ID);
    let create = engine
        .seen()
        .into_iter()
        .find(|s| s.path().ends_with("/containers/create"))
        .expect("a create request");
    serde_json::from_slice(&create.body).expect("create body is JSON")
}

#[test]
fn engine_20_10_gets_the_configured_mac_container_wide() {
    let old = include_str!("testdata/inspect_mac_api_1_41.json");
    let engine = recreate_engine("1.41", old);
    let body = recreate(&engine, old);
    assert_eq!(body["MacAddress"], "02:42:ac:14:00:99", "{body:#}");
    assert_eq!(body["Image"], "127.0.0.1:15001/pptb/app:stable");
    assert!(
        body["NetworkingConfig"]["EndpointsConfig"]["shop_default"]
            .get("MacAddress")
            .is_none()
    );
    assert!(
        engine
            .seen()
            .iter()
            .any(|s| s.target == format!("/v1.41/containers/{OLD_ID}/json")),
        "the raw inspect is read at the negotiated version"
    );
}

#[test]
fn newer_engines_get_the_configured_mac_on_the_main_endpoint() {
    let old = include_str!("testdata/inspect_mac_api_1_51.json");
    for (api, read_at) in [("1.51", "1.51"), ("1.52", "1.51")] {
        let engine = recreate_engine(api, old);
        let body = recreate(&engine, old);
        assert!(body.get("MacAddress").is_none(), "{api}: {body:#}");
        let endpoints = &body["NetworkingConfig"]["EndpointsConfig"];
        assert_eq!(endpoints["shop_default"]["MacAddress"], "02:42:ac:14:00:99");
        assert!(
            endpoints["backend"].get("MacAddress").is_none(),
            "{api}: the generated MAC of another network is not pinned"
        );
        let targets: Vec<String> = engine.seen().into_iter().map(|s| s.target).collect();
        assert!(
            targets.contains(&format!("/v{read_at}/containers/{OLD_ID}/json")),
            "{api}: Config.MacAddress is read where the engine still shows it: {targets:#?}"
        );
    }
}

#[test]
fn an_engine_without_api_1_51_still_recreates_without_a_mac() {
    let old = include_str!("testdata/inspect_mac_api_1_51.json");
    let mut new: serde_json::Value = serde_json::from_str(old).expect("fixture");
    new["Id"] = NEW_ID.into();
    new["Image"] = NEW_IMAGE.into();
    let new = new.to_string();
    let engine = FakeEngine::start(move |seen| {
        let path = seen.path();
        if path.ends_with("/version") {
            Reply::json(200, &version_body("1.53"))
        } else if path.starts_with("/v1.51/") {
            Reply::json(
                400,
                r#"{"message":"client version 1.51 is too old. Minimum supported API version is 1.52"}"#,
            )
        } else if path.ends_with(&format!("/containers/{NEW_ID}/json")) {
            Reply::json(200, &new)
        } else if path.ends_with("/containers/create") {
            Reply::json(201, &format!(r#"{{"Id":"{NEW_ID}","Warnings":[]}}"#))
        } else {
            Reply::json(204, "")
        }
    });
    let body = recreate(&engine, old);
    assert!(!body.to_string().contains("MacAddress"), "{body:#}");
}

#[test]
fn a_generated_mac_is_not_sent() {
    let old = include_str!("testdata/inspect_mac_generated.json");
    let engine = recreate_engine("1.51", old);
    let body = recreate(&engine, old);
    assert!(!body.to_string().contains("MacAddress"), "{body:#}");
}

// ---------------------------------------------------------------- injected files

#[test]
fn injected_files_are_compose_default_targets_outside_mounts() {
    let mut old: serde_json::Value =
        serde_json::from_str(include_str!("testdata/inspect_compose_healthcheck.json"))
            .expect("fixture");
    old["Mounts"]
        .as_array_mut()
        .expect("mounts")
        .push(serde_json::json!({
            "Type": "bind", "Source": "/srv/shop/secrets/tls.key",
            "Destination": "/run/secrets/tls_key", "Mode": "", "RW": false,
            "Propagation": "rprivate"
        }));
    let old = old.to_string();
    let engine = FakeEngine::start(move |seen| match seen.path() {
        "/version" => Reply::json(0, ""),
        p if p.ends_with("/changes") => Reply::json(
            200,
            r#"[{"Path":"/run","Kind":0},{"Path":"/run/secrets","Kind":1},
                {"Path":"/run/secrets/db_password","Kind":1},
                {"Path":"/run/secrets/tls_key","Kind":1},
                {"Path":"/app_config","Kind":1},{"Path":"/data","Kind":1},
                {"Path":"/tmp","Kind":0},{"Path":"/tmp/healthy","Kind":1},
                {"Path":"/etc/passwd","Kind":0},{"Path":"/gone","Kind":2}]"#,
        ),
        p if p.ends_with("/json") => Reply::json(200, &old),
        _ => not_found("thing"),
    });
    let docker = connect(&engine);
    assert_eq!(
        docker.injected_files("old").expect("listed"),
        ["/app_config", "/run/secrets/db_password"],
        "not the bind-mounted secret, the volume, or what the app wrote elsewhere"
    );
}

#[test]
fn copy_paths_moves_files_under_their_full_path_and_skips_the_rest() {
    let engine = FakeEngine::start(|seen| {
        let (path, query) = seen.target.split_once('?').unwrap_or((&seen.target, ""));
        match (seen.method.as_str(), path, query) {
            (_, "/version", _) => Reply::json(0, ""),
            ("GET", "/v1.41/containers/old/archive", "path=%2Frun%2Fsecrets%2Fdb_password") => {
                Reply::bytes(
                    200,
                    super::archive::one_file("db_password", b"s3cret", 0o440),
                )
            }
            ("GET", "/v1.41/containers/old/archive", "path=%2Fapp_config") => {
                Reply::bytes(200, super::archive::one_file("app_config", b"x=1", 0o444))
            }
            ("GET", "/v1.41/containers/old/archive", "path=%2Frun%2Fsecrets%2Fdir") => {
                let mut tar = super::archive::one_file("dir/", b"", 0o755);
                tar[156] = b'5';
                Reply::bytes(200, tar)
            }
            ("PUT", "/v1.41/containers/new/archive", _) => Reply::json(200, ""),
            _ => not_found("file"),
        }
    });
    let docker = connect(&engine);
    let paths: Vec<String> = [
        "/run/secrets/db_password",
        "/run/secrets/missing",
        "/run/secrets/dir",
        "/app_config",
    ]
    .map(str::to_owned)
    .to_vec();
    let copied = docker.copy_paths("old", "new", &paths).expect("copied");
    assert_eq!(copied, ["/run/secrets/db_password", "/app_config"]);
    let puts: Vec<Seen> = engine
        .seen()
        .into_iter()
        .filter(|s| s.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[0].target, "/v1.41/containers/new/archive?path=%2F");
    assert_eq!(
        super::archive::entries(&puts[0].body),
        [(
            "run/secrets/db_password".to_owned(),
            0o440,
            b"s3cret".to_vec()
        )]
    );
    assert_eq!(super::archive::entries(&puts[1].body)[0].0, "app_config");
}

#[test]
fn a_refused_upload_is_an_error_naming_the_file() {
    let engine = FakeEngine::start(|seen| match (seen.method.as_str(), seen.path()) {
        (_, "/version") => Reply::json(0, ""),
        ("GET", _) => Reply::bytes(200, super::archive::one_file("token", b"t", 0o400)),
        _ => Reply::json(500, r#"{"message":"container rootfs is marked read-only"}"#),
    });
    let docker = connect(&engine);
    let err = docker
        .copy_paths("old", "new", &["/run/secrets/token".to_owned()])
        .expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("/run/secrets/token"), "{text}");
    assert!(text.contains("read-only"), "{text}");
}
