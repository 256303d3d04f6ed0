//! The one error type of the Docker facade, and the mapping from bollard's errors onto it.
//!
//! Owns: [`DockerError`] (what callers branch on: unreachable, not found, conflict, …) and the
//! wording of every Docker-related message. Must not: talk to Docker or decide exit codes.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

/// Why a Docker call failed. Callers branch on the variant (or on `is_unreachable`,
/// `is_not_found`, `is_conflict`); everything else is reported as is. Messages are whole
/// sentences that name the endpoint and, where there is one, the next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerError {
    /// The daemon cannot be reached at all: the socket is missing, the connection is refused,
    /// permission is denied, or it does not answer a ping in time. The CLI maps this to exit 3.
    Unreachable {
        endpoint: String,
        reason: String,
        hint: String,
    },
    /// A setting that selects the daemon (`DOCKER_HOST`, `DOCKER_API_VERSION`) or an argument is
    /// unusable; nothing was sent. The CLI maps this to exit 2.
    Config { message: String },
    /// The object does not exist (HTTP 404).
    NotFound {
        endpoint: String,
        action: String,
        object: String,
    },
    /// The daemon refused the request with an error status other than 404.
    Api {
        endpoint: String,
        action: String,
        status: u16,
        message: String,
    },
    /// A pull stream reported an error, or ended without producing the image.
    Pull {
        endpoint: String,
        image: String,
        message: String,
    },
    /// The daemon took longer than the call's time budget.
    Timeout {
        endpoint: String,
        action: String,
        after: Duration,
    },
    /// The daemon answered something we could not understand.
    Protocol {
        endpoint: String,
        action: String,
        message: String,
    },
}

impl DockerError {
    /// True when the daemon could not be reached at all (exit code 3).
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        matches!(self, DockerError::Unreachable { .. })
    }

    /// True for HTTP 404: the container or image does not exist.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, DockerError::NotFound { .. })
    }

    /// True for HTTP 409: a name is taken, an image is in use, a container is running, ….
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, DockerError::Api { status: 409, .. })
    }

    /// True when a setting or argument was unusable (exit code 2).
    #[must_use]
    pub fn is_config(&self) -> bool {
        matches!(self, DockerError::Config { .. })
    }
}

impl fmt::Display for DockerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerError::Unreachable {
                endpoint,
                reason,
                hint,
            } => write!(f, "cannot reach Docker at {endpoint}: {reason}; {hint}"),
            DockerError::Config { message } => f.write_str(message),
            DockerError::NotFound {
                endpoint,
                action,
                object,
            } => write!(
                f,
                "{action} on Docker at {endpoint} failed: no such {object}; it may have been \
                 removed meanwhile (check with `docker ps -a` or `docker images`)"
            ),
            DockerError::Api {
                endpoint,
                action,
                status,
                message,
            } => write!(
                f,
                "{action} on Docker at {endpoint} failed: {message} (HTTP {status}); {}",
                status_hint(*status)
            ),
            DockerError::Pull {
                endpoint,
                image,
                message,
            } => write!(
                f,
                "pulling {image} through Docker at {endpoint} failed: {message}; check that the \
                 Docker host can reach the registry and that the credentials are right"
            ),
            DockerError::Timeout {
                endpoint,
                action,
                after,
            } => write!(
                f,
                "{action} on Docker at {endpoint} got no answer within {after:?}; check that \
                 the daemon is healthy (`docker info`) and not overloaded"
            ),
            DockerError::Protocol {
                endpoint,
                action,
                message,
            } => write!(
                f,
                "{action} on Docker at {endpoint} failed: unexpected answer ({message}); \
                 pullpilot needs Docker Engine 20.10 (API 1.41) or newer"
            ),
        }
    }
}

impl StdError for DockerError {}

fn status_hint(status: u16) -> &'static str {
    match status {
        409 => "another container or image holds it; look with `docker ps -a`",
        400..=499 => {
            "the request was rejected; please report this as a pullpilot bug if it repeats"
        }
        _ => "see the Docker daemon's log (`journalctl -u docker`)",
    }
}

/// What a call was doing, for messages: `action` is a phrase such as
/// `inspecting container "web-1"`, `object` what a 404 means (`container "web-1"`).
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub(crate) action: String,
    pub(crate) object: String,
}

impl Op {
    pub(crate) fn new(verb: &str, object: String) -> Op {
        Op {
            action: format!("{verb} {object}"),
            object,
        }
    }
}

/// Maps a bollard error raised while performing `op` on `endpoint` to a [`DockerError`].
pub(crate) fn classify(endpoint: &str, op: &Op, err: &bollard::errors::Error) -> DockerError {
    use bollard::errors::Error as B;
    let endpoint = endpoint.to_owned();
    match err {
        B::DockerResponseServerError {
            status_code: 404, ..
        } => DockerError::NotFound {
            endpoint,
            action: op.action.clone(),
            object: op.object.clone(),
        },
        B::DockerResponseServerError {
            status_code,
            message,
        } => DockerError::Api {
            endpoint,
            action: op.action.clone(),
            status: *status_code,
            message: message.trim().to_owned(),
        },
        B::SocketNotFoundError(path) => DockerError::Unreachable {
            endpoint,
            reason: format!("the socket {path} does not exist"),
            hint: HINT_NOT_RUNNING.to_owned(),
        },
        B::RequestTimeoutError => DockerError::Timeout {
            endpoint,
            action: op.action.clone(),
            after: Duration::ZERO,
        },
        B::DockerStreamError { error } => DockerError::Api {
            endpoint,
            action: op.action.clone(),
            status: 500,
            message: error.clone(),
        },
        B::JsonDataError { message, .. } => DockerError::Protocol {
            endpoint,
            action: op.action.clone(),
            message: message.clone(),
        },
        B::JsonSerdeError { err } => DockerError::Protocol {
            endpoint,
            action: op.action.clone(),
            message: err.to_string(),
        },
        B::APIVersionParseError {} => DockerError::Protocol {
            endpoint,
            action: op.action.clone(),
            message: "the API version could not be parsed".to_owned(),
        },
        other => transport_error(endpoint, other),
    }
}

const HINT_NOT_RUNNING: &str =
    "start the Docker daemon (`systemctl start docker`) or point DOCKER_HOST at its socket";
const HINT_PERMISSION: &str =
    "run as root or add the user to the \"docker\" group (SupplementaryGroups=docker)";

/// Everything below HTTP (connect, read, write) means the daemon is not reachable.
fn transport_error(endpoint: String, err: &bollard::errors::Error) -> DockerError {
    let (reason, hint) = match io_kind(err) {
        Some(io::ErrorKind::PermissionDenied) => ("permission denied".to_owned(), HINT_PERMISSION),
        Some(io::ErrorKind::ConnectionRefused) => {
            ("connection refused".to_owned(), HINT_NOT_RUNNING)
        }
        Some(io::ErrorKind::NotFound) => ("the socket does not exist".to_owned(), HINT_NOT_RUNNING),
        _ => (chain(err), HINT_NOT_RUNNING),
    };
    DockerError::Unreachable {
        endpoint,
        reason,
        hint: hint.to_owned(),
    }
}

/// The kind of the first `io::Error` in the source chain, if any.
fn io_kind(err: &bollard::errors::Error) -> Option<io::ErrorKind> {
    // `IOError` is `#[error(transparent)]`: its `source()` skips the io::Error itself.
    if let bollard::errors::Error::IOError { err } = err {
        return Some(err.kind());
    }
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        current = e.source();
    }
    None
}

/// `outer: inner: innermost`, without repeating a message a wrapper already contains.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        current = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op() -> Op {
        Op::new("inspecting", "container \"web-1\"".to_owned())
    }

    const EP: &str = "unix:///run/docker.sock";

    #[test]
    fn status_404_is_not_found_naming_the_object() {
        let err = bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message: "No such container: web-1".to_owned(),
        };
        let mapped = classify(EP, &op(), &err);
        assert!(mapped.is_not_found());
        assert_eq!(
            mapped.to_string(),
            "inspecting container \"web-1\" on Docker at unix:///run/docker.sock failed: no such \
             container \"web-1\"; it may have been removed meanwhile (check with `docker ps -a` \
             or `docker images`)"
        );
    }

    #[test]
    fn status_409_is_a_conflict_with_the_daemon_message() {
        let err = bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message: "Conflict. The container name \"/web-1\" is already in use\n".to_owned(),
        };
        let mapped = classify(EP, &op(), &err);
        assert!(mapped.is_conflict());
        assert!(mapped.to_string().contains("is already in use (HTTP 409)"));
    }

    #[test]
    fn missing_socket_is_unreachable_with_a_next_step() {
        let err = bollard::errors::Error::SocketNotFoundError("/run/docker.sock".to_owned());
        let mapped = classify(EP, &op(), &err);
        assert!(mapped.is_unreachable());
        assert_eq!(
            mapped.to_string(),
            "cannot reach Docker at unix:///run/docker.sock: the socket /run/docker.sock does \
             not exist; start the Docker daemon (`systemctl start docker`) or point DOCKER_HOST \
             at its socket"
        );
    }

    #[test]
    fn permission_denied_io_error_says_how_to_fix_it() {
        let err = bollard::errors::Error::IOError {
            err: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        let mapped = classify(EP, &op(), &err);
        assert_eq!(
            mapped.to_string(),
            "cannot reach Docker at unix:///run/docker.sock: permission denied; run as root or \
             add the user to the \"docker\" group (SupplementaryGroups=docker)"
        );
    }

    #[test]
    fn bad_json_is_a_protocol_error() {
        let err = bollard::errors::Error::JsonDataError {
            message: "missing field".to_owned(),
            column: 3,
        };
        assert!(matches!(
            classify(EP, &op(), &err),
            DockerError::Protocol { .. }
        ));
    }
}
