//! The relay's limits, as pure counters over `Instant`s so they can be tested without clocks.
//!
//! | limit | value | answer |
//! |---|---|---|
//! | provisions per client network (IPv4 address, IPv6 /64) | 10, counter forgotten 60 s after the last counted one | 429 `rate_limited` |
//! | registrations per client network | `--max-registrations-per-network` (100) | 429 `too_many_registrations` |
//! | registrations in all | `--max-registrations` (100,000) | 503 `relay_full` |
//! | connections without a complete request, per client network | 16 | 429, closed |
//! | connections in all | 10,000, fewer if the descriptor limit is low (2 a listener) | 503, closed |
//! | time to send a whole request | 10 s | closed |
//! | pokes per webhook | 100 per fixed 5 s window (coalesced pokes count) | 429 `rate_limited` |
//! | poke deliveries per webhook | 1 per 5 s; later ones wait for the window's end | (202) |
//! | authenticated sockets per webhook | 4 | close 1013 |
//! | unauthenticated sockets per webhook | 8 | close 1013 |

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub(crate) const PROVISIONS_PER_WINDOW: u32 = 10;
pub(crate) const PROVISION_WINDOW: Duration = Duration::from_secs(60);
pub(crate) const POKES_PER_WINDOW: u32 = 100;
pub(crate) const POKE_WINDOW: Duration = Duration::from_secs(5);
/// Pokes closer together than this after a delivery are folded into one later delivery.
pub(crate) const COALESCE: Duration = Duration::from_secs(5);
pub(crate) const MAX_AUTHED: usize = 4;
pub(crate) const MAX_UNAUTHED: usize = 8;
/// Beyond this many client IPs the table drops expired entries before adding one.
const MAX_TRACKED_IPS: usize = 10_000;

/// Per-IP provision counter, like the reference's KV counter: each counted request adds one
/// and restarts the 60 s expiry; refused requests neither count nor extend it.
#[derive(Debug, Default)]
pub(crate) struct ProvisionLimiter {
    by_ip: HashMap<String, (u32, Instant)>,
}

impl ProvisionLimiter {
    /// Whether one more provision from `ip` is allowed now (and counts it if so).
    pub(crate) fn admit(&mut self, ip: &str, now: Instant) -> bool {
        if self.by_ip.len() >= MAX_TRACKED_IPS && !self.by_ip.contains_key(ip) {
            self.forget_expired(now);
        }
        let entry = self.by_ip.entry(ip.to_string()).or_insert((0, now));
        if now >= entry.1 {
            entry.0 = 0;
        }
        if entry.0 >= PROVISIONS_PER_WINDOW {
            return false;
        }
        entry.0 += 1;
        entry.1 = now + PROVISION_WINDOW;
        true
    }

    pub(crate) fn forget_expired(&mut self, now: Instant) {
        self.by_ip.retain(|_, (_, expires)| now < *expires);
    }
}

/// A fixed window of [`POKE_WINDOW`] holding at most [`POKES_PER_WINDOW`] pokes.
#[derive(Debug, Default)]
pub(crate) struct PokeWindow {
    start: Option<Instant>,
    count: u32,
}

impl PokeWindow {
    /// Whether this poke is within the abuse limit (and counts it if so).
    pub(crate) fn admit(&mut self, now: Instant) -> bool {
        if self
            .start
            .is_none_or(|start| now.duration_since(start) > POKE_WINDOW)
        {
            self.start = Some(now);
            self.count = 0;
        }
        if self.count >= POKES_PER_WINDOW {
            return false;
        }
        self.count += 1;
        true
    }
}

/// What to do with an accepted poke while a listener is authenticated.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Send it now.
    Now,
    /// Send one poke at this moment (the end of the coalescing window); newly scheduled.
    Later(Instant),
    /// A delivery is already scheduled; this poke rides along with it.
    AlreadyScheduled,
}

/// Poke coalescing for one webhook: at most one delivery per [`COALESCE`]. The reference
/// drops pokes inside the window; here one delivery is deferred to the window's end instead,
/// so the last change in a burst is never lost.
#[derive(Debug, Default)]
pub(crate) struct Coalescer {
    last_delivery: Option<Instant>,
    scheduled: Option<Instant>,
}

impl Coalescer {
    pub(crate) fn decide(&mut self, now: Instant) -> Delivery {
        match self.last_delivery {
            Some(last) if now.duration_since(last) < COALESCE => {
                if self.scheduled.is_some() {
                    Delivery::AlreadyScheduled
                } else {
                    let due = last + COALESCE;
                    self.scheduled = Some(due);
                    Delivery::Later(due)
                }
            }
            _ => {
                self.scheduled = None;
                Delivery::Now
            }
        }
    }

    /// A poke went out now (directly, as a pending flush or as the deferred one).
    pub(crate) fn delivered(&mut self, now: Instant) {
        self.last_delivery = Some(now);
        self.scheduled = None;
    }

    /// Takes the scheduled delivery if it is due.
    pub(crate) fn take_due(&mut self, now: Instant) -> bool {
        if self.scheduled.is_some_and(|due| due <= now) {
            self.scheduled = None;
            true
        } else {
            false
        }
    }

    pub(crate) fn scheduled(&self) -> Option<Instant> {
        self.scheduled
    }
}

/// Whether a new socket may wait for authentication next to `unauthed` others.
pub(crate) fn may_open(unauthed: usize) -> bool {
    unauthed < MAX_UNAUTHED
}

/// Whether a socket may authenticate next to `other_authed` authenticated ones.
pub(crate) fn may_authenticate(other_authed: usize) -> bool {
    other_authed < MAX_AUTHED
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn provisions_are_limited_per_ip_until_a_quiet_minute() {
        let t0 = Instant::now();
        let mut limiter = ProvisionLimiter::default();
        for i in 0..10 {
            assert!(limiter.admit("192.0.2.1", t0 + secs(i)), "request {i}");
        }
        assert!(!limiter.admit("192.0.2.1", t0 + secs(10)));
        assert!(
            limiter.admit("192.0.2.2", t0 + secs(10)),
            "other IPs are not affected"
        );
        // The 10th counted request was at t0+9 s: refused ones do not extend the expiry.
        assert!(!limiter.admit("192.0.2.1", t0 + secs(68)));
        assert!(limiter.admit("192.0.2.1", t0 + secs(69)));
        limiter.forget_expired(t0 + secs(200));
        assert!(limiter.by_ip.is_empty());
    }

    #[test]
    fn pokes_are_limited_per_fixed_window() {
        let t0 = Instant::now();
        let mut window = PokeWindow::default();
        for _ in 0..100 {
            assert!(window.admit(t0));
        }
        assert!(!window.admit(t0 + secs(5)));
        assert!(window.admit(t0 + secs(5) + Duration::from_millis(1)));
    }

    #[test]
    fn pokes_within_five_seconds_of_a_delivery_become_one_deferred_delivery() {
        let t0 = Instant::now();
        let mut c = Coalescer::default();
        assert_eq!(c.decide(t0), Delivery::Now);
        c.delivered(t0);
        assert_eq!(c.decide(t0 + secs(1)), Delivery::Later(t0 + secs(5)));
        assert_eq!(c.decide(t0 + secs(2)), Delivery::AlreadyScheduled);
        assert!(!c.take_due(t0 + secs(4)));
        assert!(c.take_due(t0 + secs(5)));
        assert!(!c.take_due(t0 + secs(5)), "taken once");
        c.delivered(t0 + secs(5));
        assert_eq!(c.decide(t0 + secs(11)), Delivery::Now);
    }

    #[test]
    fn a_late_timer_is_replaced_by_a_direct_delivery() {
        let t0 = Instant::now();
        let mut c = Coalescer::default();
        c.delivered(t0);
        assert_eq!(c.decide(t0 + secs(1)), Delivery::Later(t0 + secs(5)));
        assert_eq!(c.decide(t0 + secs(6)), Delivery::Now);
        assert_eq!(c.scheduled(), None);
    }

    #[test]
    fn socket_caps_are_four_authenticated_and_eight_waiting() {
        let table = [(0, true), (3, true), (4, false), (5, false)];
        for (others, allowed) in table {
            assert_eq!(may_authenticate(others), allowed, "{others} others");
        }
        let table = [(0, true), (7, true), (8, false)];
        for (waiting, allowed) in table {
            assert_eq!(may_open(waiting), allowed, "{waiting} waiting");
        }
    }
}
