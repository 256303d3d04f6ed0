//! Sync facade over the Docker Engine API (bollard): the only place tokio and async live.
//!
//! Owns: finding the daemon (`DOCKER_HOST`, `DOCKER_API_VERSION`), negotiating the API version,
//! one current-thread runtime per [`Docker`], a time budget on every call, and the conversion of
//! bollard's models into our plain types. Must not: decide anything about updates, print, or
//! let an `async` fn, a `Future` or a bollard type escape this module.
//!
//! Every method blocks the calling thread; do not call them from inside a tokio runtime.

mod archive;
mod containers;
mod error;
mod images;
mod recreate;
mod types;

#[cfg(test)]
mod facade_tests;
#[cfg(test)]
mod fake_engine;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use bollard::BollardRequest;

pub use error::DockerError;
pub use types::{
    COMPOSE_PROJECT_LABEL, ContainerFacts, ContainerSnapshot, ContainerStatus, ContainerSummary,
    EngineInfo, HealthStatus, Healthcheck, ImageDefaults, ImageFacts, ImageRemoval, NewParent,
    Sharing,
};

use error::{Op, classify};

/// Where Docker listens when neither the caller nor `DOCKER_HOST` says otherwise.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// The oldest API this facade is written for (Docker Engine 20.10).
const MIN_API: ApiVersion = ApiVersion {
    major: 1,
    minor: 41,
};

/// bollard's own per-request limit; ours (in [`Limits`]) are always shorter, so it never fires.
const BOLLARD_TIMEOUT_SECS: u64 = 24 * 60 * 60;

/// Time budgets. Every call is bounded; a stop additionally gets its stop timeout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Reaching the daemon at connect time.
    pub(crate) ping: Duration,
    /// Ordinary calls: list, inspect, create, start, rename, remove, tag.
    pub(crate) call: Duration,
    /// A whole pull, stream included.
    pub(crate) pull: Duration,
}

impl Limits {
    pub(crate) const DEFAULT: Limits = Limits {
        ping: Duration::from_secs(5),
        call: Duration::from_secs(120),
        pull: Duration::from_secs(30 * 60),
    };
}

/// A connection to one Docker daemon. Every method blocks until the daemon answers or the
/// call's time budget runs out; calls from several threads take turns on the one runtime.
pub struct Docker {
    rt: tokio::runtime::Runtime,
    api: bollard::Docker,
    endpoint: String,
    api_version: ApiVersion,
    limits: Limits,
}

impl fmt::Debug for Docker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Docker")
            .field("endpoint", &self.endpoint)
            .field("api_version", &self.api_version.to_string())
            .finish_non_exhaustive()
    }
}

impl Docker {
    /// Connects to `host` (`unix:///path`, `/path`, `tcp://host:port`), or when `None` to
    /// `DOCKER_HOST`, or to [`DEFAULT_HOST`]. Uses `DOCKER_API_VERSION` when set, otherwise the
    /// lower of the daemon's API version and bollard's. Fails fast with
    /// [`DockerError::Unreachable`] when the daemon does not answer within a few seconds.
    pub fn connect(host: Option<&str>) -> Result<Docker, DockerError> {
        let host = host
            .map(str::to_owned)
            .or_else(|| env_value("DOCKER_HOST"))
            .unwrap_or_else(|| DEFAULT_HOST.to_owned());
        let target = DaemonAddress::parse(&host, env_value("DOCKER_TLS_VERIFY").is_some())?;
        let pinned = env_value("DOCKER_API_VERSION");
        Docker::open(&target, pinned.as_deref(), Limits::DEFAULT)
    }

    pub(crate) fn open(
        target: &DaemonAddress,
        pinned_version: Option<&str>,
        limits: Limits,
    ) -> Result<Docker, DockerError> {
        let endpoint = target.display();
        let pinned = pinned_version
            .map(|v| {
                ApiVersion::parse(v).ok_or_else(|| DockerError::Config {
                    message: format!(
                        "DOCKER_API_VERSION={v:?} is not an API version; use the form 1.41 or \
                         unset it to negotiate"
                    ),
                })
            })
            .transpose()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DockerError::Unreachable {
                endpoint: endpoint.clone(),
                reason: format!("cannot start the I/O runtime ({e})"),
                hint: "check the process's limits on open files and threads".to_owned(),
            })?;
        let connecting = Op::new("connecting to", "the daemon".to_owned());
        let raw = {
            let _entered = rt.enter();
            match target {
                DaemonAddress::Unix(path) => bollard::Docker::connect_with_unix(
                    path,
                    BOLLARD_TIMEOUT_SECS,
                    bollard::API_DEFAULT_VERSION,
                ),
                DaemonAddress::Tcp(addr) => bollard::Docker::connect_with_http(
                    addr,
                    BOLLARD_TIMEOUT_SECS,
                    bollard::API_DEFAULT_VERSION,
                ),
            }
            .map_err(|e| classify(&endpoint, &connecting, &e))?
        };
        // The unversioned /version answers on every engine; it doubles as the ping.
        let ping = async { tokio::time::timeout(limits.ping, raw.version()).await };
        let version = match rt.block_on(ping) {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(classify(&endpoint, &connecting, &e)),
            Err(_) => {
                return Err(DockerError::Unreachable {
                    endpoint,
                    reason: format!("no answer within {:?}", limits.ping),
                    hint: "check that the Docker daemon is running and not hung (`systemctl \
                           status docker`)"
                        .to_owned(),
                });
            }
        };
        let api_version = match pinned {
            Some(v) => check_pinned(v, &version, &endpoint)?,
            None => negotiate(version.api_version.as_deref()).map_err(|message| {
                DockerError::Protocol {
                    endpoint: endpoint.clone(),
                    action: "negotiating the API version".to_owned(),
                    message,
                }
            })?,
        };
        log::debug!(
            "connected to Docker {} at {endpoint}, API {api_version}",
            version.version.as_deref().unwrap_or("(unknown version)")
        );
        let api = raw.with_request_modifier(request_modifier(api_version, None));
        Ok(Docker {
            rt,
            api,
            endpoint,
            api_version,
            limits,
        })
    }

    /// The daemon's address, for messages: `unix:///var/run/docker.sock`, `tcp://host:2375`.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The API version every request uses, e.g. `1.41`.
    #[must_use]
    pub fn api_version(&self) -> String {
        self.api_version.to_string()
    }

    /// Version, platform and image store of the daemon.
    pub fn engine_info(&self) -> Result<EngineInfo, DockerError> {
        let op = Op::new("reading", "the engine information".to_owned());
        let version = self.run(&op, self.limits.call, self.api.version())?;
        let info = self.run(&op, self.limits.call, self.api.info())?;
        Ok(types::engine_info(
            &version,
            &info,
            self.api_version.to_string(),
        ))
    }

    /// Runs one bollard call on the runtime, bounded by `limit`, and maps its error.
    fn run<T>(
        &self,
        op: &Op,
        limit: Duration,
        call: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, DockerError> {
        // The timer must be created inside the runtime, hence the async block.
        match self
            .rt
            .block_on(async { tokio::time::timeout(limit, call).await })
        {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(bollard::errors::Error::RequestTimeoutError)) | Err(_) => {
                Err(self.timeout(op, limit))
            }
            Ok(Err(e)) => Err(classify(&self.endpoint, op, &e)),
        }
    }

    fn timeout(&self, op: &Op, after: Duration) -> DockerError {
        DockerError::Timeout {
            endpoint: self.endpoint.clone(),
            action: op.action.clone(),
            after,
        }
    }
}

/// An environment variable's value, unset when empty (as the docker CLI treats it).
fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A parsed daemon address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DaemonAddress {
    /// Path of a unix socket.
    Unix(String),
    /// `host:port` of a plain-HTTP TCP endpoint.
    Tcp(String),
}

impl DaemonAddress {
    pub(crate) fn parse(host: &str, tls_requested: bool) -> Result<DaemonAddress, DockerError> {
        let host = host.trim();
        let unsupported = |why: &str| DockerError::Config {
            message: format!(
                "Docker host {host:?} {why}; use unix:///path/to/docker.sock or tcp://host:port \
                 (DOCKER_HOST or the --host option)"
            ),
        };
        if let Some(path) = host.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(unsupported("names no socket path"));
            }
            return Ok(DaemonAddress::Unix(path.to_owned()));
        }
        if host.starts_with('/') {
            return Ok(DaemonAddress::Unix(host.to_owned()));
        }
        let rest = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"));
        let Some(rest) = rest else {
            return Err(unsupported(
                "uses a scheme pullpilot does not speak (only unix:// and plain tcp://)",
            ));
        };
        if tls_requested {
            return Err(unsupported(
                "is TCP with DOCKER_TLS_VERIFY set, but pullpilot speaks plain TCP only; unset \
                 DOCKER_TLS_VERIFY or use the daemon's unix socket",
            ));
        }
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(unsupported("is not of the form tcp://host:port"));
        }
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
        Ok(DaemonAddress::Tcp(if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:2375")
        }))
    }

    fn display(&self) -> String {
        match self {
            DaemonAddress::Unix(path) => format!("unix://{path}"),
            DaemonAddress::Tcp(addr) => format!("tcp://{addr}"),
        }
    }
}

/// A Docker Engine API version such as `1.41`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ApiVersion {
    major: u32,
    minor: u32,
}

impl ApiVersion {
    pub(crate) fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.trim().split_once('.')?;
        Some(ApiVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }

    fn bollard() -> ApiVersion {
        let v = bollard::API_DEFAULT_VERSION;
        ApiVersion {
            major: u32::try_from(v.major_version).unwrap_or(u32::MAX),
            minor: u32::try_from(v.minor_version).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The version to speak: the daemon's, capped at the one bollard's models describe.
fn negotiate(server: Option<&str>) -> Result<ApiVersion, String> {
    let text = server.ok_or("the daemon did not report its API version")?;
    let server =
        ApiVersion::parse(text).ok_or_else(|| format!("API version {text:?} is not a version"))?;
    if server < MIN_API {
        return Err(format!(
            "the daemon speaks API {server}, older than the oldest supported {MIN_API}"
        ));
    }
    Ok(server.min(ApiVersion::bollard()))
}

/// A `DOCKER_API_VERSION` the daemon does not serve would fail every request; say so once.
fn check_pinned(
    pinned: ApiVersion,
    version: &bollard::models::SystemVersion,
    endpoint: &str,
) -> Result<ApiVersion, DockerError> {
    let parse = |v: Option<&String>| v.and_then(|v| ApiVersion::parse(v));
    let newest = parse(version.api_version.as_ref());
    let oldest = parse(version.min_api_version.as_ref());
    let too_new = newest.is_some_and(|n| pinned > n);
    let too_old = oldest.is_some_and(|o| pinned < o);
    if too_new || too_old {
        let range = match (oldest, newest) {
            (Some(o), Some(n)) => format!("{o} to {n}"),
            (None, Some(n)) => format!("up to {n}"),
            (Some(o), None) => format!("from {o}"),
            (None, None) => "other versions".to_owned(),
        };
        return Err(DockerError::Config {
            message: format!(
                "DOCKER_API_VERSION={pinned} is not served by Docker at {endpoint} (it speaks \
                 API {range}); unset DOCKER_API_VERSION to negotiate, or pick a version in that \
                 range"
            ),
        });
    }
    Ok(pinned)
}

/// bollard 0.21 builds unversioned paths (`/containers/json`), which the daemon serves with
/// its *newest* API. This modifier puts the negotiated `/v1.xx` prefix in front, so request
/// and response shapes are the ones we negotiated, and adds an `X-Registry-Auth` header
/// verbatim (bollard would re-encode credentials with the standard base64 alphabet, which the
/// daemon silently ignores for pulls).
fn request_modifier(
    version: ApiVersion,
    registry_auth: Option<String>,
) -> impl Fn(BollardRequest) -> BollardRequest + Send + Sync + 'static {
    let prefix = format!("/v{version}");
    move |mut request| {
        let rewritten = {
            let uri = request.uri();
            match (uri.scheme_str(), uri.authority(), uri.path_and_query()) {
                (Some(scheme), Some(authority), Some(path_and_query))
                    if !is_versioned(path_and_query.path()) =>
                {
                    Some(format!("{scheme}://{authority}{prefix}{path_and_query}"))
                }
                _ => None,
            }
        };
        if let Some(Ok(uri)) = rewritten.map(|text| text.parse()) {
            *request.uri_mut() = uri;
        }
        if let Some(Ok(value)) = registry_auth.as_deref().map(str::parse) {
            request.headers_mut().insert("x-registry-auth", value);
        }
        request
    }
}

/// True for `/v1.41/...`-style paths.
fn is_versioned(path: &str) -> bool {
    path.strip_prefix("/v")
        .and_then(|rest| rest.split('/').next())
        .and_then(ApiVersion::parse)
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_into_targets() {
        let ok = |host: &str| DaemonAddress::parse(host, false).expect(host);
        assert_eq!(
            ok("unix:///var/run/docker.sock"),
            DaemonAddress::Unix("/var/run/docker.sock".to_owned())
        );
        assert_eq!(
            ok("/run/pptb/d.sock"),
            DaemonAddress::Unix("/run/pptb/d.sock".to_owned())
        );
        assert_eq!(
            ok("tcp://127.0.0.1:2375"),
            DaemonAddress::Tcp("127.0.0.1:2375".to_owned())
        );
        assert_eq!(
            ok("tcp://docker.lan"),
            DaemonAddress::Tcp("docker.lan:2375".to_owned())
        );
        assert_eq!(
            ok("http://[::1]:2376/"),
            DaemonAddress::Tcp("[::1]:2376".to_owned())
        );
        assert_eq!(
            ok("tcp://[::1]"),
            DaemonAddress::Tcp("[::1]:2375".to_owned())
        );
        assert_eq!(ok("tcp://h:1").display(), "tcp://h:1");
        assert_eq!(ok("/s.sock").display(), "unix:///s.sock");
    }

    #[test]
    fn unsupported_hosts_are_config_errors_naming_the_host() {
        for host in [
            "ssh://me@box",
            "npipe:////./pipe/docker_engine",
            "unix://",
            "box:2375",
        ] {
            let err = DaemonAddress::parse(host, false).expect_err(host);
            assert!(err.is_config(), "{host}");
            assert!(err.to_string().contains(&format!("{host:?}")), "{err}");
        }
        let err = DaemonAddress::parse("tcp://box:2376", true).expect_err("tls");
        assert!(err.to_string().contains("DOCKER_TLS_VERIFY"), "{err}");
    }

    #[test]
    fn negotiation_caps_at_bollard_and_refuses_old_engines() {
        assert_eq!(negotiate(Some("1.41")).expect("20.10").to_string(), "1.41");
        assert_eq!(negotiate(Some("1.51")).expect("28.5").to_string(), "1.51");
        assert_eq!(
            negotiate(Some("1.99")).expect("future"),
            ApiVersion::bollard()
        );
        assert!(negotiate(Some("1.40")).is_err());
        assert!(negotiate(Some("banana")).is_err());
        assert!(negotiate(None).is_err());
    }

    #[test]
    fn api_versions_order_numerically() {
        let v = |s| ApiVersion::parse(s).expect(s);
        assert!(v("1.9") < v("1.41"));
        assert!(v("1.41") < v("1.51"));
        assert!(ApiVersion::parse("1").is_none());
    }

    fn request(uri: &str) -> BollardRequest {
        let mut request = BollardRequest::new(bollard::body_full(Vec::<u8>::new().into()));
        *request.uri_mut() = uri.parse().expect("uri");
        request
    }

    #[test]
    fn modifier_prefixes_the_version_once_and_keeps_the_query() {
        let modify = request_modifier(ApiVersion::parse("1.41").expect("v"), None);
        let out = modify(request("unix://2f72756e/containers/json?all=true"));
        assert_eq!(
            out.uri().to_string(),
            "unix://2f72756e/v1.41/containers/json?all=true"
        );
        let again = modify(out);
        assert_eq!(
            again.uri().to_string(),
            "unix://2f72756e/v1.41/containers/json?all=true"
        );
        assert!(again.headers().get("x-registry-auth").is_none());
    }

    #[test]
    fn modifier_adds_the_registry_auth_header_verbatim() {
        let modify = request_modifier(
            ApiVersion::parse("1.51").expect("v"),
            Some("eyJ1c2VybmFtZSI6InUifQ==".to_owned()),
        );
        let out = modify(request("http://127.0.0.1:2375/images/create?fromImage=x"));
        assert_eq!(
            out.uri().to_string(),
            "http://127.0.0.1:2375/v1.51/images/create?fromImage=x"
        );
        assert_eq!(
            out.headers()
                .get("x-registry-auth")
                .map(|v| v.to_str().expect("ascii")),
            Some("eyJ1c2VybmFtZSI6InUifQ==")
        );
    }
}
