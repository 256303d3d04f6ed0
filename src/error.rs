//! Exit statuses and the few error kinds that choose them. Only [`exit_code`] maps an outcome
//! to a status, and only `main` returns it.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | ok, or nothing to do |
//! | 1 | at least one container failed (update failed, rolled back, registry error) |
//! | 2 | usage or configuration error |
//! | 3 | Docker unreachable |
//! | 75 | another run holds the lock |
//!
//! A closed stdout (`pullpilot plan | head -1`) changes none of these: the output that could not
//! be written is dropped quietly and the command ends with the status above. Any other failure
//! to write stdout turns 0 into 1.

use std::fmt;
use std::process::ExitCode;

/// What a finished command reports besides "it ran".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The command completed, but at least one container failed or could not be checked.
    SomeFailed,
}

/// Error kinds that choose an exit status other than the generic failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    Usage,
    DockerUnreachable,
    LockHeld,
}

impl FailureKind {
    pub fn code(self) -> u8 {
        match self {
            FailureKind::Usage => 2,
            FailureKind::DockerUnreachable => 3,
            FailureKind::LockHeld => 75,
        }
    }
}

/// An error whose kind decides the exit status; its message is the whole sentence.
#[derive(Debug)]
pub struct Failure {
    pub kind: FailureKind,
    message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> anyhow::Error {
        Failure::new(FailureKind::Usage, message).into()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The kind of the first classified error in the chain, if any.
pub fn kind_of(err: &anyhow::Error) -> Option<FailureKind> {
    err.chain().find_map(|cause| {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            return Some(failure.kind);
        }
        cause
            .downcast_ref::<crate::docker::DockerError>()
            .filter(|e| e.is_unreachable())
            .map(|_| FailureKind::DockerUnreachable)
    })
}

/// Maps a command's result to the documented exit status, printing the error if there is one.
pub fn exit_code(result: anyhow::Result<Outcome>) -> ExitCode {
    ExitCode::from(status(result, crate::output::write_failure().as_deref()))
}

/// The status for `result`. Output lost to a closed pipe does not change it (see
/// `crate::output`); output lost to any other write error (`write_failure`) makes a successful
/// run a failure, 1.
fn status(result: anyhow::Result<Outcome>, write_failure: Option<&str>) -> u8 {
    if let Some(why) = write_failure {
        crate::output::error(&anyhow::anyhow!("{why}"));
    }
    match result {
        Ok(Outcome::Ok) if write_failure.is_none() => 0,
        Ok(_) => 1,
        Err(err) => {
            crate::output::error(&err);
            kind_of(&err).map_or(1, FailureKind::code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn kinds_survive_context() {
        let err = Err::<(), _>(Failure::usage("bad PP_SOAK"))
            .context("reading settings")
            .unwrap_err();
        assert_eq!(kind_of(&err), Some(FailureKind::Usage));
        assert_eq!(kind_of(&anyhow::anyhow!("plain")), None);
        assert_eq!(FailureKind::LockHeld.code(), 75);
    }

    #[test]
    fn lost_output_fails_only_a_run_that_would_have_succeeded() {
        assert_eq!(status(Ok(Outcome::Ok), None), 0);
        assert_eq!(status(Ok(Outcome::Ok), Some("disk full")), 1);
        assert_eq!(status(Ok(Outcome::SomeFailed), Some("disk full")), 1);
        assert_eq!(status(Err(Failure::usage("bad")), Some("disk full")), 2);
    }
}
