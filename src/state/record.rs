//! Every change a pass or a command makes to [`State`]: soak candidates, history (with its
//! limit), blocked digests, pins, announced digests, counters. Pure functions on [`State`];
//! the caller saves (through [`super::Store::save`]). Nothing outside this module writes to a
//! container's history, pin, candidate or announced digests.

use std::time::SystemTime;

use super::schema::{
    Approval, Blocked, Candidate, HistoryEntry, JournalEntry, Pause, Phase, Pin, State,
};
use crate::reference::Digest;

/// History kept per container; older entries are dropped.
pub const HISTORY_LIMIT: usize = 50;

/// What a decision means for a container's soak clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoakClock<'a> {
    /// A new candidate digest (and the version tag it is, for a version move): start its
    /// clock now.
    Start(&'a Digest, Option<&'a str>),
    /// The container is up to date: forget any candidate.
    Forget,
    /// Leave the candidate as it is.
    Keep,
}

/// Starts the soak clock for new candidates and forgets candidates that no longer apply.
/// Returns whether anything changed.
pub fn observe(state: &mut State, key: &str, clock: SoakClock<'_>, now: SystemTime) -> bool {
    match clock {
        SoakClock::Start(digest, tag) => {
            let entry = state.containers.entry(key.to_string()).or_default();
            entry.candidate = Some(Candidate {
                digest: digest.clone(),
                tag: tag.map(str::to_string),
                first_seen: now,
            });
            true
        }
        SoakClock::Forget => {
            let had = state
                .containers
                .get_mut(key)
                .and_then(|c| c.candidate.take());
            had.is_some()
        }
        SoakClock::Keep => false,
    }
}

/// Records a finished update, a no-op pull or a rollback in the history (keeping at most
/// [`HISTORY_LIMIT`] entries) and clears the candidate.
pub fn applied(state: &mut State, key: &str, entry: HistoryEntry) {
    let container = state.containers.entry(key.to_string()).or_default();
    container.candidate = None;
    container.history.push(entry);
    let excess = container.history.len().saturating_sub(HISTORY_LIMIT);
    container.history.drain(..excess);
}

/// Marks `digest` bad for `repository` so no container of it is updated to it again.
pub fn block(
    state: &mut State,
    repository: &str,
    digest: &Digest,
    reason: &str,
    container: &str,
    now: SystemTime,
) {
    state
        .blocked
        .entry(repository.to_string())
        .or_default()
        .insert(
            digest.clone(),
            Blocked {
                at: now,
                reason: reason.to_string(),
                container: container.to_string(),
            },
        );
}

/// After `pullpilot rollback`: marks the last history entry as a manual rollback and pins the
/// container to `digest`.
pub fn manual_rollback(
    state: &mut State,
    key: &str,
    digest: &Digest,
    reason: String,
    now: SystemTime,
) {
    let saved = state.containers.entry(key.to_string()).or_default();
    if let Some(last) = saved.history.last_mut() {
        last.outcome = "manual-rollback".into();
    }
    saved.pin = Some(Pin {
        digest: digest.clone(),
        since: now,
        reason,
    });
}

/// Announced digests remembered per container.
pub const NOTIFIED_LIMIT: usize = 20;

/// Remembers that `digest` was announced for the container; false when it already was (so it
/// is not announced again).
pub fn first_announcement(state: &mut State, key: &str, digest: &Digest) -> bool {
    let saved = state.containers.entry(key.to_string()).or_default();
    if saved.notified.contains(digest) {
        return false;
    }
    saved.notified.push(digest.clone());
    let excess = saved.notified.len().saturating_sub(NOTIFIED_LIMIT);
    saved.notified.drain(..excess);
    true
}

/// Remembers that the held-back version `tag` was announced for the container; false when it
/// already was.
pub fn first_version_announcement(state: &mut State, key: &str, tag: &str) -> bool {
    let saved = state.containers.entry(key.to_string()).or_default();
    if saved.notified_versions.iter().any(|t| t == tag) {
        return false;
    }
    saved.notified_versions.push(tag.to_string());
    let excess = saved.notified_versions.len().saturating_sub(NOTIFIED_LIMIT);
    saved.notified_versions.drain(..excess);
    true
}

/// Remembers that `digest` was announced as waiting for approval; false when it already was.
pub fn first_approval_request(state: &mut State, key: &str, digest: &Digest) -> bool {
    let saved = state.containers.entry(key.to_string()).or_default();
    if saved.notified_approval.contains(digest) {
        return false;
    }
    saved.notified_approval.push(digest.clone());
    let excess = saved.notified_approval.len().saturating_sub(NOTIFIED_LIMIT);
    saved.notified_approval.drain(..excess);
    true
}

/// Pauses one container (`Some(key)`) or every update (`None`), until `until` or `resume`.
pub fn pause(state: &mut State, key: Option<&str>, until: Option<SystemTime>, now: SystemTime) {
    let pause = Some(Pause { since: now, until });
    match key {
        Some(key) => state.containers.entry(key.to_string()).or_default().pause = pause,
        None => state.pause_all = pause,
    }
}

/// Lifts a pause; returns it, `None` when there was none.
pub fn resume(state: &mut State, key: Option<&str>) -> Option<Pause> {
    match key {
        Some(key) => state.containers.get_mut(key).and_then(|s| s.pause.take()),
        None => state.pause_all.take(),
    }
}

/// Forgets pauses that ended by themselves; true when any did.
pub fn expire_pauses(state: &mut State, now: SystemTime) -> bool {
    let mut changed = false;
    if state.pause_all.as_ref().is_some_and(|p| !p.holds(now)) {
        state.pause_all = None;
        changed = true;
    }
    for saved in state.containers.values_mut() {
        if saved.pause.as_ref().is_some_and(|p| !p.holds(now)) {
            saved.pause = None;
            changed = true;
        }
    }
    changed
}

/// Records `pullpilot approve`: `digest` may roll out (digest-exact).
pub fn approve(state: &mut State, key: &str, digest: &Digest, now: SystemTime) {
    state
        .containers
        .entry(key.to_string())
        .or_default()
        .approval = Some(Approval {
        digest: digest.clone(),
        at: now,
    });
}

/// Adds one pass's results to the lifetime counters.
pub fn count(state: &mut State, updates: u64, rollbacks: u64, failures: u64) {
    state.counters.updates += updates;
    state.counters.rollbacks += rollbacks;
    state.counters.failures += failures;
}

/// Pins the container to `digest` (`pullpilot pin`).
pub fn pin(state: &mut State, key: &str, digest: &Digest, reason: &str, now: SystemTime) {
    state.containers.entry(key.to_string()).or_default().pin = Some(Pin {
        digest: digest.clone(),
        since: now,
        reason: reason.to_string(),
    });
}

/// Removes the container's pin; returns it, `None` when there was none.
pub fn unpin(state: &mut State, key: &str) -> Option<Pin> {
    state.containers.get_mut(key).and_then(|s| s.pin.take())
}

/// Unblocks `digest` in every repository; returns the repositories it was blocked for.
pub fn unblock_digest(state: &mut State, digest: &Digest) -> Vec<String> {
    let mut repositories = Vec::new();
    for (repository, digests) in &mut state.blocked {
        if digests.remove(digest).is_some() {
            repositories.push(repository.clone());
        }
    }
    state.blocked.retain(|_, digests| !digests.is_empty());
    repositories
}

/// Unblocks every digest of `repository`; returns them.
pub fn unblock_repository(state: &mut State, repository: &str) -> Vec<Digest> {
    state
        .blocked
        .remove(repository)
        .map(|digests| digests.into_keys().collect())
        .unwrap_or_default()
}

/// Journals the intent of an update (the caller saves before touching anything).
pub fn journal_intent(state: &mut State, entry: JournalEntry) {
    state.journal.push(entry);
}

/// Records a step of the update of `name`, and the replacement's ID when it is known.
pub fn journal_step(state: &mut State, name: &str, phase: Phase, new_id: Option<&str>) {
    if let Some(entry) = state.journal.iter_mut().find(|e| e.name == name) {
        entry.phase = phase;
        if let Some(id) = new_id {
            entry.new_id = Some(id.to_string());
        }
    }
}

/// Records the replacement of follower `index` of the update of `name`.
pub fn journal_follower(state: &mut State, name: &str, index: usize, new_id: &str) {
    if let Some(follower) = state
        .journal
        .iter_mut()
        .find(|e| e.name == name)
        .and_then(|e| e.followers.get_mut(index))
    {
        follower.new_id = Some(new_id.to_string());
    }
}

/// Forgets the update of `name`: finished, undone, or never started.
pub fn journal_done(state: &mut State, name: &str) {
    state.journal.retain(|e| e.name != name);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn digest(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    #[test]
    fn pauses_expire_by_themselves_and_resume_lifts_them() {
        use std::time::Duration;
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let hour = Duration::from_secs(3600);
        let mut state = State::default();
        pause(&mut state, Some("p/s"), Some(t0 + hour), t0);
        pause(&mut state, None, None, t0);
        assert!(!expire_pauses(&mut state, t0 + hour / 2), "both still hold");
        assert!(
            expire_pauses(&mut state, t0 + hour),
            "the timed one ends at its time"
        );
        assert!(state.containers["p/s"].pause.is_none());
        assert!(
            state.pause_all.is_some(),
            "an open-ended pause waits for resume"
        );
        assert!(resume(&mut state, None).is_some());
        assert!(resume(&mut state, None).is_none());
        assert!(!expire_pauses(&mut state, t0 + 2 * hour));
    }

    #[test]
    fn new_candidates_start_the_clock_once() {
        let mut state = State::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let b = digest('b');
        assert!(observe(&mut state, "p/s", SoakClock::Start(&b, None), t0));
        assert!(!observe(
            &mut state,
            "p/s",
            SoakClock::Keep,
            t0 + Duration::from_secs(5)
        ));
        let cand = state.containers["p/s"].candidate.clone().unwrap();
        assert_eq!(cand.first_seen, t0);
    }

    #[test]
    fn up_to_date_forgets_the_candidate() {
        let mut state = State::default();
        let b = digest('b');
        observe(
            &mut state,
            "p/s",
            SoakClock::Start(&b, None),
            SystemTime::UNIX_EPOCH,
        );
        assert!(observe(
            &mut state,
            "p/s",
            SoakClock::Forget,
            SystemTime::UNIX_EPOCH
        ));
        assert!(state.containers["p/s"].candidate.is_none());
    }

    #[test]
    fn history_is_capped() {
        let mut state = State::default();
        for i in 0..(HISTORY_LIMIT + 5) {
            applied(
                &mut state,
                "p/s",
                HistoryEntry {
                    tag: None,
                    previous_tag: None,
                    at: SystemTime::UNIX_EPOCH + Duration::from_secs(i as u64),
                    digest: digest('a'),
                    image_id: format!("id{i}"),
                    previous_digest: None,
                    previous_image_id: None,
                    outcome: "updated".into(),
                },
            );
        }
        let history = &state.containers["p/s"].history;
        assert_eq!(history.len(), HISTORY_LIMIT);
        assert_eq!(history[0].image_id, "id5");
    }

    #[test]
    fn announcements_are_remembered_once_and_capped() {
        let mut state = State::default();
        assert!(first_announcement(&mut state, "p/s", &digest('a')));
        assert!(!first_announcement(&mut state, "p/s", &digest('a')));
        for i in 0..NOTIFIED_LIMIT + 3 {
            let d = Digest::parse(&format!("sha256:{i:064x}")).unwrap();
            assert!(first_announcement(&mut state, "p/s", &d));
        }
        assert_eq!(state.containers["p/s"].notified.len(), NOTIFIED_LIMIT);
    }

    #[test]
    fn pins_unblocks_and_the_journal_change_only_what_they_name() {
        let mut state = State::default();
        pin(
            &mut state,
            "p/s",
            &digest('a'),
            "by hand",
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(unpin(&mut state, "p/s").unwrap().digest, digest('a'));
        assert!(unpin(&mut state, "p/s").is_none());

        for repository in ["r/a", "r/b"] {
            block(
                &mut state,
                repository,
                &digest('c'),
                "x",
                "y",
                SystemTime::UNIX_EPOCH,
            );
        }
        block(
            &mut state,
            "r/b",
            &digest('d'),
            "x",
            "y",
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(unblock_digest(&mut state, &digest('c')), ["r/a", "r/b"]);
        assert!(!state.blocked.contains_key("r/a"), "empty repositories go");
        assert_eq!(unblock_repository(&mut state, "r/b"), [digest('d')]);
        assert!(state.blocked.is_empty());
    }

    #[test]
    fn blocks_per_repository() {
        let mut state = State::default();
        block(
            &mut state,
            "r/a",
            &digest('c'),
            "unhealthy",
            "x",
            SystemTime::UNIX_EPOCH,
        );
        assert!(state.blocked["r/a"].contains_key(&digest('c')));
        assert!(!state.blocked.contains_key("r/b"));
    }
}
