//! Test-only crash points for the update protocol's crash-safety tests.
//!
//! Built with the `fault-injection` feature, [`point`] kills the process with SIGKILL when the
//! environment variable `PULLPILOT_CRASH_AT` names that point, exactly as a power cut or an OOM
//! kill would stop it there, and pauses there when `PULLPILOT_PAUSE_AT` names it. In normal
//! builds it compiles to nothing.

/// The variable naming the point to die at (deliberately not `PP_*`: it is not a setting).
pub const CRASH_AT: &str = "PULLPILOT_CRASH_AT";
/// The variable naming a point to pause at for `PULLPILOT_PAUSE_SECS` (default 10) seconds,
/// so a test can act while a run holds the lock.
pub const PAUSE_AT: &str = "PULLPILOT_PAUSE_AT";

/// A named step of the update protocol.
#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
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
pub fn point(_name: &str) {}
