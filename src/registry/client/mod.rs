//! [`RegistryClient`]: checks tags against registries. Owns the per-host state (the host's auth,
//! learnt from the first manifest HEAD's answer or, when that tells nothing, one `/v2/` ping;
//! credentials; the "credentials refused" latch), the token flow, the manifest `HEAD`
//! with its `GET` fallback, and the parallel fan-out with a per-host cap. The token flow is in
//! `token`, the platform check in `platform`; HTTP details live in `transport`, parsing in
//! `auth`, secrets in `credentials`.
//!
//! Over 500 lines: the fan-out, the per-host state and the manifest request are one protocol,
//! read best top to bottom.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;

use super::auth::{
    HostAuth, TokenCache, TokenKey, parse_token_response, pull_scope, select_auth_from_headers,
};
use super::credentials::{Credential, CredentialStore, Resolved, server_address};
use super::error::CheckError;
use super::transport::{
    HostLimit, RegistryMethod, RegistryRequest, Response, Transport, TransportFailure, encode,
    with_query,
};
use super::{
    PlatformDigest, RateLimit, RegistryOptions, RemoteDigest, RepoTag, allows_plain_http, api_host,
    sha256_digest,
};
use crate::reference::Digest;

mod platform;
mod tags;
mod token;

pub use tags::TagList;

/// Most tags one listing reads (pages × page size).
#[cfg(test)]
pub(crate) fn tags_bound() -> usize {
    tags::PAGE_SIZE * tags::MAX_PAGES
}

/// Every manifest type pullpilot understands, in one header: without the index and list types
/// a registry may answer with a platform child's digest, without the OCI types with a 404.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Scopes in one token request: keeps the URL well under common 8 KiB header limits.
const MAX_SCOPES_PER_TOKEN: usize = 64;

/// Checks tags against registries. One per process (or per pass): it caches pings, helper
/// results and tokens, and holds one HTTP agent.
pub struct RegistryClient {
    transport: Transport,
    credentials: CredentialStore,
    tokens: TokenCache,
    hosts: Mutex<HashMap<String, Arc<HostState>>>,
    per_host: usize,
    insecure_hosts: Vec<String>,
    /// The pull-rate headers each registry host sent last, the lowest `remaining` of a call.
    rate_limits: Mutex<BTreeMap<String, RateLimit>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut hosts: Vec<&String> = hosts.keys().collect();
        hosts.sort();
        f.debug_struct("RegistryClient")
            .field("config", &self.credentials.config_path())
            .field("per_host", &self.per_host)
            .field("insecure_hosts", &self.insecure_hosts)
            .field("hosts", &hosts)
            .finish_non_exhaustive()
    }
}

struct HostState {
    host: String,
    /// `https://host` or `http://host`.
    base: String,
    gate: HostLimit,
    /// Learnt from the first manifest request's answer (or the `/v2/` ping when that did not
    /// tell), or from a later 401.
    auth: Mutex<Option<HostAuth>>,
    /// Held while the first request learns `auth`, so concurrent calls learn it once.
    learning: Mutex<()>,
    /// Set once the credentials were refused: no further attempt with them.
    refused: AtomicBool,
}

impl HostState {
    fn auth(&self) -> HostAuth {
        let auth = self.auth.lock().unwrap_or_else(PoisonError::into_inner);
        auth.clone().unwrap_or(HostAuth::Anonymous)
    }
}

/// Why a check failed, before it is attached to a tag.
enum Problem {
    Transport(TransportFailure),
    /// Refused credentials (their origin) or missing ones (`None`).
    Unauthorized(Option<String>),
    Denied(Option<String>),
    NotFound,
    Bad(String),
    Credentials(String),
}

/// What to send for one repository, and what a 401 would then mean.
#[derive(Clone)]
struct Authz {
    header: Option<String>,
    /// Where the credentials used came from; `None` when anonymous.
    sent: Option<String>,
    /// A shared or cached token: a 401 may be cured by a fresh single-repository token.
    renewable: bool,
}

impl Authz {
    const ANONYMOUS: Self = Self {
        header: None,
        sent: None,
        renewable: false,
    };
}

/// The state shared by the checks of one host within one call.
struct HostSession<'a> {
    host: &'a HostState,
    credential: Option<Resolved>,
    /// Repositories whose token this call fetched for them alone: a 401 with it is final.
    fresh_single: BTreeSet<String>,
}

impl RegistryClient {
    /// Builds the client and reads Docker's `config.json`; a malformed one is an error naming it.
    pub fn new(opts: RegistryOptions) -> anyhow::Result<Self> {
        let credentials = CredentialStore::load(
            opts.docker_config_dir.as_deref(),
            opts.credential_helper_dir.clone(),
        )?;
        Ok(Self {
            transport: Transport::new(&opts),
            credentials,
            tokens: TokenCache::default(),
            hosts: Mutex::new(HashMap::new()),
            per_host: opts.per_host_concurrency.max(1),
            insecure_hosts: opts.insecure_hosts,
            rate_limits: Mutex::new(BTreeMap::new()),
        })
    }

    /// Checks every unique tag once, in parallel with at most `per_host_concurrency` requests
    /// per registry host, and returns one result per unique input. Docker Hub aliases of the
    /// same tag share one request.
    pub fn check_all(
        &self,
        items: &[RepoTag],
    ) -> BTreeMap<RepoTag, Result<RemoteDigest, CheckError>> {
        let mut aliases: BTreeMap<RepoTag, BTreeSet<&RepoTag>> = BTreeMap::new();
        for item in items {
            let canonical = RepoTag {
                host: api_host(&item.host),
                ..item.clone()
            };
            aliases.entry(canonical).or_default().insert(item);
        }
        let mut by_host: BTreeMap<&str, Vec<&RepoTag>> = BTreeMap::new();
        for canonical in aliases.keys() {
            by_host
                .entry(canonical.host.as_str())
                .or_default()
                .push(canonical);
        }
        let results = Mutex::new(BTreeMap::new());
        std::thread::scope(|scope| {
            for (host, tags) in &by_host {
                let results = &results;
                scope.spawn(move || {
                    let checked = self.check_host(host, tags);
                    results
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend(checked);
                });
            }
        });
        let mut results = results.into_inner().unwrap_or_else(PoisonError::into_inner);
        self.note_rate_limits(&results);
        let mut out = BTreeMap::new();
        for (canonical, originals) in aliases {
            let result = results
                .remove(&canonical)
                .expect("every canonical tag was checked");
            for original in originals {
                let result = result.clone().map_err(|e| e.for_item(original));
                out.insert(original.clone(), result);
            }
        }
        out
    }

    /// Remembers, per host, the rate limit of this call's answers that left the fewest pulls
    /// (the latest, as `remaining` only falls within a window).
    fn note_rate_limits(&self, results: &BTreeMap<RepoTag, Result<RemoteDigest, CheckError>>) {
        let mut lowest: BTreeMap<&str, RateLimit> = BTreeMap::new();
        for (item, result) in results {
            if let Ok(RemoteDigest {
                rate_limit: Some(limit),
                ..
            }) = result
            {
                let entry = lowest.entry(item.host.as_str()).or_insert(*limit);
                if limit.remaining < entry.remaining {
                    *entry = *limit;
                }
            }
        }
        let mut known = self
            .rate_limits
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (host, limit) in lowest {
            known.insert(host.to_owned(), limit);
        }
    }

    /// The pull-rate limit each registry host reported (Docker Hub's `ratelimit-limit` and
    /// `ratelimit-remaining` headers) in this client's latest answers; hosts that sent none are
    /// absent.
    pub fn rate_limits(&self) -> BTreeMap<String, RateLimit> {
        self.rate_limits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Checks one tag.
    pub fn check(&self, item: &RepoTag) -> Result<RemoteDigest, CheckError> {
        let mut results = self.check_all(std::slice::from_ref(item));
        results
            .remove(item)
            .expect("check_all answers for every input")
    }

    /// The Engine's `X-Registry-Auth` value for pulling from `host`: URL-safe base64 (padded) of
    /// `{"username","password","serveraddress"}` or `{"identitytoken","serveraddress"}`;
    /// `None` when there are no credentials.
    pub fn engine_auth(&self, host: &str) -> Result<Option<String>, CheckError> {
        let resolved = self
            .credentials
            .lookup(host)
            .map_err(|detail| CheckError::Credentials {
                host: host.to_owned(),
                detail,
            })?;
        Ok(resolved.map(|resolved| {
            let mut fields = resolved.credential.engine_fields();
            fields.insert("serveraddress".into(), server_address(host).into());
            let json = serde_json::Value::Object(fields).to_string();
            base64::engine::general_purpose::URL_SAFE.encode(json)
        }))
    }

    fn host_state(&self, host: &str) -> Arc<HostState> {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        let state = hosts.entry(host.to_owned()).or_insert_with(|| {
            let scheme = if allows_plain_http(host, &self.insecure_hosts) {
                "http"
            } else {
                "https"
            };
            Arc::new(HostState {
                host: host.to_owned(),
                base: format!("{scheme}://{host}"),
                gate: HostLimit::new(self.per_host),
                auth: Mutex::new(None),
                learning: Mutex::new(()),
                refused: AtomicBool::new(false),
            })
        });
        Arc::clone(state)
    }

    /// Checks the tags of one host with up to `per_host` workers.
    fn check_host(
        &self,
        host: &str,
        tags: &[&RepoTag],
    ) -> Vec<(RepoTag, Result<RemoteDigest, CheckError>)> {
        let state = self.host_state(host);
        let (session, first) = match self.open_session(&state, tags, true) {
            Ok(opened) => opened,
            Err(problem) => {
                return tags
                    .iter()
                    .map(|tag| ((*tag).clone(), Err(self.to_error(&problem, tag))))
                    .collect();
            }
        };
        let mut out = Vec::with_capacity(tags.len());
        // The first tag's answer when its own HEAD was how the host's auth was learnt.
        if let (Some(result), Some(tag)) = (first, tags.first()) {
            let result = result.map_err(|problem| self.to_error(&problem, tag));
            match &result {
                Ok(remote) => log::debug!("{tag}: {}", remote.digest),
                Err(e) => log::debug!("{tag}: {} ({})", e.kind(), e),
            }
            out.push(((*tag).clone(), result));
        }
        let next = AtomicUsize::new(out.len());
        let out = Mutex::new(out);
        let work = || {
            loop {
                let Some(tag) = tags.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return;
                };
                let result = self.check_tag(&session, tag);
                match &result {
                    Ok(remote) => log::debug!("{tag}: {}", remote.digest),
                    Err(e) => log::debug!("{tag}: {} ({})", e.kind(), e),
                }
                out.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(((*tag).clone(), result));
            }
        };
        let workers = self.per_host.min(tags.len() - next.load(Ordering::Relaxed));
        if workers <= 1 {
            work();
        } else {
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    scope.spawn(work);
                }
            });
        }
        out.into_inner().unwrap_or_else(PoisonError::into_inner)
    }

    /// Credentials, the host's auth, and one token request covering every repository of this
    /// call that has no valid token yet. With `head_first` an unknown host's auth is learnt from
    /// the first tag's own `HEAD` and, when that answered for good, its result is returned with
    /// the session; otherwise from the `/v2/` ping.
    fn open_session<'a>(
        &self,
        host: &'a HostState,
        tags: &[&RepoTag],
        head_first: bool,
    ) -> Result<(HostSession<'a>, Option<Result<RemoteDigest, Problem>>), Problem> {
        let credential = self.credential_for(host)?;
        let mut session = HostSession {
            host,
            credential,
            fresh_single: BTreeSet::new(),
        };
        let (auth, first) = match tags.first() {
            Some(tag) if head_first => self.learn_auth(&session, tag)?,
            _ => (self.discover(host)?, None),
        };
        let HostAuth::Bearer { realm, service } = auth else {
            return Ok((session, first));
        };
        if matches!(
            session.credential_kind(),
            Some(Credential::RegistryToken(_))
        ) || host.refused.load(Ordering::SeqCst)
        {
            return Ok((session, first));
        }
        let key = Self::token_key(&realm, service.as_deref(), session.credential.as_ref());
        let now = Instant::now();
        let missing: BTreeSet<String> = tags
            .iter()
            .map(|t| t.repository.clone())
            .filter(|repo| self.tokens.get(&key, repo, now).is_none())
            .collect();
        let missing: Vec<String> = missing.into_iter().collect();
        for chunk in missing.chunks(MAX_SCOPES_PER_TOKEN) {
            let repos: BTreeSet<String> = chunk.iter().cloned().collect();
            match self.fetch_token(&session, &realm, service.as_deref(), &repos) {
                Ok(_) if repos.len() == 1 => session.fresh_single.extend(repos),
                Ok(_) => {}
                // Some token services take only one scope: the checks fetch one token each.
                Err(Problem::Bad(why)) if repos.len() > 1 => {
                    log::debug!(
                        "{}: a token for {} repositories failed ({why})",
                        host.host,
                        repos.len()
                    );
                }
                Err(problem) => return Err(problem),
            }
        }
        Ok((session, first))
    }

    /// The host's auth, learnt once. When unknown, the first tag's `HEAD` goes out alone
    /// (without credentials, or with a registry token): an answer is that tag's result and
    /// the host is open, so no ping is needed; a 401 carries the challenge. Only a HEAD that
    /// neither answered nor challenged (a 401 without one, a 403 or 404 that may hide a
    /// private repository, a server error that may be this manifest's alone) leads to the
    /// `GET /v2/` ping. An unreachable or rate-limiting host fails every tag at once.
    fn learn_auth(
        &self,
        session: &HostSession<'_>,
        tag: &RepoTag,
    ) -> Result<(HostAuth, Option<Result<RemoteDigest, Problem>>), Problem> {
        let host = session.host;
        let _learning = host.learning.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = host
            .auth
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok((known, None));
        }
        let url = format!("{}/v2/{}/manifests/{}", host.base, tag.repository, tag.tag);
        let authz = self.authorize(session, &tag.repository, false)?;
        let req = RegistryRequest {
            method: RegistryMethod::Head,
            url: url.clone(),
            accept: Some(MANIFEST_ACCEPT),
            authorization: authz.header.as_deref(),
            form: None,
        };
        let resp = match self.transport.send(&host.gate, &req) {
            Ok(resp) => resp,
            Err(
                failure @ (TransportFailure::Unreachable(_) | TransportFailure::RateLimited(_)),
            ) => {
                return Err(Problem::Transport(failure));
            }
            Err(failure) => {
                // Perhaps this manifest's trouble, not the host's: the ping tells, and the
                // other tags are still checked.
                let pinged = self.discover(host)?;
                let first =
                    (pinged == HostAuth::Anonymous).then_some(Err(Problem::Transport(failure)));
                return Ok((pinged, first));
            }
        };
        let learnt = if resp.status == 401 {
            select_auth_from_headers(resp.header_all("www-authenticate"))
        } else {
            HostAuth::Anonymous
        };
        if (200..300).contains(&resp.status) || learnt != HostAuth::Anonymous {
            log::debug!(
                "{}: auth {} (from a manifest HEAD)",
                host.host,
                describe(&learnt)
            );
            *host.auth.lock().unwrap_or_else(PoisonError::into_inner) = Some(learnt.clone());
            let first = (learnt == HostAuth::Anonymous)
                .then(|| self.remote_digest(session, &url, &authz, &resp));
            return Ok((learnt, first));
        }
        let pinged = self.discover(host)?;
        if pinged != HostAuth::Anonymous {
            return Ok((pinged, None));
        }
        let problem = match resp.status {
            401 => Problem::Unauthorized(authz.sent),
            403 => Problem::Denied(authz.sent),
            404 => Problem::NotFound,
            status => Problem::Bad(format!("HTTP {status} to the manifest request")),
        };
        Ok((HostAuth::Anonymous, Some(Err(problem))))
    }

    fn credential_for(&self, host: &HostState) -> Result<Option<Resolved>, Problem> {
        // Helper results are cached by the store; file entries are a map lookup.
        self.credentials
            .lookup(&host.host)
            .map_err(Problem::Credentials)
    }

    /// The `GET /v2/` ping, at most once per host: 401 → its challenge; anything else →
    /// anonymous.
    fn discover(&self, host: &HostState) -> Result<HostAuth, Problem> {
        let mut auth = host.auth.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = auth.as_ref() {
            return Ok(known.clone());
        }
        let req = RegistryRequest {
            method: RegistryMethod::Get,
            url: format!("{}/v2/", host.base),
            accept: None,
            authorization: None,
            form: None,
        };
        let resp = self
            .transport
            .send(&host.gate, &req)
            .map_err(Problem::Transport)?;
        let found = if resp.status == 401 {
            select_auth_from_headers(resp.header_all("www-authenticate"))
        } else {
            HostAuth::Anonymous
        };
        log::debug!("{}: auth {}", host.host, describe(&found));
        *auth = Some(found.clone());
        Ok(found)
    }

    fn check_tag(
        &self,
        session: &HostSession<'_>,
        tag: &RepoTag,
    ) -> Result<RemoteDigest, CheckError> {
        self.head_manifest(session, tag)
            .map_err(|problem| self.to_error(&problem, tag))
    }

    fn head_manifest(
        &self,
        session: &HostSession<'_>,
        tag: &RepoTag,
    ) -> Result<RemoteDigest, Problem> {
        let (url, authz, resp) =
            self.manifest_request(session, tag, &tag.tag, RegistryMethod::Head)?;
        self.remote_digest(session, &url, &authz, &resp)
    }

    /// One manifest request for `reference` (a tag or a digest) of `tag`'s repository, with the
    /// authorization flow. Returns the URL, what was sent and the successful response.
    fn manifest_request(
        &self,
        session: &HostSession<'_>,
        tag: &RepoTag,
        reference: &str,
        method: RegistryMethod,
    ) -> Result<(String, Authz, Response), Problem> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            session.host.base, tag.repository
        );
        let (authz, resp) = self.authorized(
            session,
            tag,
            &url,
            Some(MANIFEST_ACCEPT),
            method,
            "manifest",
        )?;
        Ok((url, authz, resp))
    }

    /// One request to `url` on `tag`'s repository with the authorization flow (a 401 adopts a
    /// new challenge or renews a shared token once). `what` names the request in errors.
    /// Returns what was sent and the successful response.
    fn authorized(
        &self,
        session: &HostSession<'_>,
        tag: &RepoTag,
        url: &str,
        accept: Option<&str>,
        method: RegistryMethod,
        what: &str,
    ) -> Result<(Authz, Response), Problem> {
        let host = session.host;
        let mut authz = self.authorize(session, &tag.repository, false)?;
        let mut renewed = false;
        loop {
            let req = RegistryRequest {
                method,
                url: url.to_owned(),
                accept,
                authorization: authz.header.as_deref(),
                form: None,
            };
            let resp = self
                .transport
                .send(&host.gate, &req)
                .map_err(Problem::Transport)?;
            match resp.status {
                200..=299 => return Ok((authz, resp)),
                401 => {
                    let retry = if renewed {
                        None
                    } else {
                        self.after_401(session, tag, &authz, &resp)?
                    };
                    let Some(next) = retry else {
                        if authz.sent.is_some() && host.auth() == HostAuth::Basic {
                            host.refused.store(true, Ordering::SeqCst);
                        }
                        return Err(Problem::Unauthorized(authz.sent));
                    };
                    authz = next;
                    renewed = true;
                }
                403 => return Err(Problem::Denied(authz.sent)),
                404 => return Err(Problem::NotFound),
                status => {
                    return Err(Problem::Bad(format!("HTTP {status} to the {what} request")));
                }
            }
        }
    }

    /// The digest from a successful HEAD; without the header, a GET and sha256 of its body.
    fn remote_digest(
        &self,
        session: &HostSession<'_>,
        url: &str,
        authz: &Authz,
        head: &Response,
    ) -> Result<RemoteDigest, Problem> {
        let head_media_type = media_type(head);
        let head_rate_limit = rate_limit(head);
        if let Some(text) = head
            .header("docker-content-digest")
            .filter(|d| !d.is_empty())
        {
            let digest = sha256_digest(text).ok_or_else(|| {
                Problem::Bad(format!(
                    "its Docker-Content-Digest {:?} is not `sha256:` and 64 lowercase hex digits",
                    text.chars().take(100).collect::<String>()
                ))
            })?;
            return Ok(RemoteDigest {
                digest,
                media_type: head_media_type,
                from_get_fallback: false,
                rate_limit: head_rate_limit,
            });
        }
        log::debug!(
            "{}: no Docker-Content-Digest; hashing a GET of the manifest",
            session.host.host
        );
        let req = RegistryRequest {
            method: RegistryMethod::Get,
            url: url.to_owned(),
            accept: Some(MANIFEST_ACCEPT),
            authorization: authz.header.as_deref(),
            form: None,
        };
        let resp = self
            .transport
            .send(&session.host.gate, &req)
            .map_err(Problem::Transport)?;
        match resp.status {
            200..=299 => {
                let hex = super::sha256_hex(&resp.body);
                Ok(RemoteDigest {
                    digest: sha256_digest(&format!("sha256:{hex}"))
                        .expect("a sha256 in lowercase hex is a valid digest"),
                    media_type: head_media_type.or_else(|| media_type(&resp)),
                    from_get_fallback: true,
                    rate_limit: rate_limit(&resp).or(head_rate_limit),
                })
            }
            401 => Err(Problem::Unauthorized(authz.sent.clone())),
            403 => Err(Problem::Denied(authz.sent.clone())),
            404 => Err(Problem::NotFound),
            status => Err(Problem::Bad(format!("HTTP {status} to the manifest GET"))),
        }
    }

    fn to_error(&self, problem: &Problem, tag: &RepoTag) -> CheckError {
        let item = tag.clone();
        match problem {
            Problem::Transport(TransportFailure::Unreachable(detail)) => CheckError::Unreachable {
                item,
                detail: detail.clone(),
            },
            Problem::Transport(TransportFailure::ServerError { status, attempts }) => {
                CheckError::BadResponse {
                    item,
                    detail: format!("HTTP {status} (server error) on all {attempts} attempts"),
                }
            }
            Problem::Transport(TransportFailure::RateLimited(retry_after)) => {
                CheckError::RateLimited {
                    item,
                    retry_after: *retry_after,
                }
            }
            Problem::Transport(TransportFailure::Bad(detail)) | Problem::Bad(detail) => {
                CheckError::BadResponse {
                    item,
                    detail: detail.clone(),
                }
            }
            Problem::Unauthorized(credentials) => CheckError::Unauthorized {
                item,
                credentials: credentials.clone(),
                config: self.config_path().to_path_buf(),
            },
            Problem::Denied(credentials) => CheckError::Denied {
                item,
                credentials: credentials.clone(),
            },
            Problem::NotFound => CheckError::NotFound { item },
            Problem::Credentials(detail) => CheckError::Credentials {
                host: tag.host.clone(),
                detail: detail.clone(),
            },
        }
    }

    fn config_path(&self) -> &Path {
        self.credentials.config_path()
    }
}

impl HostSession<'_> {
    fn credential_kind(&self) -> Option<&Credential> {
        self.credential.as_ref().map(|r| &r.credential)
    }
}

fn describe(auth: &HostAuth) -> String {
    match auth {
        HostAuth::Anonymous => "anonymous".to_owned(),
        HostAuth::Basic => "basic".to_owned(),
        HostAuth::Bearer { realm, service } => {
            format!(
                "bearer via {} (service {service:?})",
                super::transport::redact(realm)
            )
        }
    }
}

fn media_type(resp: &Response) -> Option<String> {
    resp.header("content-type")
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Docker Hub's `ratelimit-limit: 100;w=21600` and `ratelimit-remaining: 76;w=21600`.
fn rate_limit(resp: &Response) -> Option<RateLimit> {
    fn parse(value: &str) -> Option<(u64, Option<Duration>)> {
        let mut parts = value.split(';');
        let count = parts.next()?.trim().parse().ok()?;
        let window = parts
            .find_map(|p| p.trim().strip_prefix("w="))
            .and_then(|w| w.trim().parse().ok())
            .map(Duration::from_secs);
        Some((count, window))
    }
    let (limit, window) = parse(resp.header("ratelimit-limit")?)?;
    let (remaining, _) = parse(resp.header("ratelimit-remaining")?)?;
    Some(RateLimit {
        limit,
        remaining,
        window,
    })
}

#[cfg(test)]
impl RegistryClient {
    pub(crate) fn host_is_serial(&self, host: &str) -> bool {
        self.host_state(host).gate.is_serial()
    }
}
