//! What the relay and the local receiver admit before reading a request: [`ConnLimits`]
//! (connections at once, in total and per client network), [`AcceptBackoff`] (what to do when
//! `accept` fails, e.g. out of descriptors), and the answer to a connection turned away.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv6Addr, TcpStream};

use super::http::respond;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The network a client is counted in: its IPv4 address, or the /64 of its IPv6 address (one
/// host commonly holds a whole /64). IPv4-mapped IPv6 addresses count as IPv4.
pub fn client_network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(Ipv6Addr::from(segments))
        }
    }
}

/// Why [`ConnLimits::admit`] turned a connection away.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// All places are taken.
    Full,
    /// This client network already holds its share.
    PerClient,
}

/// Connections open at once: a total, and a smaller share per client network (see
/// [`client_network`]), so one client cannot take every place by opening many connections and
/// sending nothing.
#[derive(Debug)]
pub struct ConnLimits {
    total: usize,
    per_client: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; its places are given back when it is dropped.
#[derive(Debug)]
pub struct Slot {
    limits: Arc<ConnLimits>,
    network: Option<IpAddr>,
}

impl ConnLimits {
    pub fn new(total: usize, per_client: usize) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            total,
            per_client,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    pub fn total(&self) -> usize {
        self.total
    }

    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refusal> {
        let network = client_network(peer);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.0 >= self.total {
            return Err(Refusal::Full);
        }
        let mine = open.1.entry(network).or_insert(0);
        if *mine >= self.per_client {
            return Err(Refusal::PerClient);
        }
        *mine += 1;
        open.0 += 1;
        Ok(Slot {
            limits: Arc::clone(self),
            network: Some(network),
        })
    }

    fn release_network(open: &mut (usize, HashMap<IpAddr, usize>), network: IpAddr) {
        if let Some(count) = open.1.get_mut(&network) {
            *count -= 1;
            if *count == 0 {
                open.1.remove(&network);
            }
        }
    }
}

impl Slot {
    /// Gives the client's share back early but keeps the place in the total: for a connection
    /// whose request has been read and that lives on (a WebSocket), so a client's share limits
    /// what it can hold open without a complete request.
    pub fn request_read(&mut self) {
        if let Some(network) = self.network.take() {
            let mut open = self
                .limits
                .open
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            ConnLimits::release_network(&mut open, network);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .limits
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.0 -= 1;
        if let Some(network) = self.network.take() {
            ConnLimits::release_network(&mut open, network);
        }
    }
}

/// Pacing for a failing `accept` (out of file descriptors, mostly): wait a little longer after
/// each failure in a row, and log one line per interval however often it fails.
#[derive(Debug)]
pub struct AcceptBackoff {
    wait: Duration,
    next_log: Option<Instant>,
    failures_since_log: u64,
}

const BACKOFF_FIRST: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one log line per this long about failing accepts.
pub const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(60);

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff {
            wait: BACKOFF_FIRST,
            next_log: None,
            failures_since_log: 0,
        }
    }
}

impl AcceptBackoff {
    /// A failure at `now`: how long to wait before accepting again, and, when a line is due,
    /// how many failures it reports (this one and those not logged since the last line).
    pub fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        let wait = self.wait;
        self.wait = (self.wait * 2).min(BACKOFF_MAX);
        self.failures_since_log += 1;
        if self.next_log.is_some_and(|at| now < at) {
            return (wait, None);
        }
        self.next_log = Some(now + ACCEPT_LOG_EVERY);
        (wait, Some(std::mem::take(&mut self.failures_since_log)))
    }

    /// An accept worked: the next failure waits the shortest time again.
    pub fn succeeded(&mut self) {
        self.wait = BACKOFF_FIRST;
    }

    /// Waits after a failed accept and logs at most one line per interval.
    pub fn on_error(&mut self, server: &str, e: &io::Error) {
        let (wait, report) = self.failed(Instant::now());
        if let Some(count) = report {
            let hint = if matches!(e.raw_os_error(), Some(23 | 24)) {
                " (out of file descriptors: too many connections for the LimitNOFILE / ulimit -n                  the process runs with)"
            } else {
                ""
            };
            log::warn!(
                "The {server} could not accept connections: {e}{hint}; {count} failure{} since the                  last report, slowing down (next report in {} at the earliest).",
                if count == 1 { "" } else { "s" },
                humantime::format_duration(ACCEPT_LOG_EVERY)
            );
        }
        std::thread::sleep(wait);
    }
}

/// Best-effort answer to a connection turned away before it got a thread: never blocks.
pub fn refuse(stream: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let mut answer = Vec::new();
    let _ = respond(&mut answer, status, content_type, body);
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(&answer);
}

/// The soft limit on open file descriptors (`Max open files` in /proc/self/limits), if known.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_limited_in_total_and_per_client_network() {
        let limits = ConnLimits::new(5, 2);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a1 = limits.admit(ip("192.0.2.1")).unwrap();
        let _a2 = limits.admit(ip("::ffff:192.0.2.1")).unwrap();
        assert_eq!(
            limits.admit(ip("192.0.2.1")).unwrap_err(),
            Refusal::PerClient
        );
        let _b1 = limits.admit(ip("2001:db8::1")).unwrap();
        let mut b2 = limits.admit(ip("2001:db8::2:3")).unwrap();
        assert_eq!(
            limits.admit(ip("2001:db8::ffff")).unwrap_err(),
            Refusal::PerClient,
            "one /64 is one client"
        );
        b2.request_read();
        let _b3 = limits.admit(ip("2001:db8::4")).unwrap();
        assert_eq!(
            limits.admit(ip("198.51.100.1")).unwrap_err(),
            Refusal::Full,
            "a connection past its request keeps its place in the total"
        );
        drop(a1);
        let _a3 = limits.admit(ip("192.0.2.1")).unwrap();
        drop(b2);
        assert_eq!(limits.open.lock().unwrap().0, 4);
        assert_eq!(limits.open.lock().unwrap().1[&ip("2001:db8::")], 2);
    }

    #[test]
    fn failing_accepts_back_off_and_log_once_per_interval() {
        let mut backoff = AcceptBackoff::default();
        let t0 = Instant::now();
        let mut lines = 0;
        let mut waits = Vec::new();
        // 196 failures in 20 s (what EMFILE produced before): one line.
        for i in 0..196u32 {
            let (wait, report) = backoff.failed(t0 + Duration::from_millis(u64::from(i) * 100));
            waits.push(wait);
            lines += usize::from(report.is_some());
        }
        assert_eq!(lines, 1);
        assert_eq!(waits[0], Duration::from_millis(10));
        assert_eq!(waits[1], Duration::from_millis(20));
        assert_eq!(*waits.last().unwrap(), Duration::from_secs(1));
        let (_, report) = backoff.failed(t0 + Duration::from_secs(61));
        assert_eq!(report, Some(196), "the next line counts the quiet ones");
        backoff.succeeded();
        assert_eq!(
            backoff.failed(t0 + Duration::from_secs(62)).0,
            Duration::from_millis(10)
        );
    }
}
