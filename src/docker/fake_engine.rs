//! Test-only stand-in for a Docker daemon: a unix socket served by a thread that answers with
//! canned HTTP responses and records every request. No Docker, no network.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One request as the daemon would have seen it.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) method: String,
    /// Path and query, e.g. `/v1.41/containers/json?all=true`.
    pub(super) target: String,
    /// Header names in lowercase.
    pub(super) headers: Vec<(String, String)>,
}

impl Seen {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A canned answer.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: String,
}

impl Reply {
    pub(super) fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
        }
    }
}

type Route = dyn Fn(&Seen) -> Reply + Send + Sync;

pub(super) struct FakeEngine {
    pub(super) socket: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A socket path unique to this process and call.
pub(super) fn unique_socket_path() -> PathBuf {
    std::env::temp_dir().join(format!(
        "ppdock-fake-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

impl FakeEngine {
    /// Serves `route` on a fresh socket. `/version` and `/_ping` answer as an API 1.41 engine
    /// unless `route` handles them first (by returning a status other than 0).
    pub(super) fn start(route: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> FakeEngine {
        let socket = unique_socket_path();
        let listener = UnixListener::bind(&socket).expect("bind fake docker socket");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let route: Arc<Route> = Arc::new(route);
        let thread = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    serve(conn, &*route, &seen);
                }
            })
        };
        FakeEngine {
            socket,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub(super) fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub(super) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread can see the flag.
        let _ = UnixStream::connect(&self.socket);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The engine's answer to `/version` for API `api`.
pub(super) fn version_body(api: &str) -> String {
    format!(
        r#"{{"Version":"99.0.0","ApiVersion":"{api}","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64"}}"#
    )
}

fn serve(conn: UnixStream, route: &Route, seen: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone stream"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let request = Seen {
        method,
        target,
        headers,
    };
    seen.lock().expect("not poisoned").push(request.clone());
    let reply = route(&request);
    let reply = if reply.status == 0 && request.target.ends_with("/version") {
        Reply::json(200, &version_body("1.41"))
    } else {
        reply
    };
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.body.len()
    );
    let mut conn = conn;
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(reply.body.as_bytes());
    let _ = conn.flush();
}
