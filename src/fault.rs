//! Test-only crash points for the update protocol's crash-safety tests.
//!
//! Built with the `fault-injection` feature, [`point`] kills the process with SIGKILL when the
//! environment variable `PULLPILOT_CRASH_AT` names that point, exactly as a power cut or an OOM
//! kill would stop it there. In normal builds it compiles to nothing.

/// The variable naming the point to die at (deliberately not `PP_*`: it is not a setting).
pub const CRASH_AT: &str = "PULLPILOT_CRASH_AT";

/// A named step of the update protocol.
#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
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
