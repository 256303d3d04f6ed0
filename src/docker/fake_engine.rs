//! Test-only stand-in for a Docker daemon: a unix socket served by a thread that answers with
//! canned HTTP responses and records every request. No Docker, no network.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One request as the daemon would have seen it.
pub(super) use crate::testhttp::Recorded as Seen;
use crate::testhttp::{read_request, respond};

/// A canned answer.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
}

impl Reply {
    pub(super) fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    /// A binary answer (an archive).
    pub(super) fn bytes(status: u16, body: Vec<u8>) -> Reply {
        Reply { status, body }
    }
}

type FakeRoute = dyn Fn(&Seen) -> Reply + Send + Sync;

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
        let route: Arc<FakeRoute> = Arc::new(route);
        let thread = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    serve(&conn, &*route, &seen);
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

fn serve(conn: &UnixStream, route: &FakeRoute, seen: &Mutex<Vec<Seen>>) {
    let Some(request) = read_request(conn) else {
        return;
    };
    seen.lock().expect("not poisoned").push(request.clone());
    let reply = route(&request);
    let reply = if reply.status == 0 && request.target.ends_with("/version") {
        Reply::json(200, &version_body("1.41"))
    } else {
        reply
    };
    let headers = [("Content-Type".to_owned(), "application/json".to_owned())];
    respond(conn, reply.status, &headers, &reply.body, false);
}
