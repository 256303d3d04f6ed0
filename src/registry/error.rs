//! [`CheckError`]: why a tag could not be checked, as a short stable `kind()` for callers to
//! branch on and one plain sentence for the operator. Messages never contain a secret.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::{RepoTag, is_docker_hub};

/// Why a check failed. A failed check is never a reason to pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// Connection refused, DNS failure, timeout or TLS failure, after the retries.
    Unreachable { item: RepoTag, detail: String },
    /// HTTP 401: credentials missing, or refused by the registry or its token service.
    Unauthorized {
        item: RepoTag,
        /// Where the refused credentials came from (`the entry for X in /path`), or `None`
        /// when the request was anonymous.
        credentials: Option<String>,
        /// The Docker config file pullpilot reads, for the "how to fix" part.
        config: PathBuf,
    },
    /// HTTP 403: the registry knows who we are and says no.
    Denied {
        item: RepoTag,
        credentials: Option<String>,
    },
    /// HTTP 404: no such tag or repository (or a registry that hides private repositories).
    NotFound { item: RepoTag },
    /// HTTP 429 beyond the retries, or a `Retry-After` longer than the configured cap.
    RateLimited {
        item: RepoTag,
        retry_after: Option<Duration>,
    },
    /// A 5xx after the retries, a malformed digest, or another answer pullpilot cannot use.
    BadResponse { item: RepoTag, detail: String },
    /// The credentials for a host could not be obtained (a credential helper failed).
    Credentials { host: String, detail: String },
}

impl CheckError {
    /// A short stable word for logs, metrics and callers.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "unreachable",
            Self::Unauthorized { .. } => "unauthorized",
            Self::Denied { .. } => "denied",
            Self::NotFound { .. } => "not-found",
            Self::RateLimited { .. } => "rate-limited",
            Self::BadResponse { .. } => "bad-response",
            Self::Credentials { .. } => "credentials",
        }
    }

    /// The same error, about `item` (used when several aliases share one check).
    pub(crate) fn for_item(mut self, new: &RepoTag) -> Self {
        match &mut self {
            Self::Unreachable { item, .. }
            | Self::Unauthorized { item, .. }
            | Self::Denied { item, .. }
            | Self::NotFound { item }
            | Self::RateLimited { item, .. }
            | Self::BadResponse { item, .. } => item.clone_from(new),
            Self::Credentials { .. } => {}
        }
        self
    }
}

/// The `docker login` command for a host (Docker Hub is the default server).
fn login_command(host: &str) -> String {
    if is_docker_hub(host) {
        "docker login".to_owned()
    } else {
        format!("docker login {host}")
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { item, detail } => write!(
                f,
                "cannot reach registry {} to check {}:{}: {detail}; check the network, DNS and \
                 proxy settings of this host, or whether {} is up",
                item.host, item.repository, item.tag, item.host
            ),
            Self::Unauthorized {
                item,
                credentials: Some(origin),
                ..
            } => write!(
                f,
                "registry {} refused the credentials for {}:{} (HTTP 401): check {origin} or run \
                 `{}`",
                item.host,
                item.repository,
                item.tag,
                login_command(&item.host)
            ),
            Self::Unauthorized {
                item,
                credentials: None,
                config,
            } => write!(
                f,
                "registry {} wants credentials for {}:{} (HTTP 401) and none are configured: run \
                 `{}` (pullpilot reads {}), or check the repository name if the image is public",
                item.host,
                item.repository,
                item.tag,
                login_command(&item.host),
                config.display()
            ),
            Self::Denied { item, credentials } => {
                write!(
                    f,
                    "registry {} denied access to {}:{} (HTTP 403): ",
                    item.host, item.repository, item.tag
                )?;
                match credentials {
                    Some(origin) => write!(
                        f,
                        "the account from {origin} has no pull permission there, or a registry \
                         policy blocks this host; check the repository's permissions"
                    ),
                    None => write!(
                        f,
                        "a registry policy blocks anonymous pulls from this host; add credentials \
                         with `{}` or check the registry's access rules",
                        login_command(&item.host)
                    ),
                }
            }
            Self::NotFound { item } => write!(
                f,
                "tag {} not found in {}/{} (HTTP 404): check the image name and tag the container \
                 was created from",
                item.tag, item.host, item.repository
            ),
            Self::RateLimited { item, retry_after } => {
                write!(
                    f,
                    "registry {} is rate limiting pullpilot (HTTP 429) while checking {}:{}",
                    item.host, item.repository, item.tag
                )?;
                if let Some(wait) = retry_after {
                    write!(f, " and asks to wait {}", humantime::format_duration(*wait))?;
                }
                write!(
                    f,
                    ": try again later, check less often, or log in with `{}` for a higher limit",
                    login_command(&item.host)
                )
            }
            Self::BadResponse { item, detail } => write!(
                f,
                "registry {} gave an unusable answer for {}:{}: {detail}; if this persists, check \
                 the registry's status or report it to its operator",
                item.host, item.repository, item.tag
            ),
            Self::Credentials { host, detail } => {
                write!(
                    f,
                    "cannot get the credentials for registry {host}: {detail}"
                )
            }
        }
    }
}

impl std::error::Error for CheckError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> RepoTag {
        RepoTag {
            host: "127.0.0.1:15003".to_owned(),
            repository: "pptb/app".to_owned(),
            tag: "v1".to_owned(),
        }
    }

    #[test]
    fn refused_credentials_message_names_host_image_and_fix() {
        let err = CheckError::Unauthorized {
            item: item(),
            credentials: Some(
                "the entry for 127.0.0.1:15003 in /root/.docker/config.json".to_owned(),
            ),
            config: PathBuf::from("/root/.docker/config.json"),
        };
        assert_eq!(
            err.to_string(),
            "registry 127.0.0.1:15003 refused the credentials for pptb/app:v1 (HTTP 401): check \
             the entry for 127.0.0.1:15003 in /root/.docker/config.json or run `docker login \
             127.0.0.1:15003`"
        );
        assert_eq!(err.kind(), "unauthorized");
    }

    #[test]
    fn every_kind_is_stable_and_every_message_names_the_host() {
        let errs = [
            (
                CheckError::Unreachable {
                    item: item(),
                    detail: "x".into(),
                },
                "unreachable",
            ),
            (
                CheckError::Denied {
                    item: item(),
                    credentials: None,
                },
                "denied",
            ),
            (CheckError::NotFound { item: item() }, "not-found"),
            (
                CheckError::RateLimited {
                    item: item(),
                    retry_after: Some(Duration::from_secs(90)),
                },
                "rate-limited",
            ),
            (
                CheckError::BadResponse {
                    item: item(),
                    detail: "x".into(),
                },
                "bad-response",
            ),
            (
                CheckError::Unauthorized {
                    item: item(),
                    credentials: None,
                    config: PathBuf::from("/c.json"),
                },
                "unauthorized",
            ),
        ];
        for (err, kind) in errs {
            assert_eq!(err.kind(), kind);
            let text = err.to_string();
            assert!(text.contains("127.0.0.1:15003"), "{text}");
            assert!(text.contains("pptb/app"), "{text}");
            assert!(!text.contains('\n'), "{text}");
        }
        let not_found = CheckError::NotFound { item: item() }.to_string();
        assert!(not_found.starts_with("tag v1 not found in 127.0.0.1:15003/pptb/app"));
    }

    #[test]
    fn docker_hub_login_hint_has_no_host() {
        let mut hub = item();
        hub.host = "registry-1.docker.io".to_owned();
        let err = CheckError::Unauthorized {
            item: hub,
            credentials: None,
            config: PathBuf::from("/c.json"),
        };
        assert!(
            err.to_string()
                .contains("run `docker login` (pullpilot reads /c.json)")
        );
    }
}
