//! `pullpilot listen` against a scripted relay and over its local receiver, without Docker:
//! passes fail (no engine), which listen must survive, and the log says when each starts.
//!
//! The scripted relay speaks the relay protocol v1 from literal frames and checks the client's
//! signature with ring directly, so the client can be swapped for any implementation of the
//! protocol and a mistake shared by pullpilot's client and relay cannot hide.

use std::io::{BufRead as _, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tungstenite::protocol::{CloseFrame, Role, frame::coding::CloseCode};
use tungstenite::{Message, WebSocket};

mod support;
use support::TempDir;

/// A running `pullpilot listen` whose log lines are collected.
struct Listen {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Listen {
    fn start(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Listen {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pullpilot"));
        cmd.arg("listen")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PP_DATA_DIR", data_dir)
            .env("PP_SCOPE", "all")
            .env("PP_LOG_LEVEL", "debug")
            // Nothing answers here: every pass fails fast, and listen must carry on.
            .env("DOCKER_HOST", "unix:///nonexistent/pullpilot-test.sock")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Listen { child, log }
    }

    fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits until `needle` has appeared `n` times in the log.
    fn wait_for(&self, needle: &str, n: usize, within: Duration) {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if self.count(needle) >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{needle:?} did not appear {n} time(s) within {within:?}; log:\n{}",
            self.lines().join("\n")
        );
    }

    fn terminate(mut self) -> (i32, Vec<String>) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (status.code().unwrap_or(-1), self.lines());
            }
            assert!(Instant::now() < until, "listen did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the scripted relay saw.
#[derive(Debug)]
enum Seen {
    Provision {
        content_type: String,
        body: serde_json::Value,
    },
    Listen {
        path: String,
        socket: Box<WebSocket<TcpStream>>,
    },
}

/// A relay that answers provisioning with fresh ids and hands each WebSocket to the test.
struct ScriptedRelay {
    base: String,
    seen: Receiver<Seen>,
    /// Webhook ids whose listen upgrade is answered with 404, as a relay that forgot them.
    forgotten: Arc<Mutex<Vec<String>>>,
}

impl ScriptedRelay {
    fn start() -> ScriptedRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        let origin = base.clone();
        let forgotten = Arc::new(Mutex::new(Vec::new()));
        let forgot = forgotten.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                n += 1;
                if serve(stream, &origin, n, &tx, &forgot).is_err() {
                    return;
                }
            }
        });
        ScriptedRelay {
            base,
            seen: rx,
            forgotten,
        }
    }

    fn forget(&self, webhook_id: &str) {
        self.forgotten.lock().unwrap().push(webhook_id.to_string());
    }

    fn next(&self) -> Seen {
        self.seen
            .recv_timeout(Duration::from_secs(20))
            .expect("listen did not contact the relay")
    }
}

/// Reads one request head (byte by byte: the upgrade's frames must stay in the socket).
fn read_head(stream: &mut TcpStream) -> (String, String, Vec<(String, String)>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let text = String::from_utf8(head).unwrap();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap().split(' ');
    let method = first.next().unwrap().to_string();
    let path = first.next().unwrap().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (method, path, headers)
}

fn serve(
    mut stream: TcpStream,
    origin: &str,
    n: u32,
    tx: &Sender<Seen>,
    forgotten: &Mutex<Vec<String>>,
) -> Result<(), ()> {
    let (method, path, headers) = read_head(&mut stream);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if path == "/v1/provision" && method == "POST" {
        let length: usize = header("content-length").parse().unwrap();
        let mut body = vec![0; length];
        stream.read_exact(&mut body).unwrap();
        let id = format!("wh_{n:064x}");
        let ws_origin = origin.replacen("http://", "ws://", 1);
        let answer = format!(
            r#"{{"webhookId":"{id}","pokeUrl":"{origin}/v1/poke/{id}","listenUrl":"{ws_origin}/v1/listen/{id}","ttlDays":180}}"#
        );
        write!(
            stream,
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        let body = serde_json::from_slice(&body).expect("the provision body is JSON");
        return tx
            .send(Seen::Provision {
                content_type: header("content-type"),
                body,
            })
            .map_err(|_| ());
    }
    let forgotten = path
        .strip_prefix("/v1/listen/")
        .is_some_and(|id| forgotten.lock().unwrap().iter().any(|f| f == id));
    if forgotten {
        let _ = write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 15\r\n\r\nunknown webhook"
        );
        return Ok(());
    }
    if path.starts_with("/v1/listen/") && header("upgrade").eq_ignore_ascii_case("websocket") {
        let accept =
            tungstenite::handshake::derive_accept_key(header("sec-websocket-key").as_bytes());
        write!(
            stream,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .unwrap();
        let socket = WebSocket::from_raw_socket(stream, Role::Server, None);
        return tx
            .send(Seen::Listen {
                path,
                socket: Box::new(socket),
            })
            .map_err(|_| ());
    }
    let _ = write!(
        stream,
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    );
    Ok(())
}

fn provisioned(relay: &ScriptedRelay) -> String {
    match relay.next() {
        Seen::Provision { content_type, body } => {
            assert!(
                content_type.starts_with("application/json"),
                "{content_type}"
            );
            let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["label", "pubkey"], "provision body keys");
            assert_eq!(body["label"], "pullpilot");
            let key = URL_SAFE_NO_PAD
                .decode(body["pubkey"].as_str().unwrap())
                .expect("pubkey is unpadded base64url");
            assert_eq!(key.len(), 32);
            body["pubkey"].as_str().unwrap().to_string()
        }
        other @ Seen::Listen { .. } => panic!("expected provisioning first, got {other:?}"),
    }
}

fn listened(relay: &ScriptedRelay) -> (String, WebSocket<TcpStream>) {
    match relay.next() {
        Seen::Listen { path, socket } => (path, *socket),
        other @ Seen::Provision { .. } => panic!("expected a listen socket, got {other:?}"),
    }
}

fn read_text(ws: &mut WebSocket<TcpStream>) -> String {
    loop {
        match ws.read().expect("the client closed the socket") {
            Message::Text(t) => return t.as_str().to_string(),
            Message::Close(f) => panic!("the client closed: {f:?}"),
            _ => {}
        }
    }
}

/// The hello/auth/ready exchange with literal frames; returns the socket, authenticated.
fn authenticate(ws: &mut WebSocket<TcpStream>, webhook_id: &str, pubkey: &str) {
    let challenge = [0x5au8; 32];
    let hello = format!(
        r#"{{"type":"hello","v":1,"challenge":"{}","exp":{}}}"#,
        URL_SAFE_NO_PAD.encode(challenge),
        4_000_000_000u64
    );
    ws.send(Message::text(hello)).unwrap();
    let auth: serde_json::Value = serde_json::from_str(&read_text(ws)).unwrap();
    let keys: Vec<&String> = auth.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["sig", "type"], "auth frame keys");
    assert_eq!(auth["type"], "auth");
    let sig = URL_SAFE_NO_PAD
        .decode(auth["sig"].as_str().unwrap())
        .unwrap();
    let mut message = b"pullpilot-webhook-relay/v1".to_vec();
    message.extend_from_slice(webhook_id.as_bytes());
    message.extend_from_slice(&challenge);
    let key = URL_SAFE_NO_PAD.decode(pubkey).unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
        .verify(&message, &sig)
        .expect("the auth signature verifies over context ‖ id ‖ challenge");
    ws.send(Message::text(r#"{"type":"ready"}"#)).unwrap();
}

fn id_from(path: &str) -> String {
    path.strip_prefix("/v1/listen/").unwrap().to_string()
}

const FAST: [&str; 8] = [
    "--debounce",
    "300ms",
    "--min-interval",
    "1s",
    "--ping-interval",
    "1s",
    "--read-deadline",
    "3s",
];

#[test]
fn listen_speaks_the_relay_protocol() {
    let relay = ScriptedRelay::start();
    let data = TempDir::new("pp-listen", "protocol");
    // A directory pullpilot creates itself (0700); an existing one is never chmodded.
    let data_dir = data.path.join("data");
    let listen = Listen::start(
        &data_dir,
        &FAST,
        &[
            ("PP_WEBHOOK", "true"),
            ("PP_WEBHOOK_URL", &format!("{}/", relay.base)),
        ],
    );
    let pubkey = provisioned(&relay);
    let (path, mut ws) = listened(&relay);
    let id = id_from(&path);
    assert!(id.starts_with("wh_"), "{path}");
    authenticate(&mut ws, &id, &pubkey);
    listen.wait_for("Connected to the relay", 1, Duration::from_secs(10));

    // Heartbeat: the literal text "ping", answered with "pong".
    assert_eq!(read_text(&mut ws), "ping");
    ws.send(Message::text("pong")).unwrap();

    // A poke becomes one pass after the debounce; the startup pass came first.
    listen.wait_for(
        "Starting a pass (listen started)",
        1,
        Duration::from_secs(10),
    );
    ws.send(Message::text(
        r#"{"type":"poke","v":1,"id":"0123456789abcdef0123456789abcdef","ts":"2026-11-24T10:00:00Z","reason":"ci"}"#,
    ))
    .unwrap();
    listen.wait_for("Starting a pass (1 poke)", 1, Duration::from_secs(10));
    listen.wait_for("The pass failed", 2, Duration::from_secs(10));

    // Files: the identity and the registration are the owner's only.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data_dir), 0o700);
    assert_eq!(mode(&data_dir.join("ed25519.key")), 0o600);
    assert_eq!(
        std::fs::read(data_dir.join("ed25519.key")).unwrap().len(),
        32
    );
    assert_eq!(mode(&data_dir.join("webhook.json")), 0o600);

    // A close reason alone never re-registers: the reference relay closes late auths with
    // `1008 unknown webhook` for a webhook it still knows. listen reconnects with the same id.
    ws.close(Some(CloseFrame {
        code: CloseCode::Policy,
        reason: "unknown webhook".into(),
    }))
    .unwrap();
    let _ = ws.flush();
    let (same, mut ws2) = listened(&relay);
    assert_eq!(
        same, path,
        "a close reason must not make listen register again"
    );
    authenticate(&mut ws2, &id, &pubkey);
    listen.wait_for("Lost the relay connection", 1, Duration::from_secs(10));

    // The relay forgot the webhook (404 to the upgrade): listen registers again, same key.
    relay.forget(&id);
    ws2.close(None).unwrap();
    let _ = ws2.flush();
    let again = provisioned(&relay);
    assert_eq!(again, pubkey, "re-provisioning keeps the identity");
    let (path2, mut ws3) = listened(&relay);
    let id2 = id_from(&path2);
    assert_ne!(id2, id);
    authenticate(&mut ws3, &id2, &pubkey);
    listen.wait_for("no longer knows", 1, Duration::from_secs(10));
    assert!(
        listen
            .lines()
            .iter()
            .any(|l| l.contains("listen --show-url")),
        "the log says where to see the new URL"
    );

    // A silent relay is noticed by the read deadline, and listen reconnects.
    let (path3, mut ws4) = listened(&relay);
    assert_eq!(path3, path2, "a reconnect reuses the registration");
    authenticate(&mut ws4, &id2, &pubkey);

    // Poke URLs never appear in the log in full.
    let (code, lines) = listen.terminate();
    assert_eq!(code, 0, "SIGTERM is a clean stop");
    assert!(lines.iter().any(|l| l.contains("listen stopped")));
    for line in &lines {
        assert!(
            !line.contains(&id) && !line.contains(&id2),
            "a full webhook id was logged: {line}"
        );
    }
    drop(ws);
    drop(ws2);
    drop(ws3);

    // `--show-url` is the one place the URL is shown.
    let shown = Command::new(env!("CARGO_BIN_EXE_pullpilot"))
        .args(["listen", "--show-url"])
        .env_clear()
        .env("PP_DATA_DIR", &data_dir)
        .output()
        .unwrap();
    assert!(shown.status.success());
    let stdout = String::from_utf8_lossy(&shown.stdout);
    assert!(
        stdout.contains(&format!("{}/v1/poke/{id2}", relay.base)),
        "{stdout}"
    );
}

#[test]
fn a_damaged_identity_is_an_error_not_a_new_identity() {
    let data = TempDir::new("pp-listen", "damaged");
    std::fs::write(data.path.join("ed25519.key"), b"not a key").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pullpilot"))
        .arg("listen")
        .env_clear()
        .env("PP_DATA_DIR", &data.path)
        .env("PP_WEBHOOK", "true")
        .env("PP_WEBHOOK_URL", "http://127.0.0.1:9")
        .env("PP_SCOPE", "all")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is damaged (9 bytes, expected 32)"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(data.path.join("ed25519.key")).unwrap(),
        b"not a key"
    );
}

/// Runs `pullpilot listen` with a clean environment (plus `PP_SCOPE=all` unless `env` sets
/// it) for at most 15 s; returns its exit code (None: still running, so killed) and stderr.
fn run_briefly(
    data_dir: &Path,
    cwd: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pullpilot"));
    cmd.arg("listen")
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PP_DATA_DIR", data_dir)
        .env("DOCKER_HOST", "unix:///nonexistent/pullpilot-test.sock");
    if !env.iter().any(|(k, _)| *k == "PP_SCOPE") {
        cmd.env("PP_SCOPE", "all");
    }
    let mut child = cmd
        .envs(env.iter().copied().filter(|(_, v)| !v.is_empty()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let until = Instant::now() + Duration::from_secs(15);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (code, reader.join().unwrap())
}

#[test]
fn bad_listen_settings_are_refused_with_the_fix() {
    let data = TempDir::new("pp-listen", "settings");
    let here = TempDir::new("pp-listen", "settings-cwd");
    let run = |args: &[&str], env: &[(&str, &str)]| run_briefly(&data.path, &here.path, args, env);
    let refused = |args: &[&str], env: &[(&str, &str)], needles: &[&str]| {
        let (code, err) = run(args, env);
        assert_eq!(
            code,
            Some(2),
            "{args:?} {env:?} was not refused at start: {err}"
        );
        for needle in needles {
            assert!(err.contains(needle), "{env:?}: {needle:?} missing in {err}");
        }
        err
    };
    refused(&["--http", "127.0.0.1:0"], &[], &["PP_WEBHOOK_SECRET"]);
    refused(
        &[],
        &[("PP_SCHEDULE", "0 25 * * *")],
        &["PP_SCHEDULE", "hour"],
    );
    refused(&[], &[("PP_WEBHOOK", "true")], &["PP_WEBHOOK_URL"]);
    refused(&["--show-url"], &[], &["no relay registration"]);

    // Settings a pass uses are checked before listen waits: each of these used to make every
    // pass fail (or retry forever) while listen looked healthy.
    refused(&[], &[("PP_NOTIFY_URL", "garbage")], &["PP_NOTIFY_URL"]);
    refused(
        &[],
        &[("PP_WEBHOOK", "true"), ("PP_WEBHOOK_URL", "https://")],
        &["PP_WEBHOOK_URL", "no host"],
    );
    let err = refused(
        &[],
        &[
            ("PP_WEBHOOK", "true"),
            ("PP_WEBHOOK_URL", "https://ops:hunter2hunter2@:99"),
        ],
        &["PP_WEBHOOK_URL", "***@"],
    );
    assert!(!err.contains("hunter2"), "the password was shown: {err}");
    refused(
        &[],
        &[
            ("PP_WEBHOOK", "true"),
            ("PP_WEBHOOK_URL", "https://relay.example:70000"),
        ],
        &["PP_WEBHOOK_URL", "port"],
    );
    refused(&[], &[("DOCKER_HOST", "ftp://engine")], &["DOCKER_HOST"]);
    refused(
        &[],
        &[("PP_METRICS_FILE", "/nonexistent/pullpilot/metrics.prom")],
        &["PP_METRICS_FILE", "does not exist"],
    );
    let not_a_dir = here.path.join("file");
    std::fs::write(&not_a_dir, b"").unwrap();
    refused(
        &[],
        &[("PP_DATA_DIR", not_a_dir.join("data").to_str().unwrap())],
        &["PP_DATA_DIR"],
    );
    // No PP_SCOPE, and no compose project in the working directory.
    refused(&[], &[("PP_SCOPE", "")], &["PP_SCOPE", "compose"]);

    // A secret with surrounding whitespace is refused rather than trimmed: callers could
    // never send it, and a silently changed secret confuses more than it helps.
    let err = refused(
        &["--http", "127.0.0.1:0"],
        &[("PP_WEBHOOK_SECRET", "0123456789abcdef0123456789abcdef\n")],
        &["PP_WEBHOOK_SECRET", "whitespace"],
    );
    assert!(
        !err.contains("0123456789abcdef"),
        "the secret was shown: {err}"
    );
}

#[test]
fn webhook_url_userinfo_is_never_logged() {
    let relay = ScriptedRelay::start();
    let data = TempDir::new("pp-listen", "userinfo");
    let base = relay
        .base
        .replacen("http://", "http://ops:hunter2hunter2@", 1);
    let listen = Listen::start(
        &data.path,
        &FAST,
        &[("PP_WEBHOOK", "true"), ("PP_WEBHOOK_URL", &base)],
    );
    let pubkey = provisioned(&relay);
    let (path, mut ws) = listened(&relay);
    authenticate(&mut ws, &id_from(&path), &pubkey);
    listen.wait_for("Connected to the relay", 1, Duration::from_secs(10));
    // The relay forgets the webhook: registering again shows the URL redacted too.
    relay.forget(&id_from(&path));
    ws.close(None).unwrap();
    let _ = ws.flush();
    listen.wait_for("no longer knows", 1, Duration::from_secs(10));
    listen.wait_for("Registered this host", 2, Duration::from_secs(10));
    let (_, mut lines) = listen.terminate();

    // Registration fails and is retried: each retry's error leaves the userinfo out.
    let dead = format!("http://ops:hunter2hunter2@127.0.0.1:{}", free_port());
    let data2 = TempDir::new("pp-listen", "userinfo-dead");
    let listen = Listen::start(
        &data2.path,
        &FAST,
        &[("PP_WEBHOOK", "true"), ("PP_WEBHOOK_URL", &dead)],
    );
    listen.wait_for("Could not register", 2, Duration::from_secs(15));
    lines.extend(listen.terminate().1);
    for line in &lines {
        assert!(!line.contains("hunter2"), "userinfo was logged: {line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("http://***@127.0.0.1")),
        "{lines:#?}"
    );
}

#[test]
fn a_hostile_relay_cannot_flood_or_forge_the_log() {
    let relay = ScriptedRelay::start();
    let data = TempDir::new("pp-listen", "hostile");
    let listen = Listen::start(
        &data.path,
        &FAST,
        &[("PP_WEBHOOK", "true"), ("PP_WEBHOOK_URL", &relay.base)],
    );
    let pubkey = provisioned(&relay);
    let (path, mut ws) = listened(&relay);
    authenticate(&mut ws, &id_from(&path), &pubkey);
    listen.wait_for("Connected to the relay", 1, Duration::from_secs(10));
    let before: usize = listen.lines().iter().map(|l| l.len() + 1).sum();

    let forged = "\n2026-12-05T03:00:00Z ERROR FORGED line\u{1b}[2K";
    let reason = format!("{forged}{}", "x".repeat(8000));
    let poke = serde_json::json!({
        "type": "poke", "v": 1, "id": "0123456789abcdef0123456789abcdef",
        "ts": "2026-11-24T10:00:00Z", "reason": reason,
    })
    .to_string();
    for _ in 0..2000 {
        ws.send(Message::text(poke.clone())).unwrap();
    }
    ws.send(Message::text(
        r#"{"type":"hello","v":1,"challenge":"a\nFORGED","exp":1}"#,
    ))
    .unwrap();
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye\nFORGED close".into(),
    }))
    .unwrap();
    let _ = ws.flush();
    listen.wait_for("FORGED close", 1, Duration::from_secs(30));
    let lines = listen.lines();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum::<usize>() - before;
    assert!(bytes < 64 * 1024, "2000 pokes wrote {bytes} bytes of log");
    assert!(
        listen.count("passed on a poke") <= 10,
        "poke lines are not throttled"
    );
    for line in &lines {
        assert!(line.chars().count() <= 1500, "a {}-char line", line.len());
        assert!(!line.starts_with("2026-12-05T03:00:00Z"), "forged: {line}");
        assert!(!line.starts_with("FORGED"), "forged: {line}");
        assert!(!line.contains('\u{1b}'), "raw escape: {line:?}");
    }
    assert!(
        lines.iter().any(|l| l.contains(r"bye\nFORGED close")),
        "the close reason is shown, escaped: {lines:#?}"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP request to the local receiver; returns the status code.
fn call(port: u16, method: &str, path: &str, auth: Option<&str>) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[test]
fn the_local_receiver_needs_the_secret() {
    let data = TempDir::new("pp-listen", "receiver");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut args = FAST.to_vec();
    args.extend(["--http", &addr]);
    let secret = "0123456789abcdef0123456789abcdef";
    let listen = Listen::start(&data.path, &args, &[("PP_WEBHOOK_SECRET", secret)]);
    listen.wait_for("Accepting webhook calls", 1, Duration::from_secs(10));
    listen.wait_for("The pass failed", 1, Duration::from_secs(10));

    assert_eq!(call(port, "GET", "/health", None), 200);
    assert_eq!(call(port, "POST", "/notify", None), 401);
    assert_eq!(call(port, "POST", "/notify", Some("Bearer wrong")), 401);
    assert_eq!(
        call(
            port,
            "POST",
            "/notify/web",
            Some(&format!("Bearer {secret}x"))
        ),
        401
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        listen.count("Starting a pass"),
        1,
        "refused calls start no pass"
    );

    assert_eq!(
        call(port, "POST", "/notify", Some(&format!("Bearer {secret}"))),
        202
    );
    listen.wait_for("Starting a pass (1 poke)", 1, Duration::from_secs(10));
    assert_eq!(
        call(
            port,
            "POST",
            "/notify/web",
            Some(&format!("Bearer {secret}"))
        ),
        202
    );
    listen.wait_for(
        "Starting a pass for web (1 poke)",
        1,
        Duration::from_secs(10),
    );
    assert!(
        listen.lines().iter().all(|l| !l.contains(secret)),
        "the secret was logged"
    );
    let (code, _) = listen.terminate();
    assert_eq!(code, 0);
}
