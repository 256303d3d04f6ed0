//! When a poke becomes a pass: pure bookkeeping, so the rules are tested without clocks.
//!
//! - Each poke (re)starts the debounce: the pass starts `debounce` after the last poke, but no
//!   later than [`MAX_DEFER`] after the first one, so a steady stream of pokes cannot hold
//!   updates back forever.
//! - Poke-triggered passes are at least `min_interval` apart.
//! - Pokes that arrive while a pass runs, however many, make one follow-up pass.
//! - A poke that names a service narrows its pass to that service; one that names none (or
//!   pokes naming different services joined with one that names none) asks for everything.
//! - At most [`MAX_NAMED`] services are kept apart; a window naming more asks for everything,
//!   so callers cannot grow the pending set without bound.
//!
//! Time arithmetic saturates: a huge debounce or interval means "much later", never a panic.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The longest a burst of pokes can defer its pass.
pub const MAX_DEFER: Duration = Duration::from_secs(60);
/// The most services one window of pokes keeps apart before it asks for everything.
pub const MAX_NAMED: usize = 64;
/// What "much later" means when a sum would not fit in an [`Instant`]: about a century.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `at + wait`, or as late as an `Instant` goes (about a century) when that does not fit.
pub fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait)
        .or_else(|| at.checked_add(FAR))
        .unwrap_or(at)
}

/// Which containers a pass covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Everything,
    Services(BTreeSet<String>),
}

impl Target {
    fn join(self, service: Option<String>) -> Target {
        match (self, service) {
            (Target::Services(mut set), Some(s)) => {
                set.insert(s);
                if set.len() > MAX_NAMED {
                    log::warn!(
                        "Pokes named more than {MAX_NAMED} different services; the next pass \
                         covers everything in scope."
                    );
                    return Target::Everything;
                }
                Target::Services(set)
            }
            _ => Target::Everything,
        }
    }

    /// Service filters for `apply` (empty = everything in scope).
    pub fn services(&self) -> Vec<String> {
        match self {
            Target::Everything => Vec::new(),
            Target::Services(set) => set.iter().cloned().collect(),
        }
    }

    /// Splits off the services `known` does not recognise: returns what is left to run (None
    /// when every named service was unknown) and the unknown names.
    pub fn keep_known(self, known: impl Fn(&str) -> bool) -> (Option<Target>, Vec<String>) {
        match self {
            Target::Everything => (Some(Target::Everything), Vec::new()),
            Target::Services(set) => {
                let (keep, unknown): (BTreeSet<String>, BTreeSet<String>) =
                    set.into_iter().partition(|s| known(s));
                let left = (!keep.is_empty()).then_some(Target::Services(keep));
                (left, unknown.into_iter().collect())
            }
        }
    }
}

#[derive(Debug)]
struct Pending {
    first: Instant,
    last: Instant,
    target: Target,
    pokes: u64,
}

#[derive(Debug)]
pub struct Trigger {
    debounce: Duration,
    min_interval: Duration,
    pending: Option<Pending>,
    last_pass: Option<Instant>,
}

/// A pass to run now.
#[derive(Debug, PartialEq, Eq)]
pub struct Due {
    pub target: Target,
    /// How many pokes it answers.
    pub pokes: u64,
}

impl Trigger {
    pub fn new(debounce: Duration, min_interval: Duration) -> Trigger {
        Trigger {
            debounce,
            min_interval,
            pending: None,
            last_pass: None,
        }
    }

    pub fn poke(&mut self, now: Instant, service: Option<String>) {
        self.poke_many(now, service, 1);
    }

    /// `count` pokes at `now` for the same target (the relay's, counted while the main loop
    /// was busy); none is no poke.
    pub fn poke_many(&mut self, now: Instant, service: Option<String>, count: u64) {
        if count == 0 {
            return;
        }
        self.pending = Some(match self.pending.take() {
            None => Pending {
                first: now,
                last: now,
                target: match service {
                    Some(s) => Target::Services(BTreeSet::from([s])),
                    None => Target::Everything,
                },
                pokes: count,
            },
            Some(p) => Pending {
                first: p.first,
                last: now,
                target: p.target.join(service),
                pokes: p.pokes.saturating_add(count),
            },
        });
    }

    /// When the pending pass is due, if one is pending.
    pub fn deadline(&self) -> Option<Instant> {
        let p = self.pending.as_ref()?;
        let debounced =
            later(p.last, self.debounce).min(later(p.first, MAX_DEFER.max(self.debounce)));
        Some(match self.last_pass {
            Some(last) => debounced.max(later(last, self.min_interval)),
            None => debounced,
        })
    }

    /// The pass to run, if one is due at `now`.
    pub fn take(&mut self, now: Instant) -> Option<Due> {
        if self.deadline()? > now {
            return None;
        }
        let p = self.pending.take()?;
        Some(Due {
            target: p.target,
            pokes: p.pokes,
        })
    }

    /// A poke-triggered pass started at `at`.
    pub fn ran(&mut self, at: Instant) {
        self.last_pass = Some(at);
    }

    /// A full scheduled pass started: it answers every poke received so far.
    pub fn satisfied(&mut self) {
        self.pending = None;
    }

    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn trigger() -> (Trigger, Instant) {
        (Trigger::new(10 * S, 60 * S), Instant::now())
    }

    #[test]
    fn a_poke_waits_for_the_debounce() {
        let (mut t, t0) = trigger();
        assert_eq!(t.deadline(), None);
        t.poke(t0, None);
        assert_eq!(t.take(t0 + 9 * S), None);
        let due = t.take(t0 + 10 * S).unwrap();
        assert_eq!(due.target, Target::Everything);
        assert!(!t.is_pending());
    }

    #[test]
    fn a_burst_of_pokes_is_one_pass() {
        let (mut t, t0) = trigger();
        for i in 0..1000 {
            t.poke(t0 + Duration::from_millis(i * 10), None);
        }
        assert_eq!(
            t.deadline(),
            Some(t0 + Duration::from_millis(9990) + 10 * S)
        );
        assert_eq!(t.take(t0 + 20 * S).unwrap().pokes, 1000);
        assert_eq!(t.take(t0 + 100 * S), None);
    }

    #[test]
    fn a_steady_stream_cannot_defer_the_pass_forever() {
        let (mut t, t0) = trigger();
        for i in 0..200 {
            t.poke(t0 + i * S, None);
        }
        assert_eq!(t.deadline(), Some(t0 + MAX_DEFER));
    }

    #[test]
    fn poke_passes_keep_the_minimum_interval() {
        let (mut t, t0) = trigger();
        t.poke(t0, None);
        t.take(t0 + 10 * S).unwrap();
        t.ran(t0 + 10 * S);
        t.poke(t0 + 20 * S, None);
        assert_eq!(t.deadline(), Some(t0 + 70 * S));
        assert_eq!(t.take(t0 + 69 * S), None);
        assert!(t.take(t0 + 70 * S).is_some());
    }

    #[test]
    fn pokes_during_a_pass_make_one_follow_up() {
        let (mut t, t0) = trigger();
        t.poke(t0, None);
        t.take(t0 + 10 * S).unwrap();
        t.ran(t0 + 10 * S);
        // The pass runs for a while; the pokes queued meanwhile are read afterwards.
        for _ in 0..50 {
            t.poke(t0 + 100 * S, None);
        }
        assert_eq!(t.take(t0 + 110 * S).unwrap().pokes, 50);
        assert_eq!(t.take(t0 + 500 * S), None);
    }

    #[test]
    fn named_services_narrow_the_pass_until_an_unnamed_poke() {
        let (mut t, t0) = trigger();
        t.poke(t0, Some("web".into()));
        t.poke(t0, Some("db".into()));
        let due = t.take(t0 + 10 * S).unwrap();
        assert_eq!(
            due.target.services(),
            vec!["db".to_string(), "web".to_string()]
        );
        t.poke(t0 + 100 * S, Some("web".into()));
        t.poke(t0 + 100 * S, None);
        t.poke(t0 + 100 * S, Some("db".into()));
        assert_eq!(t.take(t0 + 200 * S).unwrap().target, Target::Everything);
    }

    #[test]
    fn counted_pokes_join_like_single_ones() {
        let (mut t, t0) = trigger();
        t.poke_many(t0, None, 0);
        assert!(!t.is_pending());
        t.poke_many(t0, None, 5000);
        t.poke(t0 + S, None);
        t.poke_many(t0 + 2 * S, None, u64::MAX);
        let due = t.take(t0 + 12 * S).unwrap();
        assert_eq!((due.target, due.pokes), (Target::Everything, u64::MAX));
    }

    #[test]
    fn huge_durations_saturate_instead_of_panicking() {
        let t0 = Instant::now();
        let mut t = Trigger::new(Duration::MAX, Duration::MAX);
        t.poke(t0, None);
        let far = t.deadline().unwrap();
        assert!(far > t0 + 50 * 365 * 24 * 3600 * S, "{far:?}");
        assert_eq!(t.take(t0 + 1000 * S), None);
        t.ran(t0);
        t.poke(t0, Some("web".into()));
        assert!(t.deadline().unwrap() >= far);
        assert!(later(t0, Duration::MAX) > t0);
    }

    #[test]
    fn the_named_set_is_bounded() {
        let (mut t, t0) = trigger();
        for i in 0..=MAX_NAMED {
            t.poke(t0, Some(format!("svc{i}")));
        }
        let due = t.take(t0 + 10 * S).unwrap();
        assert_eq!(due.target, Target::Everything);
        assert_eq!(due.pokes, MAX_NAMED as u64 + 1);
        t.poke(t0 + 100 * S, Some("web".into()));
        for _ in 0..10 * MAX_NAMED {
            t.poke(t0 + 100 * S, Some("web".into()));
        }
        assert_eq!(t.take(t0 + 200 * S).unwrap().target.services(), ["web"]);
    }

    #[test]
    fn unknown_services_are_dropped_and_the_others_kept() {
        let known = |s: &str| s == "web" || s == "db";
        let target = Target::Services(["web", "nosuch", "db"].map(String::from).into());
        let (left, unknown) = target.keep_known(known);
        assert_eq!(left.unwrap().services(), ["db", "web"]);
        assert_eq!(unknown, ["nosuch"]);
        let only_unknown = Target::Services(BTreeSet::from(["nosuch".to_string()]));
        assert_eq!(
            only_unknown.keep_known(known),
            (None, vec!["nosuch".into()])
        );
        assert_eq!(
            Target::Everything.keep_known(known),
            (Some(Target::Everything), Vec::new())
        );
    }

    #[test]
    fn a_scheduled_pass_answers_pending_pokes() {
        let (mut t, t0) = trigger();
        t.poke(t0, None);
        t.satisfied();
        assert_eq!(t.take(t0 + 100 * S), None);
    }
}
