//! How a pass changes state: soak candidates, applied updates, blocked digests. Pure functions
//! on [`State`]; the caller saves.

use std::time::SystemTime;

use super::schema::{Blocked, Candidate, HistoryEntry, State};
use crate::decide::Decision;
use crate::reference::Digest;

/// History kept per container; older entries are dropped.
pub const HISTORY_LIMIT: usize = 50;

/// Starts the soak clock for new candidates and forgets candidates that no longer apply.
/// Returns whether anything changed.
pub fn observe(state: &mut State, key: &str, decision: &Decision, now: SystemTime) -> bool {
    match decision {
        Decision::Soaking {
            digest,
            new_candidate: true,
            ..
        } => {
            let entry = state.containers.entry(key.to_string()).or_default();
            entry.candidate = Some(Candidate {
                digest: digest.clone(),
                first_seen: now,
            });
            true
        }
        Decision::UpToDate => {
            let had = state
                .containers
                .get_mut(key)
                .and_then(|c| c.candidate.take());
            had.is_some()
        }
        _ => false,
    }
}

/// Records a finished update (or a no-op pull) and clears the candidate.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn digest(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn soaking(new_candidate: bool) -> Decision {
        Decision::Soaking {
            digest: digest('b'),
            first_seen: SystemTime::UNIX_EPOCH,
            rollout_at: SystemTime::UNIX_EPOCH,
            remaining_seconds: 1,
            new_candidate,
        }
    }

    #[test]
    fn new_candidates_start_the_clock_once() {
        let mut state = State::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert!(observe(&mut state, "p/s", &soaking(true), t0));
        assert!(!observe(
            &mut state,
            "p/s",
            &soaking(false),
            t0 + Duration::from_secs(5)
        ));
        let cand = state.containers["p/s"].candidate.clone().unwrap();
        assert_eq!(cand.first_seen, t0);
    }

    #[test]
    fn up_to_date_forgets_the_candidate() {
        let mut state = State::default();
        observe(&mut state, "p/s", &soaking(true), SystemTime::UNIX_EPOCH);
        assert!(observe(
            &mut state,
            "p/s",
            &Decision::UpToDate,
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
