//! Tests of [`RegistryClient`] against scripted fake registries on loopback (plain HTTP, no
//! network). Each test counts the requests the registry saw.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

use super::credentials::tests::TempDir;
use super::testserver::{FakeServer, Recorded, Reply};
use super::{CheckError, RegistryClient, RegistryOptions, RepoTag};
use crate::reference::Digest;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn digest_of(body: &[u8]) -> String {
    format!("sha256:{}", super::sha256_hex(body))
}

fn tag(host: &str, repository: &str, tag: &str) -> RepoTag {
    RepoTag {
        host: host.to_owned(),
        repository: repository.to_owned(),
        tag: tag.to_owned(),
    }
}

fn basic(user_pass: &str) -> String {
    format!("Basic {}", STANDARD.encode(user_pass))
}

fn options(dir: &TempDir) -> RegistryOptions {
    RegistryOptions {
        docker_config_dir: Some(dir.path().to_path_buf()),
        credential_helper_dir: Some(dir.path().to_path_buf()),
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(5),
        ..RegistryOptions::default()
    }
}

/// A client with an empty (missing) Docker config, and its temp dir.
fn anonymous_client() -> (TempDir, RegistryClient) {
    let dir = TempDir::new("client");
    let client = RegistryClient::new(options(&dir)).unwrap();
    (dir, client)
}

/// A client whose config.json holds `auths` for `host`.
fn client_with_auth(host: &str, entry: &serde_json::Value) -> (TempDir, RegistryClient) {
    let dir = TempDir::new("client");
    dir.write(
        "config.json",
        &serde_json::json!({"auths": {host: entry}}).to_string(),
    );
    let client = RegistryClient::new(options(&dir)).unwrap();
    (dir, client)
}

#[derive(Clone)]
enum Auth {
    Open,
    Basic(&'static str),
    Bearer {
        creds: Option<&'static str>,
        first_scope_only: bool,
    },
}

#[derive(Clone, Copy, PartialEq)]
enum DigestHeader {
    Sent,
    Missing,
    Malformed,
}

/// A registry serving `manifests` ("repo:tag" → body) behind `auth`. Tokens name the
/// repositories they cover; the ping's challenge carries a placeholder scope, as GHCR's does.
fn registry(auth: Auth, manifests: &[(&str, &[u8])], digest: DigestHeader) -> FakeServer {
    let manifests: BTreeMap<String, Vec<u8>> = manifests
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
        .collect();
    FakeServer::start(move |req| {
        let realm = format!("http://{}/token", req.header("host").unwrap_or_default());
        let challenge = match &auth {
            Auth::Open => String::new(),
            Auth::Basic(_) => r#"Basic realm="fake registry""#.to_owned(),
            Auth::Bearer { .. } => format!(
                r#"Bearer realm="{realm}",service="fake-registry",scope="repository:user/image:pull""#
            ),
        };
        if req.path() == "/token" {
            return token_reply(&auth, req);
        }
        if req.path() == "/v2/" {
            return match auth {
                Auth::Open => Reply::new(200),
                _ => Reply::new(401).header("WWW-Authenticate", &challenge),
            };
        }
        let Some((repo, reference)) = req
            .path()
            .strip_prefix("/v2/")
            .and_then(|p| p.split_once("/manifests/"))
        else {
            return Reply::new(404);
        };
        let authorised = match &auth {
            Auth::Open => true,
            Auth::Basic(user_pass) => {
                req.header("authorization") == Some(basic(user_pass).as_str())
            }
            Auth::Bearer { .. } => req
                .header("authorization")
                .and_then(|h| h.strip_prefix("Bearer secret-token:"))
                .is_some_and(|repos| repos.split(',').any(|r| r == repo)),
        };
        if !authorised {
            return Reply::new(401).header(
                "WWW-Authenticate",
                &format!("{challenge},error=\"insufficient_scope\""),
            );
        }
        let Some(body) = manifests.get(&format!("{repo}:{reference}")) else {
            return Reply::new(404);
        };
        let mut reply = Reply::new(200)
            .header("Content-Type", OCI_INDEX)
            .body(body.clone());
        match digest {
            DigestHeader::Sent => reply = reply.header("Docker-Content-Digest", &digest_of(body)),
            DigestHeader::Malformed => reply = reply.header("Docker-Content-Digest", "sha256:XYZ"),
            DigestHeader::Missing => {}
        }
        reply
    })
}

fn token_reply(auth: &Auth, req: &Recorded) -> Reply {
    let Auth::Bearer {
        creds,
        first_scope_only,
    } = auth
    else {
        return Reply::new(404);
    };
    if let Some(user_pass) = creds {
        let user = user_pass.split(':').next().unwrap();
        if req.header("authorization") != Some(basic(user_pass).as_str())
            || req.params("account", false) != [user]
        {
            return Reply::new(401).body(r#"{"details":"incorrect username or password"}"#);
        }
    }
    let mut scopes = req.params("scope", false);
    if *first_scope_only {
        scopes.truncate(1);
    }
    let repos: Vec<&str> = scopes
        .iter()
        .filter_map(|s| s.strip_prefix("repository:")?.strip_suffix(":pull"))
        .collect();
    let token = format!("secret-token:{}", repos.join(","));
    Reply::new(200).body(serde_json::json!({"token": token, "expires_in": 300}).to_string())
}

/// Captures every log line of the test process, to check that no secret is ever logged.
fn captured_logs() -> Arc<Mutex<Vec<String>>> {
    struct Capture(Arc<Mutex<Vec<String>>>);
    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            self.0.lock().unwrap().push(record.args().to_string());
        }
        fn flush(&self) {}
    }
    static LINES: std::sync::OnceLock<Arc<Mutex<Vec<String>>>> = std::sync::OnceLock::new();
    static INIT: Once = Once::new();
    let lines = LINES.get_or_init(Arc::default);
    INIT.call_once(|| {
        if log::set_boxed_logger(Box::new(Capture(Arc::clone(lines)))).is_ok() {
            log::set_max_level(log::LevelFilter::Debug);
        }
    });
    Arc::clone(lines)
}

#[test]
fn open_registry_answers_with_one_head_and_the_full_accept_list() {
    let server = registry(
        Auth::Open,
        &[("team/app:v1", b"{\"m\":1}")],
        DigestHeader::Sent,
    );
    let (_dir, client) = anonymous_client();
    let item = tag(&server.host(), "team/app", "v1");
    let remote = client.check(&item).unwrap();
    assert_eq!(remote.digest.as_str(), digest_of(b"{\"m\":1}"));
    assert_eq!(remote.media_type.as_deref(), Some(OCI_INDEX));
    assert!(!remote.from_get_fallback);
    assert_eq!(remote.rate_limit, None);

    assert_eq!(
        server.count("GET", "/v2/"),
        0,
        "no ping: the HEAD itself answered"
    );
    assert_eq!(server.requests().len(), 1, "one request in all");
    assert_eq!(server.count("HEAD", "/v2/"), 1);
    let head = server
        .requests()
        .into_iter()
        .find(|r| r.method == "HEAD")
        .unwrap();
    assert_eq!(head.target, "/v2/team/app/manifests/v1");
    assert_eq!(head.header_count("accept"), 1);
    let accept = head.header("accept").unwrap();
    for media_type in [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ] {
        assert!(accept.contains(media_type), "{accept}");
    }
    assert_eq!(head.header("authorization"), None);
}

#[test]
fn bearer_flow_uses_one_token_for_all_repositories_and_caches_it() {
    let manifests: [(&str, &[u8]); 3] = [("a/one:1", b"1"), ("a/two:2", b"2"), ("b/three:3", b"3")];
    let server = registry(
        Auth::Bearer {
            creds: None,
            first_scope_only: false,
        },
        &manifests,
        DigestHeader::Sent,
    );
    let (_dir, client) = anonymous_client();
    let host = server.host();
    let items = vec![
        tag(&host, "a/one", "1"),
        tag(&host, "a/two", "2"),
        tag(&host, "b/three", "3"),
        tag(&host, "a/one", "1"), // duplicate: checked once
    ];
    let results = client.check_all(&items);
    assert_eq!(results.len(), 3);
    for (item, result) in &results {
        let body = manifests
            .iter()
            .find(|(k, _)| *k == format!("{}:{}", item.repository, item.tag));
        assert_eq!(
            result.as_ref().unwrap().digest.as_str(),
            digest_of(body.unwrap().1)
        );
    }
    assert_eq!(
        server.count("GET", "/v2/"),
        0,
        "no ping: the first HEAD's 401 challenged"
    );
    assert_eq!(
        server.count("GET", "/token"),
        1,
        "one token for every repository"
    );
    assert_eq!(
        server.count("HEAD", "/v2/"),
        4,
        "one HEAD per unique tag, and the first one's challenge"
    );
    // The challenge, then the one token, then every HEAD with it: no request raced the token.
    let requests = server.requests();
    assert_eq!(requests[0].method, "HEAD");
    assert_eq!(requests[0].header("authorization"), None);
    assert_eq!(requests[1].path(), "/token");
    assert!(requests[2..].iter().all(|r| {
        r.method == "HEAD"
            && r.header("authorization")
                .is_some_and(|h| h.starts_with("Bearer secret-token:"))
    }));
    let token_req = server
        .requests()
        .into_iter()
        .find(|r| r.path() == "/token")
        .unwrap();
    assert_eq!(token_req.params("service", false), ["fake-registry"]);
    let mut scopes = token_req.params("scope", false);
    scopes.sort();
    assert_eq!(
        scopes,
        [
            "repository:a/one:pull",
            "repository:a/two:pull",
            "repository:b/three:pull"
        ]
    );
    assert_eq!(token_req.header("authorization"), None, "anonymous token");

    // Within the token's lifetime: no ping, no token, one HEAD per tag and no challenge.
    let again = client.check_all(&items[..2]);
    assert!(again.values().all(Result::is_ok));
    assert_eq!(server.count("GET", "/v2/"), 0);
    assert_eq!(server.count("GET", "/token"), 1);
    assert_eq!(server.count("HEAD", "/v2/"), 6);
}

#[test]
fn bearer_with_credentials_sends_basic_and_account_to_the_realm_only() {
    let logs = captured_logs();
    let server = registry(
        Auth::Bearer {
            creds: Some("robot:pa55-secret"),
            first_scope_only: false,
        },
        &[("team/app:v1", b"x")],
        DigestHeader::Sent,
    );
    let host = server.host();
    let (_dir, client) = client_with_auth(
        &host,
        &serde_json::json!({"auth": STANDARD.encode("robot:pa55-secret")}),
    );
    client.check(&tag(&host, "team/app", "v1")).unwrap();
    let requests = server.requests();
    let token_req = requests.iter().find(|r| r.path() == "/token").unwrap();
    assert_eq!(
        token_req.header("authorization"),
        Some(basic("robot:pa55-secret").as_str())
    );
    assert_eq!(token_req.params("account", false), ["robot"]);
    for r in requests.iter().filter(|r| r.path() != "/token") {
        let auth = r.header("authorization").unwrap_or_default();
        assert!(
            !auth.starts_with("Basic"),
            "Basic credentials sent to {}",
            r.target
        );
    }
    let heads: Vec<&Recorded> = requests.iter().filter(|r| r.method == "HEAD").collect();
    assert_eq!(heads.len(), 2, "the challenge, then the check");
    assert_eq!(heads[0].header("authorization"), None);
    assert_eq!(
        heads[1].header("authorization"),
        Some("Bearer secret-token:team/app")
    );
    let logs = logs.lock().unwrap().join("\n");
    assert!(
        logs.contains(&format!("GET http://{host}/token -> 200")),
        "requests are logged"
    );
    for secret in [
        "pa55-secret",
        "secret-token",
        &STANDARD.encode("robot:pa55-secret"),
    ] {
        assert!(!logs.contains(secret), "{secret} was logged");
    }
}

#[test]
fn a_multi_scope_token_that_is_not_enough_falls_back_to_one_token_per_repository() {
    let server = registry(
        Auth::Bearer {
            creds: None,
            first_scope_only: true,
        },
        &[("a/one:1", b"1"), ("a/two:2", b"2"), ("a/three:3", b"3")],
        DigestHeader::Sent,
    );
    let (_dir, client) = anonymous_client();
    let host = server.host();
    let items = [
        tag(&host, "a/one", "1"),
        tag(&host, "a/two", "2"),
        tag(&host, "a/three", "3"),
    ];
    let results = client.check_all(&items);
    assert!(results.values().all(Result::is_ok), "{results:?}");
    // One shared token (honoured for its first scope only), then one each for the other two;
    // the first HEAD is the challenge.
    assert_eq!(server.count("GET", "/token"), 3);
    assert_eq!(server.count("HEAD", "/v2/"), 6);
}

#[test]
fn basic_registry_gets_basic_auth_on_every_request_and_no_token() {
    let server = registry(
        Auth::Basic("user:pw"),
        &[("app:v1", b"a"), ("app:v2", b"b")],
        DigestHeader::Sent,
    );
    let host = server.host();
    let (_dir, client) = client_with_auth(
        &host,
        &serde_json::json!({"username": "user", "password": "pw"}),
    );
    let results = client.check_all(&[tag(&host, "app", "v1"), tag(&host, "app", "v2")]);
    assert!(results.values().all(Result::is_ok), "{results:?}");
    assert_eq!(server.count("GET", "/token"), 0);
    assert_eq!(
        server.count("GET", "/v2/"),
        0,
        "the first HEAD's 401 challenged"
    );
    let heads: Vec<Recorded> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "HEAD")
        .collect();
    assert_eq!(heads.len(), 3, "the challenge, then one HEAD per tag");
    assert_eq!(
        heads[0].header("authorization"),
        None,
        "no credentials unasked"
    );
    assert!(
        heads[1..]
            .iter()
            .all(|r| r.header("authorization") == Some(basic("user:pw").as_str()))
    );
}

#[test]
fn missing_digest_header_falls_back_to_hashing_a_get() {
    let body = br#"{"schemaVersion":2,"manifests":[]}"#;
    let server = registry(Auth::Open, &[("app:v1", body)], DigestHeader::Missing);
    let (_dir, client) = anonymous_client();
    let remote = client.check(&tag(&server.host(), "app", "v1")).unwrap();
    assert_eq!(remote.digest.as_str(), digest_of(body));
    assert!(remote.from_get_fallback);
    assert_eq!(remote.media_type.as_deref(), Some(OCI_INDEX));
    let get = server
        .requests()
        .into_iter()
        .find(|r| r.method == "GET" && r.path() != "/v2/")
        .unwrap();
    assert_eq!(get.target, "/v2/app/manifests/v1");
    assert!(
        get.header("accept")
            .unwrap()
            .contains("manifest.list.v2+json")
    );
}

#[test]
fn malformed_digest_header_is_a_bad_response() {
    let server = registry(Auth::Open, &[("app:v1", b"x")], DigestHeader::Malformed);
    let (_dir, client) = anonymous_client();
    let err = client.check(&tag(&server.host(), "app", "v1")).unwrap_err();
    assert_eq!(err.kind(), "bad-response", "{err}");
    assert!(err.to_string().contains("Docker-Content-Digest"), "{err}");
}

/// A registry whose manifest endpoint answers from `script` by HEAD number (then 200).
fn scripted(script: Vec<Reply>) -> (FakeServer, String) {
    let body = b"manifest".to_vec();
    let digest = digest_of(&body);
    let script = Mutex::new(script.into_iter());
    let server = FakeServer::start(move |req| {
        if req.path() == "/v2/" {
            return Reply::new(200);
        }
        if let Some(reply) = script.lock().unwrap().next() {
            return reply;
        }
        Reply::new(200)
            .header("Docker-Content-Digest", &digest)
            .body(body.clone())
    });
    let digest = digest_of(b"manifest");
    (server, digest)
}

#[test]
fn server_errors_are_retried_with_backoff() {
    let (server, digest) = scripted(vec![Reply::new(500), Reply::new(503)]);
    let (_dir, client) = anonymous_client();
    let remote = client.check(&tag(&server.host(), "app", "v1")).unwrap();
    assert_eq!(remote.digest.as_str(), digest);
    assert_eq!(server.count("HEAD", "/v2/"), 3);
}

#[test]
fn server_errors_beyond_the_retries_are_a_bad_response() {
    let (server, _) = scripted((0..3).map(|_| Reply::new(502)).collect());
    let (_dir, client) = anonymous_client();
    let err = client.check(&tag(&server.host(), "app", "v1")).unwrap_err();
    assert_eq!(err.kind(), "bad-response");
    assert!(err.to_string().contains("HTTP 502"), "{err}");
    assert_eq!(server.count("HEAD", "/v2/"), 3);
}

#[test]
fn retry_after_is_honoured_and_the_host_is_serialised() {
    let (server, digest) = scripted(vec![Reply::new(429).header("Retry-After", "1")]);
    let (_dir, client) = anonymous_client();
    let started = Instant::now();
    let remote = client.check(&tag(&server.host(), "app", "v1")).unwrap();
    assert_eq!(remote.digest.as_str(), digest);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert!(client.host_is_serial(&server.host()));
}

#[test]
fn repeated_429_is_rate_limited_and_long_waits_are_not_honoured() {
    let (server, _) = scripted(
        (0..3)
            .map(|_| Reply::new(429).header("Retry-After", "0"))
            .collect(),
    );
    let (_dir, client) = anonymous_client();
    let err = client.check(&tag(&server.host(), "app", "v1")).unwrap_err();
    assert_eq!(err.kind(), "rate-limited");
    assert_eq!(server.count("HEAD", "/v2/"), 3);

    let (server, _) = scripted(vec![Reply::new(429).header("Retry-After", "3600")]);
    let started = Instant::now();
    let err = client.check(&tag(&server.host(), "app", "v1")).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(err, CheckError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3600))
    );
    assert!(err.to_string().contains("1h"), "{err}");
}

#[test]
fn missing_tag_is_not_found() {
    let server = registry(Auth::Open, &[("app:v1", b"x")], DigestHeader::Sent);
    let (_dir, client) = anonymous_client();
    let err = client.check(&tag(&server.host(), "app", "v9")).unwrap_err();
    assert_eq!(err.kind(), "not-found");
    assert!(
        err.to_string()
            .starts_with(&format!("tag v9 not found in {}/app", server.host()))
    );
}

#[test]
fn refused_credentials_are_unauthorized_and_never_retried_in_a_loop() {
    let server = registry(
        Auth::Bearer {
            creds: Some("robot:right"),
            first_scope_only: false,
        },
        &[("a:1", b"1"), ("b:1", b"1"), ("c:1", b"1")],
        DigestHeader::Sent,
    );
    let host = server.host();
    let (dir, client) = client_with_auth(
        &host,
        &serde_json::json!({"auth": STANDARD.encode("robot:wrong")}),
    );
    let items = [
        tag(&host, "a", "1"),
        tag(&host, "b", "1"),
        tag(&host, "c", "1"),
    ];
    let results = client.check_all(&items);
    for result in results.values() {
        let err = result.as_ref().unwrap_err();
        assert_eq!(err.kind(), "unauthorized");
        let text = err.to_string();
        assert!(text.contains("refused the credentials"), "{text}");
        assert!(text.contains(&format!(
            "the entry for {host} in {}",
            dir.path().join("config.json").display()
        )));
        assert!(text.contains(&format!("docker login {host}")), "{text}");
        assert!(!text.contains("wrong"), "{text}");
    }
    assert_eq!(
        server.count("GET", "/token"),
        1,
        "one refused login, not one per tag"
    );
    assert_eq!(server.count("HEAD", "/v2/"), 1, "only the challenge");
    // A later check does not try the refused credentials again.
    assert!(client.check(&items[0]).is_err());
    assert_eq!(server.count("GET", "/token"), 1);
}

#[test]
fn refused_basic_credentials_stop_after_the_first_tag() {
    let server = registry(
        Auth::Basic("user:right"),
        &[("a:1", b"1"), ("b:1", b"1")],
        DigestHeader::Sent,
    );
    let host = server.host();
    let (dir, _) = client_with_auth(
        &host,
        &serde_json::json!({"username": "user", "password": "wrong"}),
    );
    let client = RegistryClient::new(RegistryOptions {
        per_host_concurrency: 1,
        ..options(&dir)
    })
    .unwrap();
    let results = client.check_all(&[tag(&host, "a", "1"), tag(&host, "b", "1")]);
    assert!(
        results
            .values()
            .all(|r| r.as_ref().unwrap_err().kind() == "unauthorized")
    );
    // The challenge, then one refused attempt; `b` is not tried.
    assert_eq!(server.count("HEAD", "/v2/"), 2);
}

#[test]
fn private_repository_without_credentials_says_how_to_log_in() {
    let server = registry(
        Auth::Basic("user:pw"),
        &[("app:v1", b"x")],
        DigestHeader::Sent,
    );
    let (dir, client) = anonymous_client();
    let err = client.check(&tag(&server.host(), "app", "v1")).unwrap_err();
    assert_eq!(err.kind(), "unauthorized");
    let text = err.to_string();
    assert!(text.contains("none are configured"), "{text}");
    assert!(
        text.contains(&dir.path().join("config.json").display().to_string()),
        "{text}"
    );
}

#[test]
fn forbidden_is_denied() {
    let (server, _) = scripted(vec![Reply::new(403)]);
    let (_dir, client) = anonymous_client();
    let err = client.check(&tag(&server.host(), "app", "v1")).unwrap_err();
    assert_eq!(err.kind(), "denied");
}

#[test]
fn closed_port_is_unreachable_quickly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_dir, client) = anonymous_client();
    let started = Instant::now();
    let item = tag(&format!("127.0.0.1:{port}"), "app", "v1");
    let err = client.check(&item).unwrap_err();
    assert_eq!(err.kind(), "unreachable", "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains("app:v1"),
        "{text}"
    );
}

#[test]
fn per_host_concurrency_never_exceeds_the_cap() {
    let digest = digest_of(b"x");
    let server = FakeServer::start(move |req| {
        if req.path() == "/v2/" {
            return Reply::new(200);
        }
        Reply::new(200)
            .header("Docker-Content-Digest", &digest)
            .delay(Duration::from_millis(40))
    });
    let dir = TempDir::new("client");
    let client = RegistryClient::new(RegistryOptions {
        per_host_concurrency: 3,
        ..options(&dir)
    })
    .unwrap();
    let items: Vec<RepoTag> = (0..12)
        .map(|i| tag(&server.host(), "app", &format!("v{i}")))
        .collect();
    let results = client.check_all(&items);
    assert_eq!(results.len(), 12);
    assert!(results.values().all(Result::is_ok));
    assert!(
        server.peak_in_flight() <= 3,
        "peak {}",
        server.peak_in_flight()
    );
    assert!(server.peak_in_flight() >= 2, "checks ran in parallel");
}

#[test]
fn redirects_never_carry_authorization_to_another_host() {
    let digest = digest_of(b"x");
    let other = FakeServer::start({
        let digest = digest.clone();
        move |_| Reply::new(200).header("Docker-Content-Digest", &digest)
    });
    let target = format!("http://{}/elsewhere", other.host());
    let hops = AtomicUsize::new(0);
    let server = FakeServer::start(move |req| match req.path() {
        _ if req.header("authorization").is_none() => {
            Reply::new(401).header("WWW-Authenticate", r#"Basic realm="r""#)
        }
        // First a same-origin hop, then off to another host.
        "/v2/app/manifests/v1" if hops.fetch_add(1, Ordering::SeqCst) == 0 => {
            Reply::new(307).header("Location", "/v2/app/manifests/moved")
        }
        _ => Reply::new(307).header("Location", &target),
    });
    let host = server.host();
    let (_dir, client) =
        client_with_auth(&host, &serde_json::json!({"auth": STANDARD.encode("u:p")}));
    let remote = client.check(&tag(&host, "app", "v1")).unwrap();
    assert_eq!(remote.digest.as_str(), digest);
    let moved = server
        .requests()
        .into_iter()
        .find(|r| r.path().ends_with("/moved"))
        .unwrap();
    assert_eq!(
        moved.header("authorization"),
        Some(basic("u:p").as_str()),
        "same origin keeps it"
    );
    let elsewhere = other.requests();
    assert_eq!(elsewhere.len(), 1);
    assert_eq!(elsewhere[0].method, "HEAD");
    assert_eq!(elsewhere[0].header("authorization"), None);
}

/// A bearer registry whose token service speaks `OAuth2` (or not: `oauth == false` → POST 404).
fn oauth_registry(oauth: bool) -> FakeServer {
    let digest = digest_of(b"x");
    FakeServer::start(move |req| {
        let realm = format!(
            "http://{}/oauth2/token?tenant=t1",
            req.header("host").unwrap()
        );
        match (req.method.as_str(), req.path()) {
            ("GET", "/v2/") => Reply::new(401).header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="svc""#),
            ),
            ("POST", "/oauth2/token") if !oauth => Reply::new(404),
            ("POST", "/oauth2/token") => {
                let ok = req.params("grant_type", true) == ["refresh_token"]
                    && req.params("refresh_token", true) == ["refresh-secret"]
                    && req.params("client_id", true) == ["pullpilot"]
                    && req.params("service", true) == ["svc"]
                    && req.params("scope", true) == ["repository:a:pull repository:b:pull"]
                    && req.params("tenant", false) == ["t1"];
                if ok {
                    Reply::new(200).body(r#"{"access_token":"access-secret","expires_in":300}"#)
                } else {
                    Reply::new(400)
                }
            }
            ("GET", "/oauth2/token") => {
                if req.header("authorization") == Some(basic("acr-user:refresh-secret").as_str()) {
                    Reply::new(200).body(r#"{"token":"access-secret"}"#)
                } else {
                    Reply::new(401)
                }
            }
            ("HEAD", _) if req.header("authorization") == Some("Bearer access-secret") => {
                Reply::new(200).header("Docker-Content-Digest", &digest)
            }
            _ => Reply::new(401),
        }
    })
}

#[test]
fn identity_tokens_use_the_oauth2_post_flow() {
    let server = oauth_registry(true);
    let host = server.host();
    let (_dir, client) = client_with_auth(
        &host,
        &serde_json::json!({"auth": STANDARD.encode("acr-user:"), "identitytoken": "refresh-secret"}),
    );
    let results = client.check_all(&[tag(&host, "a", "1"), tag(&host, "b", "1")]);
    assert!(results.values().all(Result::is_ok), "{results:?}");
    assert_eq!(server.count("POST", "/oauth2/token"), 1);
    assert_eq!(server.count("GET", "/oauth2/token"), 0);
}

#[test]
fn identity_tokens_fall_back_to_basic_get_when_oauth2_is_missing() {
    let server = oauth_registry(false);
    let host = server.host();
    let (_dir, client) = client_with_auth(
        &host,
        &serde_json::json!({"auth": STANDARD.encode("acr-user:"), "identitytoken": "refresh-secret"}),
    );
    client.check(&tag(&host, "a", "1")).unwrap();
    assert_eq!(server.count("POST", "/oauth2/token"), 1);
    assert_eq!(server.count("GET", "/oauth2/token"), 1);
}

#[test]
fn registry_tokens_are_sent_as_bearer_without_a_token_request() {
    let server = registry(
        Auth::Bearer {
            creds: None,
            first_scope_only: false,
        },
        &[("app:v1", b"x")],
        DigestHeader::Sent,
    );
    let host = server.host();
    let (_dir, client) = client_with_auth(
        &host,
        &serde_json::json!({"registrytoken": "secret-token:app"}),
    );
    client.check(&tag(&host, "app", "v1")).unwrap();
    assert_eq!(server.count("GET", "/token"), 0);
}

#[test]
fn manifest_challenge_is_adopted_when_the_host_was_open_so_far() {
    let digest = digest_of(b"x");
    let server = FakeServer::start(move |req| {
        let realm = format!("http://{}/token", req.header("host").unwrap());
        match req.path() {
            "/token" => Reply::new(200).body(r#"{"token":"secret-token:app"}"#),
            "/v2/open/manifests/v1" => Reply::new(200).header("Docker-Content-Digest", &digest),
            _ if req.header("authorization") == Some("Bearer secret-token:app") => {
                Reply::new(200).header("Docker-Content-Digest", &digest)
            }
            _ => Reply::new(401).header("WWW-Authenticate", &format!(r#"Bearer realm="{realm}""#)),
        }
    });
    let (_dir, client) = anonymous_client();
    client.check(&tag(&server.host(), "open", "v1")).unwrap();
    client.check(&tag(&server.host(), "app", "v1")).unwrap();
    assert_eq!(server.count("HEAD", "/v2/"), 3);
    assert_eq!(server.count("GET", "/token"), 1);
    assert_eq!(server.count("GET", "/v2/"), 0);
}

/// `n` tags `img-00:v1`, `img-01:v1`… on `server`, one repository each.
fn many(server: &FakeServer, n: usize) -> Vec<RepoTag> {
    (0..n)
        .map(|i| tag(&server.host(), &format!("img-{i:02}"), "v1"))
        .collect()
}

#[test]
fn open_registry_costs_one_head_per_image_and_nothing_else() {
    let digest = digest_of(b"x");
    let server = FakeServer::start(move |_| {
        Reply::new(200)
            .header("Docker-Content-Digest", &digest)
            .delay(Duration::from_millis(50))
    });
    let (_dir, client) = anonymous_client();
    let items = many(&server, 40);
    let results = client.check_all(&items);
    assert!(results.values().all(Result::is_ok), "{results:?}");
    assert_eq!(server.requests().len(), 40, "no ping, no token");
    assert_eq!(server.count("HEAD", "/v2/img-"), 40);
    // The default cap of 16 is reached: the 39 after the first go out together.
    assert!(
        (12..=16).contains(&server.peak_in_flight()),
        "peak {}",
        server.peak_in_flight()
    );
}

/// An open registry that keeps connections alive (the shared fake closes each one), and the
/// number of connections it accepted.
fn keep_alive_registry() -> (String, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let digest = digest_of(b"x");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            let digest = digest.clone();
            std::thread::spawn(move || {
                while crate::testhttp::read_request(&stream).is_some() {
                    std::thread::sleep(Duration::from_millis(20));
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nDocker-Content-Digest: {digest}\r\n\
                         Content-Length: 0\r\n\r\n"
                    );
                    if std::io::Write::write_all(&mut stream, answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (host, accepted)
}

#[test]
fn a_full_fan_out_reuses_its_connections() {
    let (host, accepted) = keep_alive_registry();
    let (_dir, client) = anonymous_client();
    let items: Vec<RepoTag> = (0..64)
        .map(|i| tag(&host, &format!("img-{i:02}"), "v1"))
        .collect();
    // Twice, as `listen` does from pass to pass: all 16 connections are idle in between.
    for _ in 0..2 {
        let results = client.check_all(&items);
        assert!(results.values().all(Result::is_ok), "{results:?}");
    }
    // One connection per worker at most, kept between rounds and between calls.
    let accepted = accepted.load(Ordering::SeqCst);
    assert!(accepted <= 16, "{accepted} connections for 128 HEADs");
}

#[test]
fn token_registry_costs_a_challenge_one_token_and_one_head_per_image() {
    let digest = digest_of(b"m");
    let server = FakeServer::start(move |req| {
        let realm = format!("http://{}/token", req.header("host").unwrap());
        if req.path() == "/token" {
            let scopes = req.params("scope", false).len();
            return Reply::new(200)
                .body(format!(r#"{{"token":"t{scopes}","expires_in":300}}"#))
                .delay(Duration::from_millis(20));
        }
        match req.header("authorization") {
            Some("Bearer t40") => Reply::new(200)
                .header("Docker-Content-Digest", &digest)
                .delay(Duration::from_millis(50)),
            _ => Reply::new(401).header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="reg""#),
            ),
        }
    });
    let (_dir, client) = anonymous_client();
    let items = many(&server, 40);
    let results = client.check_all(&items);
    assert!(results.values().all(Result::is_ok), "{results:?}");
    let requests = server.requests();
    assert_eq!(requests[0].method, "HEAD", "no ping first");
    assert_eq!(requests[0].header("authorization"), None);
    assert_eq!(requests[0].target, "/v2/img-00/manifests/v1");
    assert_eq!(
        requests[1].path(),
        "/token",
        "then the one token, for all 40"
    );
    assert_eq!(requests[1].params("scope", false).len(), 40);
    assert_eq!(server.count("GET", "/token"), 1);
    assert_eq!(server.count("GET", "/v2/"), 0);
    assert_eq!(server.count("HEAD", "/v2/img-"), 41);
    assert!(
        requests[2..]
            .iter()
            .all(|r| r.method == "HEAD" && r.header("authorization") == Some("Bearer t40"))
    );
    assert!(
        (12..=16).contains(&server.peak_in_flight()),
        "peak {}",
        server.peak_in_flight()
    );
}

#[test]
fn a_503_makes_the_rest_of_the_hosts_requests_serial() {
    let digest = digest_of(b"x");
    let answered = AtomicUsize::new(0);
    let server = FakeServer::start(move |_| {
        if answered.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::new(503);
        }
        // Slow answers, so parallel requests would overlap.
        Reply::new(200)
            .header("Docker-Content-Digest", &digest)
            .delay(Duration::from_millis(30))
    });
    let (_dir, client) = anonymous_client();
    let items = many(&server, 8);
    let results = client.check_all(&items);
    assert!(results.values().all(Result::is_ok), "{results:?}");
    assert!(client.host_is_serial(&server.host()));
    assert_eq!(server.peak_in_flight(), 1);

    let (server, _) = scripted(vec![Reply::new(500)]);
    client.check(&tag(&server.host(), "app", "v1")).unwrap();
    assert!(
        !client.host_is_serial(&server.host()),
        "a 500 is not overload"
    );
}

/// 40 tags on an open registry (each repository with a digest of its own) that answers
/// `overload` once all 16 requests of the fan-out are in flight; checks that every tag still
/// gets its own digest, and returns how many requests were in flight (server-side) as each of
/// the last 20 arrived.
fn overload_mid_fan_out(overload: Reply) -> Vec<usize> {
    let answered = AtomicUsize::new(0);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let overload = Mutex::new(Some(overload));
    let server = {
        let (in_flight, seen) = (Arc::clone(&in_flight), Arc::clone(&seen));
        FakeServer::start(move |req| {
            let digest = digest_of(req.path().as_bytes());
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            seen.lock().unwrap().push(now);
            let first = answered.fetch_add(1, Ordering::SeqCst) == 0;
            let reply = if now == 16 {
                overload.lock().unwrap().take()
            } else {
                None
            };
            // Hold each answer until the whole fan-out is in flight (or a second passed), so
            // requests admitted before the overload are not still on their way afterwards.
            let waiting = Instant::now();
            while !first
                && in_flight.load(Ordering::SeqCst) < 16
                && overload.lock().unwrap().is_some()
                && waiting.elapsed() < Duration::from_secs(1)
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            // The overload answers at once, the others 20 ms later: the client has seen it
            // before any of them frees a worker.
            if reply.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
            reply.unwrap_or_else(|| Reply::new(200).header("Docker-Content-Digest", &digest))
        })
    };
    let (_dir, client) = anonymous_client();
    let results = client.check_all(&many(&server, 40));
    assert_eq!(results.len(), 40);
    for (item, result) in &results {
        let path = format!("/v2/{}/manifests/{}", item.repository, item.tag);
        let got = result.as_ref().map(|r| r.digest.to_string());
        assert_eq!(got.ok(), Some(digest_of(path.as_bytes())), "{item:?}");
    }
    assert!(client.host_is_serial(&server.host()));
    let seen = seen.lock().unwrap().clone();
    assert!(seen.contains(&16), "the fan-out ran 16 wide: {seen:?}");
    seen[seen.len() - 20..].to_vec()
}

#[test]
fn a_429_or_503_mid_fan_out_makes_the_rest_serial() {
    for overload in [Reply::new(429).header("Retry-After", "0"), Reply::new(503)] {
        let status = overload.status;
        let last = overload_mid_fan_out(overload);
        assert!(last.iter().all(|n| *n == 1), "after a {status}: {last:?}");
    }
}

#[test]
fn a_broken_first_manifest_fails_only_its_own_check() {
    let digest = digest_of(b"x");
    let server = FakeServer::start(move |req| match req.path() {
        "/v2/" => Reply::new(200),
        "/v2/img-00/manifests/v1" => Reply::new(500),
        _ => Reply::new(200).header("Docker-Content-Digest", &digest),
    });
    let (_dir, client) = anonymous_client();
    let items = many(&server, 3);
    let results = client.check_all(&items);
    assert_eq!(
        results[&items[0]].as_ref().unwrap_err().kind(),
        "bad-response"
    );
    assert!(
        results[&items[1]].is_ok() && results[&items[2]].is_ok(),
        "{results:?}"
    );
    assert_eq!(
        server.count("HEAD", "/v2/img-00/"),
        3,
        "retried, not re-checked"
    );
    assert_eq!(server.count("GET", "/v2/"), 1);
}

#[test]
fn a_head_without_a_challenge_falls_back_to_the_ping() {
    let digest = digest_of(b"x");
    let server = FakeServer::start(move |req| match (req.path(), req.header("authorization")) {
        ("/v2/", _) => Reply::new(401).header("WWW-Authenticate", r#"Basic realm="r""#),
        (_, Some(auth)) if auth == basic("user:pw") => {
            Reply::new(200).header("Docker-Content-Digest", &digest)
        }
        // A registry hiding private repositories from strangers.
        _ => Reply::new(404),
    });
    let host = server.host();
    let (_dir, client) = client_with_auth(
        &host,
        &serde_json::json!({"username": "user", "password": "pw"}),
    );
    let results = client.check_all(&[tag(&host, "a", "1"), tag(&host, "b", "1")]);
    assert!(results.values().all(Result::is_ok), "{results:?}");
    assert_eq!(
        server.count("GET", "/v2/"),
        1,
        "one ping after the silent 404"
    );
    assert_eq!(server.count("HEAD", "/v2/"), 3);

    // Without credentials, an open registry's 404 is the answer (after one ping).
    let (server, _) = scripted(vec![Reply::new(404)]);
    let (_dir, client) = anonymous_client();
    let err = client.check(&tag(&server.host(), "app", "v1")).unwrap_err();
    assert_eq!(err.kind(), "not-found", "{err}");
    assert_eq!(server.count("HEAD", "/v2/"), 1);
    assert_eq!(server.count("GET", "/v2/"), 1);
}

#[test]
fn engine_auth_is_url_safe_padded_json() {
    let dir = TempDir::new("engine");
    let config = serde_json::json!({"auths": {
        "https://index.docker.io/v1/": {"auth": STANDARD.encode("hub:p>?")},
        "ghcr.io": {"identitytoken": "id-tok"}
    }});
    dir.write("config.json", &config.to_string());
    let client = RegistryClient::new(options(&dir)).unwrap();
    let decode = |v: String| -> serde_json::Value {
        assert_eq!(v.len() % 4, 0, "padded");
        serde_json::from_slice(&URL_SAFE.decode(v).unwrap()).unwrap()
    };
    let hub = decode(client.engine_auth("registry-1.docker.io").unwrap().unwrap());
    assert_eq!(
        hub,
        serde_json::json!({"username":"hub","password":"p>?","serveraddress":"https://index.docker.io/v1/"})
    );
    let ghcr = decode(client.engine_auth("ghcr.io").unwrap().unwrap());
    assert_eq!(
        ghcr,
        serde_json::json!({"identitytoken":"id-tok","serveraddress":"ghcr.io"})
    );
    assert_eq!(client.engine_auth("quay.io").unwrap(), None);
}

#[test]
fn malformed_docker_config_is_an_error_naming_the_file() {
    let dir = TempDir::new("badcfg");
    dir.write("config.json", "{ not json");
    let err = RegistryClient::new(options(&dir)).err().unwrap();
    assert!(format!("{err:#}").contains(&dir.path().join("config.json").display().to_string()));
}

#[test]
fn credential_helper_failure_is_reported_per_check() {
    let server = registry(Auth::Basic("u:p"), &[("app:v1", b"x")], DigestHeader::Sent);
    let dir = TempDir::new("helperfail");
    dir.write("config.json", r#"{"credsStore":"broken"}"#);
    dir.write_script(
        "docker-credential-broken",
        "#!/bin/sh\necho 'vault sealed' >&2\nexit 2\n",
    );
    let client = RegistryClient::new(options(&dir)).unwrap();
    let err = client.check(&tag(&server.host(), "app", "v1")).unwrap_err();
    assert_eq!(err.kind(), "credentials");
    assert!(
        err.to_string().contains("docker-credential-broken"),
        "{err}"
    );
    assert_eq!(
        server.requests().len(),
        0,
        "nothing sent without the credentials"
    );
}

#[test]
fn rate_limit_headers_are_reported() {
    let digest = digest_of(b"x");
    let server = FakeServer::start(move |req| {
        if req.path() == "/v2/" {
            return Reply::new(200);
        }
        Reply::new(200)
            .header("Docker-Content-Digest", &digest)
            .header("ratelimit-limit", "100;w=21600")
            .header("ratelimit-remaining", "76;w=21600")
    });
    let (_dir, client) = anonymous_client();
    let remote = client.check(&tag(&server.host(), "app", "v1")).unwrap();
    assert_eq!(
        remote.rate_limit,
        Some(super::RateLimit {
            limit: 100,
            remaining: 76,
            window: Some(Duration::from_secs(21600))
        })
    );
}

#[test]
fn the_client_remembers_each_hosts_lowest_rate_limit_for_the_plan_report() {
    let digest = digest_of(b"x");
    let server = FakeServer::start(move |req| {
        let remaining = if req.path().contains("/b/") {
            "75"
        } else {
            "76"
        };
        Reply::new(200)
            .header("Docker-Content-Digest", &digest)
            .header("RateLimit-Limit", "100;w=21600")
            .header("RateLimit-Remaining", &format!("{remaining};w=21600"))
    });
    let quiet =
        FakeServer::start(|_| Reply::new(200).header("Docker-Content-Digest", &digest_of(b"y")));
    let (_dir, client) = anonymous_client();
    assert!(client.rate_limits().is_empty());
    let items = [
        tag(&server.host(), "a", "v1"),
        tag(&server.host(), "b", "v1"),
        tag(&quiet.host(), "c", "v1"),
    ];
    let results = client.check_all(&items);
    assert!(results.values().all(Result::is_ok), "{results:?}");
    let limits = client.rate_limits();
    assert_eq!(
        limits.keys().cloned().collect::<Vec<_>>(),
        [server.host()],
        "a host without the headers is not reported"
    );
    assert_eq!(
        limits[&server.host()],
        super::RateLimit {
            limit: 100,
            remaining: 75,
            window: Some(Duration::from_secs(21600))
        }
    );
}

#[test]
fn a_401_with_a_fresh_single_repository_token_is_final() {
    let issued = AtomicUsize::new(0);
    let server = FakeServer::start(move |req| {
        let realm = format!("http://{}/token", req.header("host").unwrap());
        match req.path() {
            // Anonymous tokens grant nothing, as with a private repository.
            "/token" => {
                let n = issued.fetch_add(1, Ordering::SeqCst);
                Reply::new(200).body(format!(r#"{{"token":"secret-token-{n}:"}}"#))
            }
            _ => Reply::new(401).header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="s",error="insufficient_scope""#),
            ),
        }
    });
    let (_dir, client) = anonymous_client();
    let host = server.host();
    let err = client.check(&tag(&host, "private", "v1")).unwrap_err();
    assert_eq!(err.kind(), "unauthorized");
    assert_eq!(server.count("GET", "/token"), 1);
    assert_eq!(server.count("HEAD", "/v2/"), 2, "the challenge and one try");

    // With a shared token each repository gets one retry with its own token, and no more.
    let results = client.check_all(&[tag(&host, "p1", "v1"), tag(&host, "p2", "v1")]);
    assert!(
        results
            .values()
            .all(|r| r.as_ref().unwrap_err().kind() == "unauthorized")
    );
    assert_eq!(server.count("GET", "/token"), 1 + 3);
    assert_eq!(server.count("HEAD", "/v2/"), 2 + 4);
}

/// A two-platform index (plus an attestation entry) and its two manifests, as served bodies.
fn two_platform_index() -> (Vec<u8>, Vec<u8>, Vec<u8>, String) {
    let config = format!("sha256:{}", "c".repeat(64));
    let amd = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 1},
        "layers": []
    })
    .to_string()
    .into_bytes();
    let arm = serde_json::json!({
        "schemaVersion": 2,
        "config": {"digest": format!("sha256:{}", "d".repeat(64)), "size": 1},
        "layers": []
    })
    .to_string()
    .into_bytes();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"digest": format!("sha256:{}", "e".repeat(64)), "size": 1,
             "platform": {"os": "unknown", "architecture": "unknown"}},
            {"digest": digest_of(&amd), "size": amd.len(),
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": digest_of(&arm), "size": arm.len(),
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
        ]
    })
    .to_string()
    .into_bytes();
    (index, amd, arm, config)
}

#[test]
fn platform_digest_reads_the_index_once_and_the_manifest_only_for_a_config() {
    let (index, amd, arm, config) = two_platform_index();
    let (di, da, dr) = (digest_of(&index), digest_of(&amd), digest_of(&arm));
    let bodies: Vec<(String, Vec<u8>)> = vec![
        ("team/app:v1".into(), index.clone()),
        (format!("team/app:{di}"), index.clone()),
        (format!("team/app:{da}"), amd.clone()),
        (format!("team/app:{dr}"), arm.clone()),
    ];
    let manifests: Vec<(&str, &[u8])> = bodies
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let server = registry(
        Auth::Bearer {
            creds: None,
            first_scope_only: false,
        },
        &manifests,
        DigestHeader::Sent,
    );
    let (_dir, client) = anonymous_client();
    let item = tag(&server.host(), "team/app", "v1");
    let remote = client.check(&item).unwrap();
    assert_eq!(remote.digest.as_str(), di);

    let found = client
        .platform_digest(&item, &remote.digest, "linux/amd64", false)
        .unwrap();
    assert_eq!(found.manifest.as_str(), da);
    assert_eq!(found.config, None);
    assert_eq!(
        server.count("GET", "/v2/team/app/manifests/"),
        1,
        "one GET of the index"
    );
    assert_eq!(
        server.count("HEAD", "/v2/"),
        2,
        "the challenge and the check"
    );

    let found = client
        .platform_digest(&item, &remote.digest, "linux/amd64", true)
        .unwrap();
    assert_eq!(
        found.config.as_ref().map(Digest::as_str),
        Some(config.as_str())
    );
    assert_eq!(server.count("GET", "/v2/team/app/manifests/"), 3);
    assert_eq!(
        server.count("GET", &format!("/v2/team/app/manifests/{da}")),
        1,
        "the platform manifest is read by its digest"
    );

    for platform in ["linux/arm64/v8", "linux/arm64"] {
        let found = client
            .platform_digest(&item, &remote.digest, platform, false)
            .unwrap();
        assert_eq!(found.manifest.as_str(), dr, "{platform}");
    }
    let err = client
        .platform_digest(&item, &remote.digest, "linux/s390x", false)
        .unwrap_err();
    assert!(
        err.to_string().contains("no image for linux/s390x"),
        "{err}"
    );

    // A tag naming one manifest: that manifest is the platform's image.
    let single = Digest::parse(&da).unwrap();
    let found = client
        .platform_digest(&item, &single, "linux/amd64", true)
        .unwrap();
    assert_eq!(found.manifest.as_str(), da);
    assert_eq!(
        found.config.as_ref().map(Digest::as_str),
        Some(config.as_str())
    );
}

#[test]
fn platform_digest_refuses_a_body_that_does_not_match_its_digest() {
    let (index, _, _, _) = two_platform_index();
    let claimed = format!("sha256:{}", "a".repeat(64));
    let key = format!("app:{claimed}");
    let server = registry(Auth::Open, &[(key.as_str(), &index)], DigestHeader::Sent);
    let (_dir, client) = anonymous_client();
    let item = tag(&server.host(), "app", "v1");
    let claimed = Digest::parse(&claimed).unwrap();
    let err = client
        .platform_digest(&item, &claimed, "linux/amd64", false)
        .unwrap_err();
    assert!(err.to_string().contains("different digest"), "{err}");
    assert_eq!(err.kind(), "bad-response");
}

/// A bearer registry whose repository `team/app` has `count` tags, served `n` at a time with
/// `Link` headers (and one manifest, so the host's auth is learnt as in a pass).
fn tag_registry(count: usize) -> FakeServer {
    let auth = Auth::Bearer {
        creds: None,
        first_scope_only: false,
    };
    FakeServer::start(move |req| {
        if req.path() == "/token" {
            return token_reply(&auth, req);
        }
        let realm = format!("http://{}/token", req.header("host").unwrap_or_default());
        let authorised = req
            .header("authorization")
            .is_some_and(|h| h == "Bearer secret-token:team/app");
        if !authorised {
            return Reply::new(401).header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="fake-registry""#),
            );
        }
        if req.path() != "/v2/team/app/tags/list" {
            return Reply::new(404);
        }
        let all: Vec<String> = (0..count).map(|i| format!("1.0.{i}")).collect();
        let n: usize = req
            .params("n", false)
            .first()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100);
        let start = req
            .params("last", false)
            .first()
            .and_then(|last| all.iter().position(|t| t == last))
            .map_or(0, |at| at + 1);
        let page = &all[start..(start + n).min(all.len())];
        let mut reply = Reply::new(200)
            .header("Content-Type", "application/json")
            .body(serde_json::json!({"name": "team/app", "tags": page}).to_string());
        if start + n < all.len() {
            reply = reply.header(
                "Link",
                &format!(
                    "</v2/team/app/tags/list?n={n}&last={}>; rel=\"next\"",
                    page.last().unwrap()
                ),
            );
        }
        reply
    })
}

#[test]
fn tag_lists_are_followed_through_link_pages_with_one_token() {
    let server = tag_registry(1500);
    let (_dir, client) = anonymous_client();
    let list = client
        .list_tags(&tag(&server.host(), "team/app", "1.0.0"))
        .unwrap();
    assert_eq!(list.tags.len(), 1500, "every tag, across pages");
    assert!(list.complete);
    assert_eq!(list.pages, 2, "n=1000 per page");
    assert_eq!(list.tags[1499], "1.0.1499");
    assert_eq!(server.count("GET", "/token"), 1, "one token for both pages");
    let pages: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/v2/team/app/tags/list")
        .map(|r| r.target)
        .collect();
    assert!(pages[0].ends_with("?n=1000"), "{pages:?}");
    assert!(pages.last().unwrap().contains("last=1.0.999"), "{pages:?}");
}

#[test]
fn tag_lists_longer_than_the_bound_are_cut_and_say_so() {
    let server = tag_registry(super::client::tags_bound() + 5);
    let (_dir, client) = anonymous_client();
    let list = client
        .list_tags(&tag(&server.host(), "team/app", "1.0.0"))
        .unwrap();
    assert!(!list.complete);
    assert_eq!(list.tags.len(), super::client::tags_bound());
}
