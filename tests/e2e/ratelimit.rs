//! A registry that answers 429 or 503 in the middle of `plan`'s fan-out (issue #14): the pass
//! still finishes, every check is right, and the requests pullpilot starts after the first
//! 429 or 503 reach the registry one at a time.
//!
//! Path: pullpilot → a counting relay (here) → [`FaultProxy`] → the bed's open registry. The
//! relay holds every answer but the overload [`HOLD`] before passing it on, so the requests
//! admitted before pullpilot saw the overload (all opened within a few milliseconds when the
//! fan-out starts) and those it starts afterwards (no earlier than when the held answers free
//! its workers) are apart in time: a request opened at least `HOLD / 2` after the first
//! 429/503 was passed on counts as "after". The fault proxy closes every connection after one
//! answer, so a connection of the relay is one request; the relay counts how many "after"
//! requests were open at once.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::fault_proxy::{Fault, FaultProxy};
use crate::common::pullpilot::pullpilot;
use crate::common::{Bed, Project, Reg, TempDir, Variant, unique_name};

/// How long the relay holds each answer during the measured `plan`.
const HOLD: Duration = Duration::from_millis(200);
/// Repositories (one compose service each): more than one round of 16 requests in flight.
const IMAGES: usize = 20;

#[derive(Default)]
struct Counts {
    /// Requests open now, and the most open at once, overall.
    open: usize,
    peak: usize,
    /// When the first 429 or 503 was passed on.
    first_overload: Option<Instant>,
    /// Requests opened after that, open now, and the most open at once.
    open_after: usize,
    peak_after: usize,
    opened_after: usize,
    overloads: usize,
}

struct Shared {
    upstream: String,
    hold_ms: AtomicU64,
    counts: Mutex<Counts>,
    stopped: AtomicBool,
}

/// A loopback TCP relay that counts requests in flight (one per connection).
struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Relay {
    fn start(upstream: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the relay");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            hold_ms: AtomicU64::new(0),
            counts: Mutex::new(Counts::default()),
            stopped: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&accepting);
                thread::spawn(move || {
                    let _ = relay(stream, &shared);
                });
            }
        });
        Relay { addr, shared }
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Starts counting afresh, holding each answer `hold`.
    fn reset(&self, hold: Duration) {
        self.shared
            .hold_ms
            .store(hold.as_millis() as u64, Ordering::SeqCst);
        *self.shared.counts.lock().unwrap() = Counts::default();
    }

    fn counts(&self) -> (usize, usize, usize, usize) {
        let c = self.shared.counts.lock().unwrap();
        (c.peak, c.overloads, c.opened_after, c.peak_after)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn relay(client: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let upstream = TcpStream::connect(&shared.upstream)?;
    let hold = Duration::from_millis(shared.hold_ms.load(Ordering::SeqCst));
    let after = {
        let mut c = shared.counts.lock().unwrap();
        c.open += 1;
        c.peak = c.peak.max(c.open);
        let after = c.first_overload.is_some_and(|t| t.elapsed() >= hold / 2);
        if after {
            c.open_after += 1;
            c.opened_after += 1;
            c.peak_after = c.peak_after.max(c.open_after);
        }
        after
    };
    let (mut from_client, mut to_upstream) = (client.try_clone()?, upstream.try_clone()?);
    let forward = thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_upstream);
        let _ = to_upstream.shutdown(Shutdown::Write);
    });
    let (mut from_upstream, mut to_client) = (upstream, client);
    let mut first = true;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = from_upstream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if first {
            first = false;
            let status = String::from_utf8_lossy(&buf[..n.min(16)]).to_string();
            if status.contains(" 429") || status.contains(" 503") {
                // Passed on at once: pullpilot sees it before any held answer frees a worker.
                let mut c = shared.counts.lock().unwrap();
                c.overloads += 1;
                c.first_overload.get_or_insert_with(Instant::now);
            } else {
                thread::sleep(hold);
            }
        }
        to_client.write_all(&buf[..n])?;
    }
    let _ = to_client.shutdown(Shutdown::Both);
    {
        let mut c = shared.counts.lock().unwrap();
        c.open -= 1;
        if after {
            c.open_after -= 1;
        }
    }
    let _ = forward.join();
    Ok(())
}

/// `IMAGES` services on images `<relay>/<repo>-NN:stable` at v1, then each tag moved to a new
/// image of its own; `plan` through a registry that answers `overload` once, to a request in
/// the middle of the fan-out.
fn overload_mid_plan(overload: Fault, word: &str) {
    let bed = Bed::get();
    let prefix = unique_name("ratelimit");
    let repos: Vec<String> = (0..IMAGES).map(|i| format!("{prefix}-{i:02}")).collect();
    for repo in &repos {
        bed.push_image(Reg::Open, repo, "stable", Variant::V1);
    }
    let proxy = FaultProxy::start(&bed.registry(Reg::Open).addr);
    let relay = Relay::start(&proxy.host());
    let mut yaml = String::from("services:\n");
    for (i, repo) in repos.iter().enumerate() {
        writeln!(
            yaml,
            "  s{i:02}:\n    image: {}/{repo}:stable\n    network_mode: none",
            relay.host()
        )
        .unwrap();
    }
    let project = Project::up(bed, &yaml);
    let fresh: Vec<String> = repos
        .iter()
        .map(|repo| bed.push_fresh_image(Reg::Open, repo, "stable", Variant::V2))
        .collect();

    // The 11th repository's HEAD is answered `overload` once: the first HEAD learns how the
    // registry authenticates on its own, then the rest go out 16 at a time.
    proxy.add(
        Some("HEAD"),
        &format!("/v2/{}/manifests/", repos[10]),
        overload,
        Some(1),
    );
    relay.reset(HOLD);
    let data = TempDir::new("ratelimit-data");
    let started = Instant::now();
    let run = pullpilot(
        bed,
        project.dir(),
        &bed.docker_config,
        data.path(),
        &[
            "plan",
            "--json",
            "--scope",
            &format!("project:{}", project.name()),
        ],
        &[("PP_REGISTRY_CONCURRENCY", "16")],
    );
    let took = started.elapsed();
    assert_eq!(run.code, 0, "the pass finishes\n{run}");
    for (i, digest) in fresh.iter().enumerate() {
        let c = run.container(&format!("s{i:02}"));
        assert_eq!(c["decision"], "soaking", "s{i:02} after a {word}: {c:#}");
        assert_eq!(
            c["available_digest"],
            digest.as_str(),
            "s{i:02}: every check is right after a {word}"
        );
    }
    let (peak, overloads, opened_after, peak_after) = relay.counts();
    assert_eq!(overloads, 1, "one {word} was answered");
    assert!(
        peak >= 8,
        "the fan-out ran wide before the {word} ({peak} at once)"
    );
    assert!(
        opened_after >= 1,
        "requests were made after the {word} (the retry at least)"
    );
    assert_eq!(
        peak_after, 1,
        "after the first {word}, one request at a time ({opened_after} requests, took {took:?})"
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn ratelimit_429_mid_fan_out_makes_the_rest_serial_and_every_check_right() {
    overload_mid_plan(
        Fault::Status {
            code: 429,
            retry_after: Some(1),
        },
        "429",
    );
}

#[test]
#[ignore = "needs the test bed (tests/testbed/testbed.sh up)"]
fn ratelimit_503_mid_fan_out_makes_the_rest_serial_and_every_check_right() {
    overload_mid_plan(
        Fault::Status {
            code: 503,
            retry_after: None,
        },
        "503",
    );
}
