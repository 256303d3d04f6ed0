//! `pullpilot listen --http` under slow and abusive clients, without Docker: many connections
//! from one address that send a request one byte at a time must not keep another client's
//! `GET /health` waiting, nor make the process grow.
//!
//! The attacker connects to 127.0.0.1 and the honest client to `::1` of the same dual-stack
//! socket, so the two count as different clients (std cannot pick a client's source address).

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;
use support::{TempDir, drip, timed_get, trickle};

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

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[test]
fn trickling_connections_from_one_address_do_not_starve_the_receiver() {
    let data = TempDir::new("pp-receiver", "trickle");
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
