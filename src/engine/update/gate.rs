//! The health gate: its policy (labels merged over settings, in [`GatePolicy::merge`] only),
//! the pure verdict on one observation of a freshly started container ([`judge`]), and the
//! updater's polling of the runtime until [`judge`] says pass or fail.
//!
//! With a healthcheck: `healthy` passes; `unhealthy`, an exit, a restart or the timeout fails.
//! Exits are caught early, not at the deadline. Without a healthcheck: the container must keep
//! running, with no restart, for the stable window.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{Executor, UpdateKnobs};
use crate::fault;
use crate::labels::Policy;

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

/// How often the health gate looks at the container.
const GATE_POLL: Duration = Duration::from_millis(500);

impl GatePolicy {
    /// The policy for one container: its `io.pullpilot.health-timeout` and
    /// `io.pullpilot.health-stable` labels, else the settings. The one place they are merged.
    pub fn merge(labels: &Policy, knobs: &UpdateKnobs) -> GatePolicy {
        GatePolicy {
            timeout: labels.health_timeout.unwrap_or(knobs.health_timeout),
            stable: labels.health_stable.unwrap_or(knobs.health_stable),
        }
    }

    /// The policy for a container known only by its labels and its image's (heal, followers):
    /// as in discovery, the image's own policy labels are not the operator's.
    pub fn from_labels(
        container: &BTreeMap<String, String>,
        image: &BTreeMap<String, String>,
        knobs: &UpdateKnobs,
    ) -> GatePolicy {
        GatePolicy::merge(
            &crate::labels::parse_container(container, image, None, false).policy,
            knobs,
        )
    }
}

impl Executor<'_> {
    /// Polls the container until the gate passes or fails.
    pub(super) fn gate(&self, id: &str, policy: GatePolicy) -> Result<Verdict> {
        let started = Instant::now();
        let mut baseline = None;
        loop {
            let facts = self.runtime.inspect_container(id)?;
            fault::point("during-gate");
            let baseline = *baseline.get_or_insert(facts.restart_count);
            let obs = Observation {
                running: facts.running,
                restarting: facts.status == crate::docker::ContainerStatus::Restarting,
                exit_code: facts.exit_code,
                restart_count: facts.restart_count,
                health: if facts.has_healthcheck {
                    Some(
                        facts
                            .health
                            .map_or_else(|| "starting".to_string(), |h| h.to_string()),
                    )
                } else {
                    None
                },
            };
            match judge(&obs, baseline, started.elapsed(), policy) {
                Verdict::Wait => thread::sleep(GATE_POLL),
                verdict => return Ok(verdict),
            }
        }
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
