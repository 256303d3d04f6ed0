//! `pullpilot listen` against a scripted relay and over its local receiver, without Docker:
//! passes fail (no engine), which listen must survive, and the log says when each starts.
//!
//! The scripted relay speaks the relay protocol v1 from literal frames and checks the client's
//! signature with ring directly, so the client can be swapped for any implementation of the
//! protocol and a mistake shared by pullpilot's client and relay cannot hide.

use std::io::{BufRead as _, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tungstenite::protocol::{CloseFrame, Role, frame::coding::CloseCode};
use tungstenite::{Message, WebSocket};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "pp-listen-{name}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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
}

impl ScriptedRelay {
    fn start() -> ScriptedRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        let origin = base.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                n += 1;
                if serve(stream, &origin, n, &tx).is_err() {
                    return;
                }
            }
        });
        ScriptedRelay { base, seen: rx }
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

fn serve(mut stream: TcpStream, origin: &str, n: u32, tx: &Sender<Seen>) -> Result<(), ()> {
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
    let data = TempDir::new("protocol");
    // A directory pullpilot creates itself (0700); an existing one is never chmodded.
    let data_dir = data.0.join("data");
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

    // The relay forgot the webhook: listen registers again, with the same key.
    ws.close(Some(CloseFrame {
        code: CloseCode::Policy,
        reason: "unknown webhook".into(),
    }))
    .unwrap();
    let _ = ws.flush();
    let again = provisioned(&relay);
    assert_eq!(again, pubkey, "re-provisioning keeps the identity");
    let (path2, mut ws2) = listened(&relay);
    let id2 = id_from(&path2);
    assert_ne!(id2, id);
    authenticate(&mut ws2, &id2, &pubkey);
    listen.wait_for("no longer knows", 1, Duration::from_secs(10));
    assert!(
        listen
            .lines()
            .iter()
            .any(|l| l.contains("listen --show-url")),
        "the log says where to see the new URL"
    );

    // A silent relay is noticed by the read deadline, and listen reconnects.
    let (path3, mut ws3) = listened(&relay);
    assert_eq!(path3, path2, "a reconnect reuses the registration");
    authenticate(&mut ws3, &id2, &pubkey);

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
    let data = TempDir::new("damaged");
    std::fs::write(data.0.join("ed25519.key"), b"not a key").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pullpilot"))
        .arg("listen")
        .env_clear()
        .env("PP_DATA_DIR", &data.0)
        .env("PP_WEBHOOK", "true")
        .env("PP_WEBHOOK_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is damaged (9 bytes, expected 32)"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(data.0.join("ed25519.key")).unwrap(),
        b"not a key"
    );
}

#[test]
fn bad_listen_settings_are_refused_with_the_fix() {
    let data = TempDir::new("settings");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pullpilot"))
            .arg("listen")
            .args(args)
            .env_clear()
            .env("PP_DATA_DIR", &data.0)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&["--http", "127.0.0.1:0"], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("PP_WEBHOOK_SECRET"), "{err}");
    let (code, err) = run(&[], &[("PP_SCHEDULE", "0 25 * * *")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("PP_SCHEDULE") && err.contains("hour"), "{err}");
    let (code, err) = run(&[], &[("PP_WEBHOOK", "true")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("PP_WEBHOOK_URL"), "{err}");
    let (code, err) = run(&["--show-url"], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no relay registration"), "{err}");
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
    let data = TempDir::new("receiver");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut args = FAST.to_vec();
    args.extend(["--http", &addr]);
    let secret = "0123456789abcdef0123456789abcdef";
    let listen = Listen::start(&data.0, &args, &[("PP_WEBHOOK_SECRET", secret)]);
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
