//! Test-only crash points for the update protocol's crash-safety tests.
//!
//! Built with the `fault-injection` feature, [`point`] kills the process with SIGKILL when the
//! environment variable `PULLPILOT_CRASH_AT` names that point, exactly as a power cut or an OOM
//! kill would stop it there, and pauses there when `PULLPILOT_PAUSE_AT` names it. In normal
//! builds it compiles to nothing. Unit tests simulate the same kill in process: `crash_at`
//! names a point, and reaching it unwinds the thread (no panic hook runs), leaving the state on
//! disk and the in-memory runtime exactly as a kill would.

/// The variable naming the point to die at (deliberately not `PP_*`: it is not a setting).
pub const CRASH_AT: &str = "PULLPILOT_CRASH_AT";
/// The variable naming a point to pause at for `PULLPILOT_PAUSE_SECS` (default 10) seconds,
/// so a test can act while a run holds the lock.
pub const PAUSE_AT: &str = "PULLPILOT_PAUSE_AT";

/// A named step of the update protocol.
#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    #[cfg(test)]
    test_crash::check(name);
    if std::env::var(PAUSE_AT).is_ok_and(|v| v == name) {
        let secs = std::env::var("PULLPILOT_PAUSE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10);
        log::warn!("Fault injection: pausing {secs}s at step {name}.");
        std::thread::sleep(std::time::Duration::from_secs(secs));
    }
    if std::env::var(CRASH_AT).is_ok_and(|v| v == name) {
        log::warn!("Fault injection: killing pullpilot with SIGKILL at step {name}.");
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

/// A named step of the update protocol (no-op without the `fault-injection` feature).
#[cfg(not(feature = "fault-injection"))]
#[inline]
#[cfg_attr(not(test), allow(unused_variables))]
pub fn point(name: &str) {
    #[cfg(test)]
    test_crash::check(name);
}

/// Every named step, in the order an update reaches them.
pub const POINTS: &[&str] = &[
    "after-pull",
    "after-journal",
    "after-create",
    "after-stop",
    "after-rename-old",
    "after-rename-new",
    "after-start",
    "during-gate",
    "after-pass",
];

/// The named steps of an update that compose carries out (`engine::update::compose`).
pub const COMPOSE_POINTS: &[&str] = &[
    "after-pull",
    "after-journal",
    "before-compose",
    "during-compose",
    "after-compose",
    "during-gate",
    "after-pass",
];

#[cfg(test)]
pub use test_crash::{Crashed, crash_at};

#[cfg(test)]
mod test_crash {
    use std::cell::RefCell;

    thread_local! {
        static CRASH_AT: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    /// The unwind payload of a simulated kill.
    #[derive(Debug)]
    pub struct Crashed(pub String);

    /// Makes this thread "die" at `point` (or never, with `None`).
    pub fn crash_at(point: Option<&str>) {
        CRASH_AT.with(|c| *c.borrow_mut() = point.map(str::to_string));
    }

    pub(super) fn check(name: &str) {
        let hit = CRASH_AT.with(|c| c.borrow().as_deref() == Some(name));
        if hit {
            CRASH_AT.with(|c| *c.borrow_mut() = None);
            std::panic::resume_unwind(Box::new(Crashed(name.to_string())));
        }
    }
}
