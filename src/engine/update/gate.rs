//! The health gate's verdict on one observation of a freshly started container. Pure; the
//! updater polls Docker and asks [`judge`] until it says pass or fail.
//!
//! With a healthcheck: `healthy` passes; `unhealthy`, an exit, a restart or the timeout fails.
//! Exits are caught early, not at the deadline. Without a healthcheck: the container must keep
//! running, with no restart, for the stable window.

use std::time::Duration;

/// How long to wait, from the container's labels or the global settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatePolicy {
    pub timeout: Duration,
    pub stable: Duration,
}

/// What Docker said about the container at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    pub running: bool,
    pub restarting: bool,
    pub exit_code: i64,
    pub restart_count: i64,
    /// `starting`, `healthy` or `unhealthy`; `None` when the container has no healthcheck.
    pub health: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail(String),
    Wait,
}

/// Judges one observation made `elapsed` after the start; `baseline_restarts` is the restart
/// count seen right after the start.
pub fn judge(
    obs: &Observation,
    baseline_restarts: i64,
    elapsed: Duration,
    policy: GatePolicy,
) -> Verdict {
    if obs.restarting || obs.restart_count > baseline_restarts {
        return Verdict::Fail(format!(
            "it restarted {} time(s) (last exit code {})",
            (obs.restart_count - baseline_restarts).max(1),
            obs.exit_code
        ));
    }
    if !obs.running {
        return Verdict::Fail(format!("it exited with code {}", obs.exit_code));
    }
    match obs.health.as_deref() {
        Some("healthy") => Verdict::Pass,
        Some("unhealthy") => Verdict::Fail("its healthcheck reported unhealthy".into()),
        Some(_) if elapsed >= policy.timeout => Verdict::Fail(format!(
            "it did not become healthy within {}",
            crate::values::format_duration(policy.timeout)
        )),
        None if elapsed >= policy.stable => Verdict::Pass,
        Some(_) | None => Verdict::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: GatePolicy = GatePolicy {
        timeout: Duration::from_secs(90),
        stable: Duration::from_secs(10),
    };

    fn running(health: Option<&str>) -> Observation {
        Observation {
            running: true,
            health: health.map(str::to_string),
            ..Observation::default()
        }
    }

    fn at(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn healthcheck_healthy_passes_at_once() {
        assert_eq!(
            judge(&running(Some("healthy")), 0, at(1), POLICY),
            Verdict::Pass
        );
    }

    #[test]
    fn healthcheck_starting_waits_until_the_timeout() {
        assert_eq!(
            judge(&running(Some("starting")), 0, at(89), POLICY),
            Verdict::Wait
        );
        let v = judge(&running(Some("starting")), 0, at(90), POLICY);
        assert!(
            matches!(v, Verdict::Fail(ref m) if m.contains("within 1m 30s")),
            "{v:?}"
        );
    }

    #[test]
    fn unhealthy_fails() {
        assert!(matches!(
            judge(&running(Some("unhealthy")), 0, at(5), POLICY),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn an_exit_fails_early_even_with_a_healthcheck() {
        let exited = Observation {
            exit_code: 1,
            health: Some("starting".into()),
            ..Observation::default()
        };
        let v = judge(&exited, 0, at(2), POLICY);
        assert_eq!(v, Verdict::Fail("it exited with code 1".into()));
    }

    #[test]
    fn a_restart_fails_with_or_without_healthcheck() {
        let mut obs = running(None);
        obs.restart_count = 3;
        assert!(matches!(judge(&obs, 2, at(3), POLICY), Verdict::Fail(_)));
        let restarting = Observation {
            restarting: true,
            running: true,
            exit_code: 1,
            ..Observation::default()
        };
        assert!(matches!(
            judge(&restarting, 0, at(3), POLICY),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn without_healthcheck_it_must_stay_up_for_the_stable_window() {
        assert_eq!(judge(&running(None), 0, at(9), POLICY), Verdict::Wait);
        assert_eq!(judge(&running(None), 0, at(10), POLICY), Verdict::Pass);
        let stopped = Observation {
            exit_code: 137,
            ..Observation::default()
        };
        assert!(matches!(
            judge(&stopped, 0, at(4), POLICY),
            Verdict::Fail(_)
        ));
    }
}
