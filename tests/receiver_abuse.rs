//! `pullpilot listen --http` under slow and abusive clients, without Docker: many connections
//! from one address that send a request one byte at a time must not keep another client's
//! `GET /health` waiting, nor make the process grow.
//!
//! The attacker connects to 127.0.0.1 and the honest client to `::1` of the same dual-stack
//! socket, so the two count as different clients (std cannot pick a client's source address).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fresh directory (0700), deleted when this drops.
struct TempDir {
    path: PathBuf,
    _guard: tempfile::TempDir,
}

impl TempDir {
    fn new(name: &str) -> TempDir {
        let guard = tempfile::Builder::new()
            .prefix(&format!("pp-receiver-{name}-"))
            .tempdir()
            .unwrap();
        let path = guard.path().to_path_buf();
        TempDir {
            path,
            _guard: guard,
        }
    }
}

struct Listen {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Listen {
    fn start(data: &TempDir, http: &str) -> Listen {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pullpilot"))
            .args([
                "listen",
                "--http",
                http,
                "--debounce",
                "300ms",
                "--min-interval",
                "1s",
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PP_DATA_DIR", &data.path)
            .env("PP_SCOPE", "all")
            .env("PP_WEBHOOK_SECRET", "0123456789abcdef0123456789abcdef")
            .env("DOCKER_HOST", "unix:///nonexistent/pullpilot-test.sock")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let listen = Listen { child, log };
        let until = Instant::now() + Duration::from_secs(15);
        while !listen.lines().contains("Accepting webhook calls") {
            assert!(
                Instant::now() < until,
                "listen did not start:\n{}",
                listen.lines()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        listen
    }

    fn lines(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("[::]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `count` connections to `addr` that each sent the first byte of a request and nothing more.
fn trickle(addr: &str, count: usize) -> Vec<TcpStream> {
    (0..count)
        .filter_map(|_| {
            let mut s =
                TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).ok()?;
            let _ = s.write_all(b"G");
            Some(s)
        })
        .collect()
}

/// One more byte on each connection still open: each read sees progress, so a per-read
/// timeout alone would never fire.
fn drip(sockets: &mut [TcpStream]) {
    for s in sockets {
        let _ = s.write_all(b"E");
    }
}

/// `GET path` on a fresh connection: the status and how long the answer took.
fn timed_get(addr: &str, path: &str) -> (u16, Duration) {
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

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[test]
fn trickling_connections_from_one_address_do_not_starve_the_receiver() {
    let data = TempDir::new("trickle");
    let port = free_port();
    let listen = Listen::start(&data, &format!("[::]:{port}"));
    let attacker = format!("127.0.0.1:{port}");
    let honest = format!("[::1]:{port}");
    assert_eq!(timed_get(&honest, "/health").0, 200);

    let mut sockets = trickle(&attacker, 200);
    assert!(
        sockets.len() >= 190,
        "only {} connections opened",
        sockets.len()
    );
    let mut times = Vec::new();
    for _ in 0..5 {
        drip(&mut sockets);
        let (status, took) = timed_get(&honest, "/health");
        assert_eq!(
            status,
            200,
            "GET /health during the attack ({took:?})\n{}",
            listen.lines()
        );
        times.push(took);
        std::thread::sleep(Duration::from_millis(200));
    }
    let rss = listen.rss_kib();
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "receiver under 200 trickling connections: GET /health {times:?}, median {:?}; RSS {rss} KiB",
            median(times.clone())
        );
    }
    assert!(
        median(times.clone()) < Duration::from_millis(100),
        "GET /health took {times:?}"
    );
    assert!(rss < 64 * 1024, "RSS {rss} KiB");
    drop(sockets);
}
