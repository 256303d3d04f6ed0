//! Registry client: for each (registry host, repository, tag) it asks the registry which digest
//! the tag points at now, with one manifest `HEAD` per unique tag, and it builds the
//! `X-Registry-Auth` value the Engine needs to pull.
//!
//! This file owns the public types and the host-name rules (Docker Hub aliases, loopback,
//! plain-HTTP hosts). It does no I/O. The work is split by concern:
//! - `client`: checks (the first HEAD's challenge, or a ping when it gives none; token, HEAD,
//!   GET fallback) and parallelism per host;
//! - `transport`: one HTTP exchange with retries, `Retry-After`, redirects and the per-host gate
//!   (serial after a 429 or 503);
//! - `auth`: `WWW-Authenticate` parsing, token responses and the token cache (pure);
//! - `credentials`: Docker's `config.json` and credential helpers;
//! - `error`: [`CheckError`], the typed outcome callers branch on.

mod auth;
mod client;
mod credentials;
mod error;
mod transport;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod testserver;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use crate::reference::Digest;

pub use auth::{Challenge, parse_challenges};
pub use client::{RegistryClient, TagList};
pub use error::CheckError;

/// One thing to check: API host (e.g. `registry-1.docker.io`, `ghcr.io`, `127.0.0.1:15001`,
/// `[::1]:5000`), repository path (`library/nginx`) and tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoTag {
    pub host: String,
    pub repository: String,
    pub tag: String,
}

impl std::fmt::Display for RepoTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}:{}", self.host, self.repository, self.tag)
    }
}

/// How the client talks to registries. Durations are per request; see [`Default`] for values.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// The `DOCKER_CONFIG` directory holding `config.json`; `None` means `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
    /// `PP_INSECURE_REGISTRIES`: `host[:port]` entries that are reached over plain HTTP.
    pub insecure_hosts: Vec<String>,
    /// At most this many requests in flight to one registry host (at least 1); one at a time
    /// after a 429 or 503 (`PP_REGISTRY_CONCURRENCY`).
    pub per_host_concurrency: usize,
    /// Budget for one request, from connecting to the last body byte.
    pub request_timeout: Duration,
    /// Budget for the TCP connect and TLS handshake.
    pub connect_timeout: Duration,
    /// Extra attempts after a 5xx, a timeout or a connection error, and after a 429.
    pub retries: u32,
    /// Base of the exponential backoff between attempts.
    pub backoff: Duration,
    /// A 429 asking to wait longer than this fails the check as rate limited at once.
    pub max_retry_after: Duration,
    /// Directory holding `docker-credential-*` helpers; `None` searches `PATH`.
    pub credential_helper_dir: Option<PathBuf>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            docker_config_dir: None,
            insecure_hosts: Vec::new(),
            per_host_concurrency: 16,
            request_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(10),
            retries: 2,
            backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(60),
            credential_helper_dir: None,
        }
    }
}

/// What the registry says a tag points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteDigest {
    /// `sha256:` followed by 64 lowercase hex digits.
    pub digest: Digest,
    /// The manifest's media type (`Content-Type` without parameters), if sent.
    pub media_type: Option<String>,
    /// True when the registry sent no `Docker-Content-Digest` and the digest was computed
    /// over the body of a `GET` (which counts as a pull on Docker Hub).
    pub from_get_fallback: bool,
    /// Docker Hub's pull-rate headers, when present.
    pub rate_limit: Option<RateLimit>,
}

/// What a tag's index offers for one platform (see [`RegistryClient::platform_digest`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformDigest {
    /// The digest of the platform's image manifest (the index itself when the tag names a
    /// single-platform manifest).
    pub manifest: Digest,
    /// The digest of that manifest's config (the image ID on the classic image store), when
    /// it was asked for.
    pub config: Option<Digest>,
}

/// Docker Hub's `ratelimit-limit` / `ratelimit-remaining` headers (`100;w=21600`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
    /// The `w=` window, when given.
    pub window: Option<Duration>,
}

impl RateLimit {
    /// The limit as JSON: `{"limit": 100, "remaining": 76, "window_seconds": 21600}` (the
    /// window `null` when not given).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "limit": self.limit,
            "remaining": self.remaining,
            "window_seconds": self.window.map(|w| w.as_secs()),
        })
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {} pulls left", self.remaining, self.limit)?;
        match self.window {
            Some(window) => write!(f, " per {}", humantime::format_duration(window)),
            None => Ok(()),
        }
    }
}

/// The Docker Hub API host; the other aliases are folded into it.
pub(crate) const HUB_API_HOST: &str = "registry-1.docker.io";
/// The key Docker uses for Hub credentials (config `auths`, helpers, `serveraddress`).
pub(crate) const HUB_SERVER_ADDRESS: &str = "https://index.docker.io/v1/";
const HUB_ALIASES: [&str; 3] = ["registry-1.docker.io", "index.docker.io", "docker.io"];

/// Whether `host` is one of Docker Hub's names (case-insensitive).
pub(crate) fn is_docker_hub(host: &str) -> bool {
    HUB_ALIASES
        .iter()
        .any(|alias| alias.eq_ignore_ascii_case(host))
}

/// The host requests go to: lowercased, with Docker Hub aliases folded into its API host.
pub(crate) fn api_host(host: &str) -> String {
    if is_docker_hub(host) {
        HUB_API_HOST.to_owned()
    } else {
        host.to_ascii_lowercase()
    }
}

/// `host[:port]` without the port; IPv6 literals keep their brackets.
pub(crate) fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// 127.0.0.0/8, `localhost` and `[::1]`, with any port: the Docker daemon's own insecure set.
pub(crate) fn is_loopback(host: &str) -> bool {
    let name = host_name(host);
    name.eq_ignore_ascii_case("localhost")
        || name == "[::1]"
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Plain HTTP for loopback hosts and for the hosts the operator listed as insecure.
pub(crate) fn allows_plain_http(host: &str, insecure_hosts: &[String]) -> bool {
    is_loopback(host)
        || insecure_hosts.iter().any(|entry| {
            let entry = entry.trim();
            let entry = strip_scheme(entry).trim_end_matches('/');
            entry.eq_ignore_ascii_case(host)
        })
}

/// `https://x/y` → `x/y`; anything else unchanged.
pub(crate) fn strip_scheme(s: &str) -> &str {
    for scheme in ["https://", "http://"] {
        if s.len() >= scheme.len() && s[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return &s[scheme.len()..];
        }
    }
    s
}

/// The digest in `text` if it is `sha256:` followed by exactly 64 lowercase hex digits.
pub(crate) fn sha256_digest(text: &str) -> Option<Digest> {
    if is_valid_digest(text) {
        Digest::parse(text).ok()
    } else {
        None
    }
}

/// The SHA-256 of `data` in lowercase hex (64 digits).
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use std::fmt::Write as _;
    let hash = ring::digest::digest(&ring::digest::SHA256, data);
    hash.as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// `sha256:` followed by exactly 64 lowercase hex digits.
fn is_valid_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_matches_the_standard_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hub_aliases_fold_into_the_api_host() {
        for host in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "Docker.IO",
        ] {
            assert!(is_docker_hub(host), "{host}");
            assert_eq!(api_host(host), HUB_API_HOST);
        }
        assert!(!is_docker_hub("ghcr.io"));
        assert_eq!(api_host("GHCR.io"), "ghcr.io");
    }

    #[test]
    fn host_name_strips_only_a_port() {
        let cases = [
            ("ghcr.io", "ghcr.io"),
            ("myreg:5000", "myreg"),
            ("127.0.0.1:15001", "127.0.0.1"),
            ("[::1]:5000", "[::1]"),
            ("[::1]", "[::1]"),
            ("[fc00::1]:5000", "[fc00::1]"),
        ];
        for (input, want) in cases {
            assert_eq!(host_name(input), want, "{input}");
        }
    }

    #[test]
    fn plain_http_only_for_loopback_and_listed_hosts() {
        let insecure = vec![
            "myreg:5000".to_owned(),
            "http://lan.example:8080/".to_owned(),
        ];
        let cases = [
            ("127.0.0.1:15001", true),
            ("127.9.9.9", true),
            ("localhost", true),
            ("LOCALHOST:5000", true),
            ("[::1]:5000", true),
            ("myreg:5000", true),
            ("lan.example:8080", true),
            ("myreg", false),
            ("myreg:5001", false),
            ("128.0.0.1:5000", false),
            ("localhost.example.com", false),
            ("ghcr.io", false),
            ("[fc00::1]:5000", false),
        ];
        for (host, want) in cases {
            assert_eq!(allows_plain_http(host, &insecure), want, "{host}");
        }
    }

    #[test]
    fn digest_validation_requires_lowercase_sha256() {
        let good = format!("sha256:{}", "ab".repeat(32));
        assert!(is_valid_digest(&good));
        assert!(!is_valid_digest(&good.to_uppercase()));
        assert!(!is_valid_digest(&format!("sha256:{}", "AB".repeat(32))));
        assert!(!is_valid_digest(&format!("sha512:{}", "ab".repeat(64))));
        assert!(!is_valid_digest(&format!("sha256:{}", "ab".repeat(31))));
        assert!(!is_valid_digest(&format!("sha256:{}g", "a".repeat(63))));
        assert!(!is_valid_digest(""));
        assert_eq!(sha256_digest(&good).map(|d| d.to_string()), Some(good));
        assert_eq!(sha256_digest(&format!("sha512:{}", "ab".repeat(64))), None);
    }

    #[test]
    fn rate_limit_reads_as_a_sentence() {
        let limit = RateLimit {
            limit: 100,
            remaining: 76,
            window: Some(Duration::from_secs(21600)),
        };
        assert_eq!(limit.to_string(), "76 of 100 pulls left per 6h");
    }
}
