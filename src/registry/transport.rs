//! HTTP for the registry client: one shared `ureq::Agent`, the per-host gate (concurrency cap,
//! serial mode after a 429 or 503, pause after a 429), retries with backoff, `Retry-After`, and
//! redirects that never carry `Authorization` to another origin. Knows nothing about manifests
//! or tokens.
//!
//! Over 500 lines: one round trip with its admission, retries, redirects and limits is read
//! best in one place.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ureq::http::HeaderMap;

use super::{RegistryOptions, allows_plain_http, is_loopback};

/// Largest body read (manifests, token answers).
pub(crate) const BODY_LIMIT: u64 = 4 * 1024 * 1024;
/// Redirect hops followed before giving up.
const MAX_REDIRECTS: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RegistryMethod {
    Head,
    Get,
    Post,
}

impl RegistryMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Head => "HEAD",
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// One logical request. `authorization` is only ever sent to the origin of `url`.
pub(crate) struct RegistryRequest<'a> {
    pub(crate) method: RegistryMethod,
    pub(crate) url: String,
    pub(crate) accept: Option<&'a str>,
    pub(crate) authorization: Option<&'a str>,
    /// An `application/x-www-form-urlencoded` body (POST only).
    pub(crate) form: Option<String>,
}

pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    /// Empty for HEAD.
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    }

    pub(crate) fn header_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
    }
}

/// Why a request produced no usable response, independent of what was being checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TransportFailure {
    /// Connection, DNS, TLS or timeout failure (after retries where retrying makes sense).
    Unreachable(String),
    /// 5xx on every attempt.
    ServerError { status: u16, attempts: u32 },
    /// 429 beyond the retries or with a `Retry-After` over the cap.
    RateLimited(Option<Duration>),
    /// A protocol-level problem (bad redirect, oversized body, malformed HTTP).
    Bad(String),
}

/// Admission to one host: at most `cap` requests in flight (1 once serialised by a 429 or a
/// 503), none while paused after a 429.
pub(crate) struct HostLimit {
    cap: usize,
    state: Mutex<GateState>,
    wake: Condvar,
}

#[derive(Default)]
struct GateState {
    in_flight: usize,
    serial: bool,
    paused_until: Option<Instant>,
}

pub(crate) struct Permit<'a>(&'a HostLimit);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.in_flight -= 1;
        self.0.wake.notify_all();
    }
}

impl HostLimit {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            state: Mutex::default(),
            wake: Condvar::new(),
        }
    }

    pub(crate) fn acquire(&self) -> Permit<'_> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now = Instant::now();
            if let Some(until) = state.paused_until.filter(|until| *until > now) {
                state = self
                    .wake
                    .wait_timeout(state, until - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                continue;
            }
            let limit = if state.serial { 1 } else { self.cap };
            if state.in_flight < limit {
                state.in_flight += 1;
                return Permit(self);
            }
            state = self
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// After a 429: one request at a time from now on, and none before `until`.
    fn throttle(&self, until: Instant) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.serial = true;
        state.paused_until = Some(state.paused_until.map_or(until, |t| t.max(until)));
        self.wake.notify_all();
    }

    /// After a 503: one request at a time from now on.
    fn serialise(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.serial = true;
    }

    pub(crate) fn is_serial(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .serial
    }
}

/// The HTTP side of the client: the agent and the retry policy.
pub(crate) struct Transport {
    agent: ureq::Agent,
    retries: u32,
    backoff: Duration,
    max_retry_after: Duration,
    request_timeout: Duration,
    insecure_hosts: Vec<String>,
}

/// One failed attempt, and whether another could succeed.
struct AttemptError {
    failure: TransportFailure,
    retryable: bool,
}

impl Transport {
    pub(crate) fn new(opts: &RegistryOptions) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Redirects are followed by hand so Authorization never leaves its origin.
            .max_redirects(0)
            .timeout_global(Some(opts.request_timeout))
            .timeout_connect(Some(opts.connect_timeout))
            .user_agent(concat!("pullpilot/", env!("CARGO_PKG_VERSION")))
            // Keep every connection of a full fan-out for the next request to that host
            // (ureq keeps 3 per host by default: the rest would be reopened each round).
            .max_idle_connections_per_host(opts.per_host_concurrency.max(1))
            .max_idle_connections(opts.per_host_concurrency.max(1).saturating_mul(4).max(10))
            .tls_config(tls_config())
            .build();
        Self {
            agent: config.new_agent(),
            retries: opts.retries,
            backoff: opts.backoff,
            max_retry_after: opts.max_retry_after,
            request_timeout: opts.request_timeout,
            insecure_hosts: opts.insecure_hosts.clone(),
        }
    }

    /// Sends `req` through `gate`, retrying 5xx, timeouts and connection errors `retries`
    /// times with backoff, and honouring `Retry-After` on 429 (which serialises the host).
    pub(crate) fn send(
        &self,
        gate: &HostLimit,
        req: &RegistryRequest<'_>,
    ) -> Result<Response, TransportFailure> {
        let mut attempt = 0;
        let mut limited = 0;
        loop {
            let outcome = {
                let _permit = gate.acquire();
                self.follow(req)
            };
            match outcome {
                Ok(resp) if resp.status == 429 => {
                    let wait = resp
                        .header("retry-after")
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    if limited >= self.retries || wait.is_some_and(|w| w > self.max_retry_after) {
                        return Err(TransportFailure::RateLimited(wait));
                    }
                    limited += 1;
                    let wait = wait.unwrap_or_else(|| backoff_delay(self.backoff, limited));
                    log::debug!(
                        "{} {}: 429, waiting {} and serialising this host",
                        req.method.as_str(),
                        redact(&req.url),
                        humantime::format_duration(wait)
                    );
                    gate.throttle(Instant::now() + wait);
                }
                Ok(resp) if resp.status >= 500 => {
                    if resp.status == 503 && !gate.is_serial() {
                        // Overloaded: the rest of this host's requests go one at a time.
                        log::debug!(
                            "{} {}: 503, serialising this host",
                            req.method.as_str(),
                            redact(&req.url)
                        );
                        gate.serialise();
                    }
                    if attempt >= self.retries {
                        return Err(TransportFailure::ServerError {
                            status: resp.status,
                            attempts: attempt + 1,
                        });
                    }
                    attempt += 1;
                    self.pause_before_retry(req, &format!("HTTP {}", resp.status), attempt);
                }
                Ok(resp) => return Ok(resp),
                Err(e) if e.retryable && attempt < self.retries => {
                    attempt += 1;
                    let why = match &e.failure {
                        TransportFailure::Unreachable(why) | TransportFailure::Bad(why) => {
                            why.as_str()
                        }
                        TransportFailure::ServerError { .. } | TransportFailure::RateLimited(_) => {
                            "it failed"
                        }
                    };
                    self.pause_before_retry(req, why, attempt);
                }
                Err(e) => {
                    return Err(match e.failure {
                        TransportFailure::Unreachable(why) if attempt > 0 => {
                            TransportFailure::Unreachable(format!(
                                "{why} (on all {} attempts)",
                                attempt + 1
                            ))
                        }
                        other => other,
                    });
                }
            }
        }
    }

    /// Logs why an attempt failed and sleeps the backoff before attempt `attempt + 1`.
    fn pause_before_retry(&self, req: &RegistryRequest<'_>, why: &str, attempt: u32) {
        let wait = backoff_delay(self.backoff, attempt);
        log::debug!(
            "{} {}: {why}; trying again in {} (attempt {} of {})",
            req.method.as_str(),
            redact(&req.url),
            crate::values::format_millis(wait),
            attempt + 1,
            self.retries + 1
        );
        std::thread::sleep(wait);
    }

    /// One attempt, following up to [`MAX_REDIRECTS`] redirects. `Authorization` goes only to
    /// the original origin, and an HTTPS → HTTP downgrade is refused unless allowed.
    fn follow(&self, req: &RegistryRequest<'_>) -> Result<Response, AttemptError> {
        let origin = origin_of(&req.url);
        let mut url = req.url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let same_origin = origin_of(&url) == origin;
            let authorization = req.authorization.filter(|_| same_origin);
            let resp = self.exchange(req, &url, authorization)?;
            if !matches!(resp.status, 301 | 302 | 303 | 307 | 308) {
                return Ok(resp);
            }
            let bad = |why: String| AttemptError {
                failure: TransportFailure::Bad(why),
                retryable: false,
            };
            if req.method == RegistryMethod::Post {
                return Err(bad(format!(
                    "the token service redirected a POST (HTTP {})",
                    resp.status
                )));
            }
            let location = resp
                .header("location")
                .ok_or_else(|| bad(format!("HTTP {} redirect without a Location", resp.status)))?;
            let next = resolve_location(&url, location)
                .ok_or_else(|| bad("a redirect to an unusable location".to_owned()))?;
            let (scheme, host) = origin_of(&next)
                .ok_or_else(|| bad("a redirect to an unusable location".to_owned()))?;
            if scheme == "http" && !allows_plain_http(&host, &self.insecure_hosts) {
                return Err(bad(format!(
                    "a redirect to plain HTTP on {host}, which is refused"
                )));
            }
            log::debug!(
                "{} {} redirects to {}",
                req.method.as_str(),
                redact(&url),
                redact(&next)
            );
            url = next;
        }
        Err(AttemptError {
            failure: TransportFailure::Bad(format!("more than {MAX_REDIRECTS} redirects")),
            retryable: false,
        })
    }

    fn exchange(
        &self,
        req: &RegistryRequest<'_>,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<Response, AttemptError> {
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(accept) = req.accept {
            headers.push(("Accept", accept));
        }
        if let Some(auth) = authorization {
            headers.push(("Authorization", auth));
        }
        // A proxy from the environment is never used for loopback registries.
        let direct = origin_of(url).is_some_and(|(_, host)| is_loopback(&host));
        let result = match req.method {
            RegistryMethod::Head => prepare(self.agent.head(url), &headers, direct).call(),
            RegistryMethod::Get => prepare(self.agent.get(url), &headers, direct).call(),
            RegistryMethod::Post => {
                let builder = self
                    .agent
                    .post(url)
                    .header("Content-Type", "application/x-www-form-urlencoded");
                prepare(builder, &headers, direct).send(req.form.clone().unwrap_or_default())
            }
        };
        let mut resp = result.map_err(|e| self.classify(&e))?;
        let status = resp.status().as_u16();
        log::debug!("{} {} -> {status}", req.method.as_str(), redact(url));
        let body = if req.method == RegistryMethod::Head {
            Vec::new()
        } else {
            resp.body_mut()
                .with_config()
                .limit(BODY_LIMIT)
                .read_to_vec()
                .map_err(|e| match e {
                    ureq::Error::BodyExceedsLimit(_) => AttemptError {
                        failure: TransportFailure::Bad(format!(
                            "a response body larger than {} MiB",
                            BODY_LIMIT >> 20
                        )),
                        retryable: false,
                    },
                    other => self.classify(&other),
                })?
        };
        Ok(Response {
            status,
            headers: resp.headers().clone(),
            body,
        })
    }

    fn classify(&self, e: &ureq::Error) -> AttemptError {
        let (failure, retryable) = match e {
            ureq::Error::Timeout(_) => (
                TransportFailure::Unreachable(format!(
                    "no answer within {}",
                    humantime::format_duration(self.request_timeout)
                )),
                true,
            ),
            ureq::Error::HostNotFound => (
                TransportFailure::Unreachable("the host name does not resolve".to_owned()),
                true,
            ),
            ureq::Error::ConnectionFailed | ureq::Error::BodyStalled => (
                TransportFailure::Unreachable("the connection failed".to_owned()),
                true,
            ),
            ureq::Error::Io(io) => (TransportFailure::Unreachable(describe_io(io)), true),
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => (
                TransportFailure::Unreachable(format!(
                    "TLS failed ({e}); if the registry uses a private CA, add it to the system's \
                     CA bundle"
                )),
                false,
            ),
            other => (
                TransportFailure::Bad(format!("an HTTP protocol error ({other})")),
                false,
            ),
        };
        AttemptError { failure, retryable }
    }
}

fn prepare<B>(
    mut builder: ureq::RequestBuilder<B>,
    headers: &[(&str, &str)],
    direct: bool,
) -> ureq::RequestBuilder<B> {
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    if direct {
        builder.config().proxy(None).build()
    } else {
        builder
    }
}

fn describe_io(io: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match io.kind() {
        ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        ErrorKind::ConnectionReset => "connection reset by the server".to_owned(),
        ErrorKind::TimedOut => "the connection timed out".to_owned(),
        ErrorKind::UnexpectedEof => "the server closed the connection early".to_owned(),
        _ => io.to_string(),
    }
}

/// The system CA bundle when one is found (as the Docker daemon uses), else the Mozilla roots
/// compiled into ureq (webpki-roots).
fn tls_config() -> ureq::tls::TlsConfig {
    let candidates = [
        std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from),
        Some("/etc/ssl/certs/ca-certificates.crt".into()),
        Some("/etc/pki/tls/certs/ca-bundle.crt".into()),
        Some("/etc/ssl/cert.pem".into()),
    ];
    for path in candidates.into_iter().flatten() {
        let Ok(pem) = std::fs::read(&path) else {
            continue;
        };
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        if !certs.is_empty() {
            log::debug!(
                "TLS roots: {} certificates from {}",
                certs.len(),
                path.display()
            );
            return ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build();
        }
    }
    log::debug!("TLS roots: no system CA bundle found; using the bundled webpki roots");
    ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::WebPki)
        .build()
}

/// Base × 2^(attempt−1) plus up to half the base of jitter taken from the clock.
pub(crate) fn backoff_delay(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    exp + base.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

/// `Retry-After` as delay-seconds or an HTTP date (relative to `now`; past dates are zero).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), or the two obsolete forms RFC 9110 asks
    // recipients to accept.
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `(scheme, host[:port])` of an absolute URL, lowercased.
pub(crate) fn origin_of(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?; // never keep user info
    if authority.is_empty() {
        return None;
    }
    Some((scheme.to_ascii_lowercase(), authority.to_ascii_lowercase()))
}

/// Resolves a `Location` against the URL that answered.
fn resolve_location(base: &str, location: &str) -> Option<String> {
    let location = location.trim();
    if location.contains("://") {
        return Some(location.to_owned());
    }
    let (scheme, authority) = origin_of(base)?;
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    let path_start = base.find("://")? + 3;
    let path = base[path_start..].split(['?', '#']).next()?;
    let dir = path.rfind('/').map_or(path, |i| &path[..=i]);
    Some(format!(
        "{scheme}://{dir}{}",
        if dir.ends_with('/') {
            location.to_owned()
        } else {
            format!("/{location}")
        }
    ))
}

/// The URL without its query, for logs (token requests may carry account names).
pub(crate) fn redact(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// Everything but RFC 3986 unreserved characters (`A–Z a–z 0–9 - . _ ~`) gets escaped.
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a query or form value (everything but RFC 3986 unreserved characters).
pub(crate) fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, NOT_UNRESERVED).to_string()
}

/// Appends `key=value` pairs to a URL, keeping its own query.
pub(crate) fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = url.to_owned();
    for (key, value) in pairs {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(&encode(key));
        out.push('=');
        out.push_str(&encode(value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_http_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770); // Sun, 06 Nov 1994 08:49:30 GMT
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Thu, 29 Feb 2024 23:59:59 GMT", UNIX_EPOCH),
            Some(Duration::from_secs(1_709_251_199))
        );
        // The obsolete RFC 850 and asctime forms are accepted too.
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:37 1994", now),
            Some(Duration::from_secs(7))
        );
        for bad in [
            "",
            "soon",
            "-5",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 32 Nov 1994 1:2:3 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn backoff_grows_exponentially_with_bounded_jitter() {
        let base = Duration::from_millis(100);
        for attempt in 1..=4 {
            let d = backoff_delay(base, attempt);
            let floor = base * (1 << (attempt - 1));
            assert!(d >= floor && d <= floor + base / 2, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn origins_and_locations() {
        assert_eq!(
            origin_of("https://User:pw@Auth.Example:443/token?x=1"),
            Some(("https".into(), "auth.example:443".into()))
        );
        assert_eq!(
            origin_of("http://[::1]:5000/v2/"),
            Some(("http".into(), "[::1]:5000".into()))
        );
        assert_eq!(origin_of("nonsense"), None);
        let base = "https://reg.example/v2/a/manifests/t?x=1";
        let cases = [
            ("https://cdn.example/blob", "https://cdn.example/blob"),
            ("//cdn.example/x", "https://cdn.example/x"),
            ("/v2/b/manifests/t", "https://reg.example/v2/b/manifests/t"),
            ("other", "https://reg.example/v2/a/manifests/other"),
        ];
        for (location, want) in cases {
            assert_eq!(
                resolve_location(base, location).as_deref(),
                Some(want),
                "{location}"
            );
        }
    }

    #[test]
    fn query_building_keeps_the_realms_own_parameters() {
        assert_eq!(
            with_query(
                "https://t.example/token?tenant=a",
                &[("scope", "repository:a/b:pull")]
            ),
            "https://t.example/token?tenant=a&scope=repository%3Aa%2Fb%3Apull"
        );
        assert_eq!(
            with_query("https://t/x", &[("a", "b c")]),
            "https://t/x?a=b%20c"
        );
        assert_eq!(redact("https://t/x?account=me"), "https://t/x");
    }

    #[test]
    fn gate_serialises_after_throttle() {
        let gate = HostLimit::new(3);
        let a = gate.acquire();
        let b = gate.acquire();
        drop((a, b));
        gate.throttle(Instant::now() + Duration::from_millis(30));
        assert!(gate.is_serial());
        let started = Instant::now();
        let permit = gate.acquire();
        assert!(started.elapsed() >= Duration::from_millis(25));
        drop(permit);
    }
}
