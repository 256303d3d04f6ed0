//! Hostile input to the real binary, without Docker: environment bytes that are not UTF-8,
//! durations past every clock, and a stdout whose reader has gone. Each must end in the
//! documented exit status with a message naming the thing (or quietly, for the closed pipe),
//! never in a panic.
//!
//! Where a command needs a Docker daemon, a few lines below play one on a unix socket: it
//! answers the handful of read-only calls `plan` makes, from the fixtures under
//! `src/docker/testdata/`.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::os::unix::ffi::OsStringExt as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod support;
use support::TempDir;

const INSPECT: &str = include_str!("../src/docker/testdata/inspect_compose_healthcheck.json");
const IMAGE: &str = include_str!("../src/docker/testdata/image_app.json");
const INFO: &str = include_str!("../src/docker/testdata/info_classic.json");

/// A value no clock survives being added to: `u64::MAX` seconds.
const HUGE: &str = "18446744073709551615";

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn unique(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "pp-hostile-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A Docker daemon that knows one container (with `labels` on it), or none.
struct FakeDocker {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeDocker {
    fn start(container_labels: Option<&[(&str, &str)]>) -> FakeDocker {
        let socket = unique("docker.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let (list, inspect) = match container_labels {
            None => ("[]".to_string(), String::new()),
            Some(pairs) => {
                let mut inspect: serde_json::Value = serde_json::from_str(INSPECT).unwrap();
                let labels = inspect["Config"]["Labels"].as_object_mut().unwrap();
                for (k, v) in pairs {
                    labels.insert((*k).to_string(), serde_json::Value::from(*v));
                }
                let summary = serde_json::json!([{
                    "Id": inspect["Id"],
                    "Names": [inspect["Name"]],
                    "Image": inspect["Config"]["Image"],
                    "ImageID": inspect["Image"],
                    "Labels": inspect["Config"]["Labels"],
                    "State": "running",
                }]);
                (summary.to_string(), inspect.to_string())
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    serve(&conn, &list, &inspect, &seen);
                }
            })
        };
        FakeDocker {
            socket,
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

impl Drop for FakeDocker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.socket);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Answers one request (GETs only, no body) and closes the connection.
fn serve(mut conn: &UnixStream, list: &str, inspect: &str, seen: &Mutex<Vec<String>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(conn);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    seen.lock().unwrap().push(target.clone());
    let path = target.split('?').next().unwrap_or("");
    // Strip the `/v1.41` prefix once the version is negotiated.
    let path = match path.strip_prefix("/v") {
        Some(rest) => rest.find('/').map_or(path, |i| &rest[i..]),
        None => path,
    };
    let id = serde_json::from_str::<serde_json::Value>(INSPECT).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = match path {
        "/_ping" => (200, "OK".to_string()),
        "/version" => (
            200,
            r#"{"Version":"99.0.0","ApiVersion":"1.41","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64"}"#
                .to_string(),
        ),
        "/info" => (200, INFO.to_string()),
        "/containers/json" => (200, list.to_string()),
        p if p == format!("/containers/{id}/json") && !inspect.is_empty() => {
            (200, inspect.to_string())
        }
        p if p.starts_with("/images/") && p.ends_with("/json") && !inspect.is_empty() => {
            (200, IMAGE.to_string())
        }
        _ => (404, r#"{"message":"No such object"}"#.to_string()),
    };
    let reason = if status == 200 { "OK" } else { "Not Found" };
    let _ = write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// No panic message, and the exit status `code`.
    fn assert_ends(&self, code: i32) {
        assert!(
            !self.stderr.contains("panicked"),
            "the binary panicked: {}",
            self.stderr
        );
        assert_eq!(
            self.code(),
            Some(code),
            "exit status; stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
    }
}

/// Runs the binary in an empty environment plus `env` (raw bytes allowed), with a data
/// directory of its own and `DOCKER_HOST` at `docker` (or at a socket nobody listens on).
/// `stdout` replaces the captured stdout when given. Fails the test after 60 s.
fn run(
    args: &[&str],
    env: &[(OsString, OsString)],
    docker: Option<&FakeDocker>,
    stdout: Option<Stdio>,
) -> Ran {
    run_with_state(args, env, docker, stdout, None)
}

/// [`run`], with `state` as the data directory's `state.json`.
fn run_with_state(
    args: &[&str],
    env: &[(OsString, OsString)],
    docker: Option<&FakeDocker>,
    stdout: Option<Stdio>,
    state: Option<&str>,
) -> Ran {
    let data = TempDir::new("pp-hostile", "data");
    if let Some(state) = state {
        std::fs::write(data.path.join("state.json"), state).unwrap();
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pullpilot"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PP_DATA_DIR", &data.path)
        .env("PP_SCOPE", "all")
        .env(
            "DOCKER_HOST",
            docker.map_or_else(
                || format!("unix://{}", unique("nobody.sock").display()),
                FakeDocker::host,
            ),
        )
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let captured = stdout.is_none();
    cmd.stdout(stdout.unwrap_or_else(Stdio::piped));
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = captured.then(|| reader(Box::new(child.stdout.take().unwrap())));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pullpilot {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        status,
        stdout: out.map(|t| t.join().unwrap()).unwrap_or_default(),
        stderr: err.join().unwrap(),
    }
}

fn var(name: &[u8], value: &[u8]) -> (OsString, OsString) {
    (
        OsString::from_vec(name.to_vec()),
        OsString::from_vec(value.to_vec()),
    )
}

#[test]
fn variables_pullpilot_does_not_read_may_hold_any_bytes() {
    let docker = FakeDocker::start(None);
    let latin1 = [
        var(b"X", b"\xff"),
        var(b"GREETING", b"gr\xfc\xdfe"),
        var(b"NAME_\xe9", b"value"),
    ];
    let ran = run(&["plan"], &latin1, Some(&docker), None);
    ran.assert_ends(0);
    assert!(
        ran.stdout.contains("No containers in scope."),
        "{}",
        ran.stdout
    );
}

#[test]
fn a_pp_variable_that_is_not_utf8_is_a_usage_error_naming_it() {
    let ran = run(
        &["plan"],
        &[var(b"PP_NOTIFY_URL", b"ntfy://t\xf6ken@host")],
        None,
        None,
    );
    ran.assert_ends(2);
    assert!(
        ran.stderr
            .contains("PP_NOTIFY_URL is not valid UTF-8 text (byte 9 of its value is not)"),
        "{}",
        ran.stderr
    );
    // The value may be a secret: not even its valid part is shown.
    assert!(!ran.stderr.contains("ntfy://"), "{}", ran.stderr);

    let ran = run(&["plan"], &[var(b"PP_S\xd6AK", b"1h")], None, None);
    ran.assert_ends(2);
    assert!(
        ran.stderr
            .contains("PP_S\u{fffd}AK has a name that is not valid UTF-8"),
        "{}",
        ran.stderr
    );
}

#[test]
fn durations_past_ten_years_are_invalid_values() {
    for (args, env, names) in [
        (
            vec!["plan"],
            vec![var(b"PP_SOAK", HUGE.as_bytes())],
            "PP_SOAK=",
        ),
        (vec!["plan"], vec![var(b"PP_JITTER", b"11y")], "PP_JITTER="),
        (
            vec!["plan"],
            vec![var(b"PP_HOOK_TIMEOUT", b"300000000000y")],
            "PP_HOOK_TIMEOUT=",
        ),
        (vec!["--soak", HUGE, "plan"], vec![], "--soak "),
        (vec!["listen", "--debounce", HUGE], vec![], "--debounce"),
        (
            vec!["listen", "--min-interval", HUGE],
            vec![],
            "--min-interval",
        ),
        (
            vec!["relay", "--prune-after", "11y"],
            vec![],
            "--prune-after",
        ),
    ] {
        let ran = run(&args, &env, None, None);
        ran.assert_ends(2);
        assert!(
            ran.stderr.contains(names) && ran.stderr.contains("10 years"),
            "{args:?}: {}",
            ran.stderr
        );
    }
}

#[test]
fn a_soak_label_past_ten_years_is_an_invalid_label() {
    let docker = FakeDocker::start(Some(&[("io.pullpilot.soak", "300000000000y")]));
    let ran = run(&["plan"], &[], Some(&docker), None);
    ran.assert_ends(0);
    assert!(
        ran.stdout
            .contains("invalid label: label io.pullpilot.soak")
            && ran.stdout.contains("up to 10 years"),
        "{}\n{}\nrequests: {:?}",
        ran.stdout,
        ran.stderr,
        docker.seen.lock().unwrap()
    );
}

#[test]
fn a_closed_stdout_ends_quietly_with_the_usual_status() {
    // `pullpilot plan | head -1` with `head` already gone: the reader is closed before
    // pullpilot writes a byte, so the write meets EPIPE every time.
    let docker = FakeDocker::start(Some(&[("io.pullpilot.soak", "300000000000y")]));
    for args in [&["plan"][..], &["plan", "--json"][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let ran = run(args, &[], Some(&docker), Some(Stdio::from(writer)));
        ran.assert_ends(0);
        assert!(
            !ran.stderr.contains("error"),
            "{args:?}: a closed pipe is no error: {}",
            ran.stderr
        );
    }
    // The same plan with a reader, to show it does print something that could fail.
    let ran = run(&["plan"], &[], Some(&docker), None);
    ran.assert_ends(0);
    assert!(ran.stdout.contains("invalid label"), "{}", ran.stdout);
}

#[test]
fn a_soak_clock_started_in_year_9999_is_shown_not_a_panic() {
    // A hand-edited state file: the soak would end after the last time RFC 3339 can show.
    let state = r#"{"version":1,"containers":{"shop/web":{"candidate":{
        "digest":"sha256:7777777777777777777777777777777777777777777777777777777777777777",
        "first_seen":"9999-12-31T23:00:00Z"}}}}"#;
    let docker = FakeDocker::start(Some(&[("io.pullpilot.soak", "2h")]));
    let ran = run_with_state(&["status"], &[], Some(&docker), None, Some(state));
    ran.assert_ends(0);
    assert!(
        ran.stdout.contains("9999-12-31T23:59:59Z"),
        "{}\n{}",
        ran.stdout,
        ran.stderr
    );
    let ran = run_with_state(&["status", "--json"], &[], Some(&docker), None, Some(state));
    ran.assert_ends(0);
}
