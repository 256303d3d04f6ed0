//! Protocol conformance for `pullpilot relay`: the real binary on a loopback port, driven with
//! literal HTTP requests and literal JSON frames over a plain tungstenite client. Signatures
//! are made with ring here and nothing from pullpilot's own protocol code is used, so the
//! relay can be swapped for any implementation of the relay protocol v1 (and a mistake shared
//! by pullpilot's client and relay cannot hide).
//!
//! No Docker and no network beyond loopback; each test starts its own relay with a fresh state
//! directory.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom as _;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::Value;
use tungstenite::{Message, WebSocket};

// ---------------------------------------------------------------------------------------------
// Harness: temp dirs, the relay process, HTTP, keys and sockets.
// ---------------------------------------------------------------------------------------------

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "pp-relay-{name}-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `pullpilot relay`, killed on drop.
struct Relay {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Relay {
    fn start(state: &Path, extra: &[&str]) -> Relay {
        Relay::try_start(state, extra)
            .unwrap_or_else(|log| panic!("the relay did not start:\n{log}"))
    }

    /// Starts the relay and waits for its "listening on" line; `Err(log)` if it exits first.
    fn try_start(state: &Path, extra: &[&str]) -> Result<Relay, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pullpilot"));
        cmd.args(["relay", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars() {
            if name.starts_with("PP_") || name == "RUST_LOG" || name == "JOURNAL_STREAM" {
                cmd.env_remove(name);
            }
        }
        let mut child = cmd.spawn().expect("the pullpilot binary runs");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = writeln!(log.lock().unwrap(), "{line}");
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                return Err(log.lock().unwrap().clone());
            };
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap().to_string();
                return Ok(Relay { child, addr, log });
            }
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the relay ignored SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("--- relay log ---\n{}", self.log());
            }
        }
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends one literal HTTP/1.1 request and reads the whole answer.
fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut raw = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        let _ = write!(raw, "Host: {addr}\r\n");
    }
    for (name, value) in headers {
        let _ = write!(raw, "{name}: {value}\r\n");
    }
    if !body.is_empty() || method == "POST" {
        let _ = write!(raw, "Content-Length: {}\r\n", body.len());
    }
    raw.push_str("Connection: close\r\n\r\n");
    raw.push_str(body);
    stream.write_all(raw.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a complete answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_string(), v.trim().to_string())
        })
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

fn get(addr: &str, path: &str) -> Response {
    request(addr, "GET", path, &[], "")
}

fn post_json(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    request(addr, "POST", path, &all, body)
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_string()).collect()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh Ed25519 identity, as a listen daemon would have.
struct Key(Ed25519KeyPair);

impl Key {
    fn new() -> Key {
        let mut seed = [0u8; 32];
        ring::rand::SystemRandom::new().fill(&mut seed).unwrap();
        Key(Ed25519KeyPair::from_seed_unchecked(&seed).unwrap())
    }

    fn public(&self) -> String {
        b64(self.0.public_key().as_ref())
    }

    /// sig over "pullpilot-webhook-relay/v1" ‖ webhookId ‖ challenge bytes.
    fn sign(&self, id: &str, challenge: &[u8]) -> String {
        let mut msg = b"pullpilot-webhook-relay/v1".to_vec();
        msg.extend_from_slice(id.as_bytes());
        msg.extend_from_slice(challenge);
        b64(self.0.sign(&msg).as_ref())
    }
}

/// Provisions `key` and returns the webhook id.
fn provision(addr: &str, key: &Key) -> String {
    let body = format!(r#"{{"pubkey":"{}","label":"pullpilot"}}"#, key.public());
    let answer = post_json(addr, "/v1/provision", &[], &body);
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()["webhookId"].as_str().unwrap().to_string()
}

type Ws = WebSocket<TcpStream>;

#[derive(Debug, PartialEq)]
enum Event {
    Text(String),
    Closed(u16, String),
}

fn connect(addr: &str, id: &str) -> Ws {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (ws, answer) = tungstenite::client(format!("ws://{addr}/v1/listen/{id}"), stream)
        .unwrap_or_else(|e| panic!("the WebSocket handshake failed: {e}"));
    assert_eq!(answer.status().as_u16(), 101);
    ws
}

/// The next text frame or close frame within `within` (control frames are skipped).
fn next(ws: &mut Ws, within: Duration) -> Event {
    ws.get_mut().set_read_timeout(Some(within)).unwrap();
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => return Event::Text(text.to_string()),
            Ok(Message::Close(Some(frame))) => {
                return Event::Closed(frame.code.into(), frame.reason.to_string());
            }
            Ok(Message::Close(None)) => return Event::Closed(1005, String::new()),
            Ok(_) => {}
            Err(e) => panic!("no frame within {within:?}: {e}"),
        }
    }
}

/// Asserts nothing arrives for `quiet`.
fn silent(ws: &mut Ws, quiet: Duration) {
    ws.get_mut().set_read_timeout(Some(quiet)).unwrap();
    match ws.read() {
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("expected silence, got {other:?}"),
    }
}

fn text(ws: &mut Ws) -> String {
    match next(ws, Duration::from_secs(10)) {
        Event::Text(text) => text,
        other @ Event::Closed(..) => panic!("expected a text frame, got {other:?}"),
    }
}

fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).unwrap();
}

/// Reads `hello` and checks its wire shape; returns the challenge bytes and `exp`.
fn hello(ws: &mut Ws) -> (Vec<u8>, u64) {
    let frame: Value = serde_json::from_str(&text(ws)).unwrap();
    assert_eq!(
        keys(&frame),
        set(&["type", "v", "challenge", "exp"]),
        "{frame}"
    );
    assert_eq!(frame["type"], "hello");
    assert_eq!(frame["v"], 1);
    let challenge = URL_SAFE_NO_PAD
        .decode(frame["challenge"].as_str().unwrap())
        .expect("the challenge is unpadded base64url");
    assert_eq!(challenge.len(), 32);
    (
        challenge,
        frame["exp"].as_u64().expect("exp is unix seconds"),
    )
}

fn auth_frame(sig: &str) -> String {
    format!(r#"{{"type":"auth","sig":"{sig}"}}"#)
}

/// A socket through hello → auth → ready.
fn authed(addr: &str, id: &str, key: &Key) -> Ws {
    let mut ws = connect(addr, id);
    let (challenge, _) = hello(&mut ws);
    send(&mut ws, &auth_frame(&key.sign(id, &challenge)));
    assert_eq!(text(&mut ws), r#"{"type":"ready"}"#);
    ws
}

/// Checks a poke frame's shape and returns its reason.
fn poke_reason(frame: &str) -> Value {
    let frame: Value = serde_json::from_str(frame).unwrap();
    assert_eq!(
        keys(&frame),
        set(&["type", "v", "id", "ts", "reason"]),
        "{frame}"
    );
    assert_eq!(frame["type"], "poke");
    assert_eq!(frame["v"], 1);
    let id = frame["id"].as_str().unwrap();
    assert!(
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "poke id {id:?}"
    );
    let ts = humantime::parse_rfc3339(frame["ts"].as_str().unwrap()).expect("ts is ISO-8601");
    let skew = SystemTime::now()
        .duration_since(ts)
        .unwrap_or_else(|e| e.duration());
    assert!(skew < Duration::from_secs(60), "ts {ts:?}");
    frame["reason"].clone()
}

fn fresh(name: &str) -> (TempDir, Relay) {
    let dir = TempDir::new(name);
    let relay = Relay::start(&dir.0, &[]);
    (dir, relay)
}

// ---------------------------------------------------------------------------------------------
// HTTP routes
// ---------------------------------------------------------------------------------------------

#[test]
fn health_version_and_unknown_paths() {
    let (_dir, relay) = fresh("routes");
    for method in ["GET", "POST", "HEAD"] {
        let health = request(&relay.addr, method, "/healthz", &[], "");
        assert_eq!(health.status, 200);
        let body = if method == "HEAD" { "" } else { "ok" };
        assert_eq!(health.body, body, "{method}");
        assert!(
            health
                .header("content-type")
                .unwrap()
                .starts_with("text/plain")
        );
    }
    let version = get(&relay.addr, "/version");
    assert_eq!(version.status, 200);
    assert!(
        version
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(
        version.json(),
        serde_json::json!({ "version": env!("CARGO_PKG_VERSION") })
    );
    for path in [
        "/",
        "/v1/poke/",
        "/v1/poke/a/b",
        "/v1/listen",
        "/v2/provision",
    ] {
        let answer = get(&relay.addr, path);
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (404, "not found"),
            "{path}"
        );
    }
}

#[test]
fn provision_answers_201_with_camel_case_urls_for_the_request_origin() {
    let (_dir, relay) = fresh("provision");
    let key = Key::new();
    let body = format!(r#"{{"pubkey":"{}","label":"pullpilot"}}"#, key.public());
    let answer = post_json(
        &relay.addr,
        "/v1/provision",
        &[("Host", "relay.test:8443")],
        &body,
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let json = answer.json();
    assert_eq!(
        keys(&json),
        set(&["webhookId", "pokeUrl", "listenUrl", "ttlDays"])
    );
    let id = json["webhookId"].as_str().unwrap();
    let hex = id.strip_prefix("wh_").expect("ids start with wh_");
    assert!(
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{id}"
    );
    assert_eq!(
        json["pokeUrl"],
        format!("http://relay.test:8443/v1/poke/{id}")
    );
    assert_eq!(
        json["listenUrl"],
        format!("ws://relay.test:8443/v1/listen/{id}")
    );
    assert_eq!(json["ttlDays"], 180);

    // A reverse proxy on loopback says the client came over TLS.
    let answer = post_json(
        &relay.addr,
        "/v1/provision",
        &[("Host", "relay.test"), ("X-Forwarded-Proto", "https")],
        &body,
    );
    let json = answer.json();
    let id2 = json["webhookId"].as_str().unwrap();
    assert_ne!(id2, id, "every provision is a new webhook");
    assert_eq!(json["pokeUrl"], format!("https://relay.test/v1/poke/{id2}"));
    assert_eq!(
        json["listenUrl"],
        format!("wss://relay.test/v1/listen/{id2}")
    );
}

#[test]
fn the_public_url_sets_the_origin_of_handed_out_urls() {
    let dir = TempDir::new("public-url");
    let relay = Relay::start(
        &dir.0,
        &[
            "--public-url",
            "https://relay.example.org/",
            "--prune-after",
            "30d",
        ],
    );
    let key = Key::new();
    let body = format!(r#"{{"pubkey":"{}","label":null}}"#, key.public());
    let json = post_json(
        &relay.addr,
        "/v1/provision",
        &[("Host", "ignored.test")],
        &body,
    )
    .json();
    let id = json["webhookId"].as_str().unwrap();
    assert_eq!(
        json["pokeUrl"],
        format!("https://relay.example.org/v1/poke/{id}")
    );
    assert_eq!(
        json["listenUrl"],
        format!("wss://relay.example.org/v1/listen/{id}")
    );
    assert_eq!(json["ttlDays"], 30);
}

#[test]
fn provision_errors_use_the_reference_codes() {
    let (_dir, relay) = fresh("provision-errors");
    let too_large = format!(r#"{{"pubkey":"{}"}}"#, "A".repeat(5000));
    let short_key = b64(&[1; 31]);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("GET", String::new(), 405, "method_not_allowed"),
        ("PUT", "{}".into(), 405, "method_not_allowed"),
        ("POST", too_large, 400, "body_too_large"),
        ("POST", "{not json".into(), 400, "invalid_json"),
        ("POST", "{}".into(), 400, "missing_pubkey"),
        ("POST", r#"{"pubkey":""}"#.into(), 400, "missing_pubkey"),
        ("POST", r#"{"pubkey":7}"#.into(), 400, "missing_pubkey"),
        (
            "POST",
            r#"{"pubkey":"*not base64*"}"#.into(),
            400,
            "invalid_pubkey_encoding",
        ),
        (
            "POST",
            format!(r#"{{"pubkey":"{short_key}"}}"#),
            400,
            "invalid_pubkey_length",
        ),
    ];
    for (i, (method, body, status, code)) in cases.iter().enumerate() {
        let ip = format!("198.51.100.{i}");
        let answer = request(
            &relay.addr,
            method,
            "/v1/provision",
            &[
                ("Content-Type", "application/json"),
                ("X-Forwarded-For", &ip),
            ],
            body,
        );
        assert_eq!(
            answer.status, *status,
            "{method} {body:.40}: {}",
            answer.body
        );
        assert_eq!(
            answer.json(),
            serde_json::json!({ "error": code }),
            "{method} {body:.40}"
        );
    }
}

#[test]
fn provision_is_rate_limited_per_client_ip_behind_a_local_proxy() {
    let (_dir, relay) = fresh("provision-limit");
    let key = Key::new();
    let body = format!(r#"{{"pubkey":"{}"}}"#, key.public());
    let from = |ip: &str| {
        post_json(
            &relay.addr,
            "/v1/provision",
            &[("X-Forwarded-For", ip)],
            &body,
        )
    };
    for i in 0..10 {
        assert_eq!(from("203.0.113.5").status, 201, "provision {i}");
    }
    let refused = from("203.0.113.5, 127.0.0.1");
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.json(),
        serde_json::json!({ "error": "rate_limited" })
    );
    // Another client behind the same proxy is counted on its own.
    assert_eq!(from("203.0.113.6").status, 201);
}

#[test]
fn listen_and_poke_refuse_like_the_reference_worker() {
    let (_dir, relay) = fresh("refusals");
    let id = provision(&relay.addr, &Key::new());
    let unknown = format!("wh_{}", "0".repeat(64));

    let no_upgrade = get(&relay.addr, &format!("/v1/listen/{id}"));
    assert_eq!(no_upgrade.status, 426);
    let wrong_case = request(
        &relay.addr,
        "GET",
        &format!("/v1/listen/{id}"),
        &[("Upgrade", "WebSocket"), ("Connection", "Upgrade")],
        "",
    );
    assert_eq!(
        wrong_case.status, 426,
        "the Upgrade check is case-sensitive"
    );
    let not_registered = request(
        &relay.addr,
        "GET",
        &format!("/v1/listen/{unknown}"),
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ],
        "",
    );
    assert_eq!(
        (not_registered.status, not_registered.body.as_str()),
        (404, "unknown webhook")
    );

    let poke_unknown = get(&relay.addr, &format!("/v1/poke/{unknown}"));
    assert_eq!(
        (poke_unknown.status, poke_unknown.body.as_str()),
        (404, "unknown webhook")
    );
    for method in ["PUT", "DELETE"] {
        let answer = request(&relay.addr, method, &format!("/v1/poke/{id}"), &[], "");
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(
            answer.json(),
            serde_json::json!({ "error": "method_not_allowed" })
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The socket: hello, auth, ready, ping, close codes
// ---------------------------------------------------------------------------------------------

#[test]
fn hello_auth_ready_and_ping_pong() {
    let (_dir, relay) = fresh("handshake");
    let key = Key::new();
    let id = provision(&relay.addr, &key);
    let mut ws = connect(&relay.addr, &id);
    let (challenge, exp) = hello(&mut ws);
    let now = unix_now();
    assert!(
        exp >= now + 25 && exp <= now + 35,
        "exp {exp} is about now+30 ({now})"
    );
    // Frames outside the protocol are ignored, before and after auth.
    send(&mut ws, "not json");
    send(&mut ws, r#"{"type":"nonsense"}"#);
    ws.send(Message::binary(vec![1, 2, 3])).unwrap();
    let sig = key.sign(&id, &challenge);
    send(&mut ws, &auth_frame(&sig));
    assert_eq!(text(&mut ws), r#"{"type":"ready"}"#);
    send(&mut ws, "ping");
    assert_eq!(text(&mut ws), "pong");
    // A repeated auth changes nothing: no second ready, no close.
    send(&mut ws, &auth_frame(&sig));
    send(&mut ws, "ping");
    assert_eq!(text(&mut ws), "pong");
}

#[test]
fn a_bad_signature_is_closed_with_1008() {
    let (_dir, relay) = fresh("bad-signature");
    let key = Key::new();
    let id = provision(&relay.addr, &key);
    let mut ws = connect(&relay.addr, &id);
    let (challenge, _) = hello(&mut ws);
    // Signed by another key.
    send(&mut ws, &auth_frame(&Key::new().sign(&id, &challenge)));
    assert_eq!(
        next(&mut ws, Duration::from_secs(10)),
        Event::Closed(1008, "bad signature".into())
    );
    // Signed for another challenge.
    let mut ws = connect(&relay.addr, &id);
    let _ = hello(&mut ws);
    send(&mut ws, &auth_frame(&key.sign(&id, &[0; 32])));
    assert_eq!(
        next(&mut ws, Duration::from_secs(10)),
        Event::Closed(1008, "bad signature".into())
    );
}

#[test]
fn an_expired_challenge_is_closed_with_1008() {
    let dir = TempDir::new("expired");
    let relay = Relay::start(&dir.0, &["--challenge-ttl", "1s"]);
    let key = Key::new();
    let id = provision(&relay.addr, &key);
    let mut ws = connect(&relay.addr, &id);
    let (challenge, exp) = hello(&mut ws);
    assert!(exp <= unix_now() + 1);
    while unix_now() <= exp {
        std::thread::sleep(Duration::from_millis(100));
    }
    send(&mut ws, &auth_frame(&key.sign(&id, &challenge)));
    assert_eq!(
        next(&mut ws, Duration::from_secs(10)),
        Event::Closed(1008, "challenge expired".into())
    );
}

#[test]
fn a_socket_that_never_authenticates_is_closed_with_1008() {
    let dir = TempDir::new("auth-timeout");
    let relay = Relay::start(&dir.0, &["--auth-timeout", "1s"]);
    let id = provision(&relay.addr, &Key::new());
    let mut ws = connect(&relay.addr, &id);
    let _ = hello(&mut ws);
    let started = Instant::now();
    assert_eq!(
        next(&mut ws, Duration::from_secs(10)),
        Event::Closed(1008, "auth timeout".into())
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_fifth_authenticated_socket_is_refused_with_1013() {
    let (_dir, relay) = fresh("authed-cap");
    let key = Key::new();
    let id = provision(&relay.addr, &key);
    let mut four: Vec<Ws> = (0..4).map(|_| authed(&relay.addr, &id, &key)).collect();
    let mut fifth = connect(&relay.addr, &id);
    let (challenge, _) = hello(&mut fifth);
    send(&mut fifth, &auth_frame(&key.sign(&id, &challenge)));
    assert_eq!(
        next(&mut fifth, Duration::from_secs(10)),
        Event::Closed(1013, "too many connections".into())
    );
    // The four are still served.
    for ws in &mut four {
        send(ws, "ping");
        assert_eq!(text(ws), "pong");
    }
}

#[test]
fn the_ninth_unauthenticated_socket_is_refused_with_1013() {
    let (_dir, relay) = fresh("waiting-cap");
    let key = Key::new();
    let id = provision(&relay.addr, &key);
    let mut eight: Vec<(Ws, Vec<u8>)> = (0..8)
        .map(|_| {
            let mut ws = connect(&relay.addr, &id);
            let (challenge, _) = hello(&mut ws);
            (ws, challenge)
        })
        .collect();
    let mut ninth = connect(&relay.addr, &id);
    assert_eq!(
        next(&mut ninth, Duration::from_secs(10)),
        Event::Closed(1013, "too many connections".into())
    );
    // Authenticating one of the eight makes room for a new one.
    let (ws, challenge) = &mut eight[0];
    send(ws, &auth_frame(&key.sign(&id, challenge)));
    assert_eq!(text(ws), r#"{"type":"ready"}"#);
    let mut tenth = connect(&relay.addr, &id);
    let _ = hello(&mut tenth);
}

// ---------------------------------------------------------------------------------------------
// Pokes
// ---------------------------------------------------------------------------------------------

#[test]
fn pokes_reach_the_listener_and_a_burst_is_deferred_not_dropped() {
    let (_dir, relay) = fresh("poke");
    let key = Key::new();
    let id = provision(&relay.addr, &key);
    let mut ws = authed(&relay.addr, &id, &key);
    let path = format!("/v1/poke/{id}");

    let answer = get(&relay.addr, &path);
    assert_eq!(answer.status, 202);
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(answer.json(), serde_json::json!({ "status": "accepted" }));
    let first = Instant::now();
    assert_eq!(poke_reason(&text(&mut ws)), Value::Null);

    // Within 5 s of that delivery: one delivery at the window's end, with the latest reason
    // (a JSON body's reason, cut to 256 characters; a non-JSON body has none).
    let plain = request(
        &relay.addr,
        "POST",
        &path,
        &[("Content-Type", "text/plain")],
        r#"{"reason":"not read"}"#,
    );
    assert_eq!(plain.status, 202);
    let long = "é".repeat(300);
    let answer = post_json(
        &relay.addr,
        &path,
        &[],
        &format!(r#"{{"reason":"{long}"}}"#),
    );
    assert_eq!(answer.status, 202);
    silent(&mut ws, Duration::from_secs(3));
    let deferred = poke_reason(&text(&mut ws));
    let delivered = Instant::now();
    let waited = delivered - first;
    assert_eq!(deferred, Value::String("é".repeat(256)));
    assert!(
        waited >= Duration::from_millis(4500) && waited < Duration::from_secs(8),
        "the deferred poke came {waited:?} after the first"
    );
    silent(&mut ws, Duration::from_millis(500));

    // After the window a poke goes out at once, with its reason.
    std::thread::sleep(Duration::from_millis(5200).saturating_sub(delivered.elapsed()));
    let answer = post_json(&relay.addr, &path, &[], r#"{"reason":"new tag"}"#);
    assert_eq!(answer.status, 202);
    assert_eq!(poke_reason(&text(&mut ws)), Value::String("new tag".into()));
}

#[test]
fn a_poke_without_a_listener_is_delivered_after_the_next_auth() {
    let (_dir, relay) = fresh("pending");
    let key = Key::new();
    let id = provision(&relay.addr, &key);
    for reason in ["first", "second"] {
        let answer = post_json(
            &relay.addr,
            &format!("/v1/poke/{id}"),
            &[],
            &format!(r#"{{"reason":"{reason}"}}"#),
        );
        assert_eq!(answer.status, 202);
        assert_eq!(answer.json(), serde_json::json!({ "status": "accepted" }));
    }
    let mut ws = authed(&relay.addr, &id, &key);
    // One pending flag, not a queue; its poke carries no reason.
    assert_eq!(poke_reason(&text(&mut ws)), Value::Null);
    silent(&mut ws, Duration::from_millis(700));
}

#[test]
fn more_than_100_pokes_in_5_seconds_are_refused_with_429() {
    let (_dir, relay) = fresh("poke-limit");
    let id = provision(&relay.addr, &Key::new());
    let path = format!("/v1/poke/{id}");
    let started = Instant::now();
    for i in 0..100 {
        assert_eq!(get(&relay.addr, &path).status, 202, "poke {i}");
    }
    let refused = get(&relay.addr, &path);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "too slow to test the window"
    );
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.json(),
        serde_json::json!({ "error": "rate_limited" })
    );
}

// ---------------------------------------------------------------------------------------------
// Persistence, pruning and startup errors
// ---------------------------------------------------------------------------------------------

#[test]
fn registrations_and_the_pending_flag_survive_a_restart() {
    let dir = TempDir::new("restart");
    let key = Key::new();
    let relay = Relay::start(&dir.0, &[]);
    let id = provision(&relay.addr, &key);
    assert_eq!(get(&relay.addr, &format!("/v1/poke/{id}")).status, 202);
    let mut waiting = connect(&relay.addr, &id);
    let _ = hello(&mut waiting);
    let status = relay.stop();
    assert!(status.success(), "SIGTERM is a clean exit: {status:?}");
    assert_eq!(
        next(&mut waiting, Duration::from_secs(5)),
        Event::Closed(1001, "relay shutting down".into()),
        "open sockets are told the relay is going away"
    );

    let file = dir.0.join("registrations.json");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(&dir.0).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let record = &saved["webhooks"][&id];
    assert_eq!(
        keys(record),
        set(&["pubkey", "label", "createdAt", "lastSeen", "pending"])
    );
    assert_eq!(record["pubkey"], key.public());
    assert_eq!(record["label"], "pullpilot");
    assert_eq!(record["pending"], true);

    let relay = Relay::start(&dir.0, &[]);
    assert!(
        relay.log().contains("with 1 registration from"),
        "{}",
        relay.log()
    );
    let mut ws = authed(&relay.addr, &id, &key);
    assert_eq!(poke_reason(&text(&mut ws)), Value::Null);
}

#[test]
fn a_killed_relay_still_knows_its_webhooks() {
    let dir = TempDir::new("killed");
    let key = Key::new();
    let relay = Relay::start(&dir.0, &[]);
    let id = provision(&relay.addr, &key);
    drop(relay); // SIGKILL: nothing saved on the way out
    let relay = Relay::start(&dir.0, &[]);
    let _ws = authed(&relay.addr, &id, &key);
}

#[test]
fn webhooks_unused_past_prune_after_are_forgotten() {
    let dir = TempDir::new("prune");
    let key = Key::new();
    let relay = Relay::start(&dir.0, &[]);
    let id = provision(&relay.addr, &key);
    let kept_key = Key::new();
    let kept = provision(&relay.addr, &kept_key);
    assert!(relay.stop().success());
    std::thread::sleep(Duration::from_millis(2100));

    let relay = Relay::start(&dir.0, &["--prune-after", "1s"]);
    assert!(
        relay.log().contains("with 0 registrations"),
        "{}",
        relay.log()
    );
    assert!(relay.log().contains("Forgot webhook"), "{}", relay.log());
    assert!(
        !relay.log().contains(&id),
        "full webhook ids are never logged"
    );
    let poke = get(&relay.addr, &format!("/v1/poke/{id}"));
    assert_eq!((poke.status, poke.body.as_str()), (404, "unknown webhook"));
    let poke = get(&relay.addr, &format!("/v1/poke/{kept}"));
    assert_eq!(poke.status, 404);
    let saved = std::fs::read_to_string(dir.0.join("registrations.json")).unwrap();
    assert!(!saved.contains(&id), "pruning is saved");
}

#[test]
fn a_damaged_registrations_file_stops_the_relay_with_a_clear_message() {
    let dir = TempDir::new("damaged");
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join("registrations.json");
    std::fs::write(&file, "{\"version\":1,\"webhooks\":{").unwrap();
    let log = match Relay::try_start(&dir.0, &[]) {
        Ok(relay) => panic!("the relay started on a damaged file:\n{}", relay.log()),
        Err(log) => log,
    };
    assert!(log.contains(&file.display().to_string()), "{log}");
    assert!(log.contains("damaged"), "{log}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "{\"version\":1,\"webhooks\":{",
        "the file is left for the operator"
    );
}

#[test]
fn two_relays_cannot_share_a_state_directory() {
    let dir = TempDir::new("shared");
    let _first = Relay::start(&dir.0, &[]);
    let log = match Relay::try_start(&dir.0, &[]) {
        Ok(second) => panic!("a second relay started:\n{}", second.log()),
        Err(log) => log,
    };
    assert!(log.contains("another relay is already using"), "{log}");
    assert!(log.contains("--state-dir"), "{log}");
}

#[test]
fn an_address_in_use_names_the_flag_to_change() {
    let dir = TempDir::new("in-use");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_pullpilot"))
        .args(["relay", "--listen", &addr, "--state-dir"])
        .arg(&dir.0)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");
}
