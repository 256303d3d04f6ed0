//! Helpers shared by the Docker-free integration test binaries (each `tests/*.rs` is its own
//! crate and includes this module with `mod support;`): temporary directories and the slow-
//! client attack used against the relay and the local receiver.

// Each binary uses only some of these.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A temporary directory removed when dropped; `path` is where the test works.
pub(crate) struct TempDir {
    pub(crate) path: PathBuf,
    guard: tempfile::TempDir,
}

impl TempDir {
    /// A new, empty directory (mode 0700) named after `prefix` and `name`.
    pub(crate) fn new(prefix: &str, name: &str) -> TempDir {
        let guard = tempfile::Builder::new()
            .prefix(&format!("{prefix}-{name}-"))
            .tempdir()
            .unwrap();
        TempDir {
            path: guard.path().to_path_buf(),
            guard,
        }
    }

    /// A path inside a new temporary directory that does not exist yet, for a program that
    /// must create its directory itself.
    pub(crate) fn missing(prefix: &str, name: &str) -> TempDir {
        let dir = TempDir::new(prefix, name);
        TempDir {
            path: dir.path.join(name),
            guard: dir.guard,
        }
    }
}

/// `count` connections to `addr` that each sent the first byte of a request and nothing more.
pub(crate) fn trickle(addr: &str, count: usize) -> Vec<TcpStream> {
    let addr = addr.parse().unwrap();
    (0..count)
        .filter_map(|_| {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
            let _ = s.write_all(b"G");
            Some(s)
        })
        .collect()
}

/// One more byte on each connection still open: each read sees progress, so a per-read
/// timeout alone would never fire.
pub(crate) fn drip(sockets: &mut [TcpStream]) {
    for s in sockets {
        let _ = s.write_all(b"E");
    }
}

/// `GET path` on a fresh connection: the status and how long the answer took.
pub(crate) fn timed_get(addr: &str, path: &str) -> (u16, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let took = started.elapsed();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, took)
}
