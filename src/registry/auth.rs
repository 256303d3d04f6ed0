//! Registry auth, the pure part: `WWW-Authenticate` parsing (RFC 7235), choosing how to
//! authenticate to a host, token-service responses and the token cache. No I/O, no secrets in
//! `Debug` output or logs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

/// One challenge from a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The auth scheme, lowercased (`bearer`, `basic`).
    pub scheme: String,
    /// Parameters by lowercased name; values keep their case, quotes and escapes removed.
    pub params: BTreeMap<String, String>,
}

/// Parses every challenge in one `WWW-Authenticate` value: case-insensitive scheme and keys,
/// quoted strings with commas and `\` escapes, unquoted values, several challenges per value.
/// Never panics; unparseable bits are skipped.
#[must_use]
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut parser = Parser { s: header, i: 0 };
    let mut out = Vec::new();
    loop {
        parser.skip(|c| c == ',' || is_ws(c));
        if parser.at_end() {
            return out;
        }
        let scheme = parser.token();
        if scheme.is_empty() {
            parser.bump(); // not a token character: skip it
            continue;
        }
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        parser.params(&mut challenge.params);
        out.push(challenge);
    }
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// RFC 7230 `tchar`.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

impl<'a> Parser<'a> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.s[self.i..].chars().next()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.i += c.len_utf8();
        }
    }

    fn skip(&mut self, pred: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&pred) {
            self.bump();
        }
    }

    fn token(&mut self) -> &'a str {
        let start = self.i;
        self.skip(is_tchar);
        &self.s[start..self.i]
    }

    /// An unquoted value: lenient, up to the next comma or whitespace (realms such as
    /// `https://iam.example/token` are sent unquoted by some registries).
    fn bare_value(&mut self) -> &'a str {
        let start = self.i;
        self.skip(|c| c != ',' && !is_ws(c) && c != '"');
        &self.s[start..self.i]
    }

    /// A quoted string starting at `"`; an unterminated one runs to the end.
    fn quoted(&mut self) -> String {
        self.bump(); // opening quote
        let mut value = String::new();
        while let Some(c) = self.peek() {
            self.bump();
            match c {
                '"' => return value,
                '\\' => {
                    if let Some(escaped) = self.peek() {
                        self.bump();
                        value.push(escaped);
                    }
                }
                _ => value.push(c),
            }
        }
        value
    }

    /// Reads `key=value` pairs until the input ends or the next challenge's scheme begins.
    fn params(&mut self, params: &mut BTreeMap<String, String>) {
        loop {
            self.skip(is_ws);
            let Some(c) = self.peek() else { return };
            if c == ',' {
                self.bump();
                continue;
            }
            let start = self.i;
            let key = self.token();
            if key.is_empty() {
                // Garbage: skip to the next comma.
                self.bump();
                self.skip(|c| c != ',');
                continue;
            }
            self.skip(is_ws);
            if self.peek() != Some('=') {
                // A token not followed by '=' is the scheme of the next challenge.
                self.i = start;
                return;
            }
            self.bump();
            self.skip(is_ws);
            let value = if self.peek() == Some('"') {
                self.quoted()
            } else {
                self.bare_value().to_owned()
            };
            params.entry(key.to_ascii_lowercase()).or_insert(value);
        }
    }
}

/// How a host wants to be authenticated, learnt from its challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HostAuth {
    /// No challenge (or none pullpilot can answer): requests go out without credentials.
    Anonymous,
    /// `Authorization: Basic` on every request; no token service.
    Basic,
    /// Token flow against `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Chooses from all the challenges of a 401: Bearer (with a realm) when offered, since the token
/// flow works with and without credentials; Basic when only Basic is offered.
pub(crate) fn select_auth(challenges: &[Challenge]) -> HostAuth {
    let bearer = challenges.iter().find_map(|c| {
        let realm = c.params.get("realm").filter(|r| !r.is_empty())?;
        (c.scheme == "bearer").then(|| HostAuth::Bearer {
            realm: realm.clone(),
            service: c.params.get("service").filter(|s| !s.is_empty()).cloned(),
        })
    });
    match bearer {
        Some(auth) => auth,
        None if challenges.iter().any(|c| c.scheme == "basic") => HostAuth::Basic,
        None => HostAuth::Anonymous,
    }
}

/// Parses all `WWW-Authenticate` header values of a response and chooses.
pub(crate) fn select_auth_from_headers<'a>(values: impl Iterator<Item = &'a str>) -> HostAuth {
    let challenges: Vec<Challenge> = values.flat_map(parse_challenges).collect();
    select_auth(&challenges)
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) value: String,
    pub(crate) expires_at: Instant,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Tokens are refreshed this long before they expire.
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(5);
/// The shortest lifetime assumed for a token (the distribution spec's minimum).
const MIN_LIFETIME: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    issued_at: Option<String>,
}

/// Parses a token-service answer received at `received` (`received_wall` on the wall clock).
/// Accepts `token` and/or `access_token` (preferring `access_token`); `expires_in` missing or
/// under 60 s counts as 60 s; `issued_at` is used when it is sane. Errors never quote the body.
pub(crate) fn parse_token_response(
    body: &[u8],
    received: Instant,
    received_wall: SystemTime,
) -> Result<Token, String> {
    let parsed: TokenResponse = serde_json::from_slice(body)
        .map_err(|e| format!("the token service's answer is not the expected JSON ({e})"))?;
    let value = [parsed.access_token, parsed.token]
        .into_iter()
        .flatten()
        .find(|t| !t.is_empty())
        .ok_or("the token service's answer holds no token")?;
    let seconds = parsed
        .expires_in
        .as_ref()
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0);
    let lifetime = if seconds.is_finite() && seconds > MIN_LIFETIME.as_secs_f64() {
        Duration::from_secs_f64(seconds.min(365.0 * 86400.0))
    } else {
        MIN_LIFETIME
    };
    // Count from issued_at when it is in the past and within the lifetime (a server clock a
    // little behind ours shortens the token's life); otherwise count from receipt.
    let age = parsed
        .issued_at
        .as_deref()
        .and_then(|s| humantime::parse_rfc3339_weak(s.trim()).ok())
        .and_then(|issued| received_wall.duration_since(issued).ok())
        .filter(|age| *age < lifetime)
        .unwrap_or(Duration::ZERO);
    Ok(Token {
        value,
        expires_at: received + lifetime.saturating_sub(age),
    })
}

/// Cache key: one token service, one credential identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    pub(crate) realm: String,
    pub(crate) service: Option<String>,
    /// `anonymous`, or a non-secret name for the credentials used.
    pub(crate) identity: String,
}

/// A cached token and the repositories it covers.
struct CachedToken {
    repositories: BTreeSet<String>,
    token: Token,
}

/// Tokens by (realm, service, identity), each with the set of repositories it covers.
#[derive(Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<TokenKey, Vec<CachedToken>>>,
}

impl TokenCache {
    /// A token covering `repository` that stays valid past the refresh margin.
    pub(crate) fn get(&self, key: &TokenKey, repository: &str, now: Instant) -> Option<String> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(key)?.iter().find_map(|cached| {
            (cached.repositories.contains(repository)
                && now + REFRESH_MARGIN < cached.token.expires_at)
                .then(|| cached.token.value.clone())
        })
    }

    /// Stores a token for `repositories`, dropping tokens that are no longer usable.
    pub(crate) fn insert(&self, key: TokenKey, repositories: BTreeSet<String>, token: Token) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let list = entries.entry(key).or_default();
        list.retain(|cached| now + REFRESH_MARGIN < cached.token.expires_at);
        list.push(CachedToken {
            repositories,
            token,
        });
    }
}

/// The scope for pulling one repository. Never taken from a challenge.
pub(crate) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.to_owned(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn challenge_parser_table() {
        let cases: Vec<(&str, Vec<Challenge>)> = vec![
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#,
                vec![ch(
                    "bearer",
                    &[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                    ],
                )],
            ),
            (
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull,push""#,
                vec![ch(
                    "bearer",
                    &[
                        ("realm", "https://ghcr.io/token"),
                        ("service", "ghcr.io"),
                        ("scope", "repository:a/b:pull,push"),
                    ],
                )],
            ),
            (
                r#"Bearer realm="https://x/t?a=1,b=2", error="invalid_token", error_description="say \"hi\", ok\\""#,
                vec![ch(
                    "bearer",
                    &[
                        ("realm", "https://x/t?a=1,b=2"),
                        ("error", "invalid_token"),
                        ("error_description", r#"say "hi", ok\"#),
                    ],
                )],
            ),
            (
                "Bearer realm=https://iam.cloud.ibm.com/identity/token, service=registry",
                vec![ch(
                    "bearer",
                    &[
                        ("realm", "https://iam.cloud.ibm.com/identity/token"),
                        ("service", "registry"),
                    ],
                )],
            ),
            (
                r#"Basic realm="x", Bearer realm="https://t/token",service="s""#,
                vec![
                    ch("basic", &[("realm", "x")]),
                    ch("bearer", &[("realm", "https://t/token"), ("service", "s")]),
                ],
            ),
            (
                r#"BEARER REALM="https://T/Token", Service = "MixedCase""#,
                vec![ch(
                    "bearer",
                    &[("realm", "https://T/Token"), ("service", "MixedCase")],
                )],
            ),
            (
                r#"Basic realm="https://1.dkr.ecr.eu-west-1.amazonaws.com/",service="ecr.amazonaws.com""#,
                vec![ch(
                    "basic",
                    &[
                        ("realm", "https://1.dkr.ecr.eu-west-1.amazonaws.com/"),
                        ("service", "ecr.amazonaws.com"),
                    ],
                )],
            ),
            (
                "Basic, Bearer realm=r",
                vec![ch("basic", &[]), ch("bearer", &[("realm", "r")])],
            ),
            ("Negotiate", vec![ch("negotiate", &[])]),
            ("", vec![]),
            (" , ,", vec![]),
        ];
        for (header, want) in cases {
            assert_eq!(parse_challenges(header), want, "{header}");
        }
    }

    #[test]
    fn garbage_challenges_do_not_panic() {
        let fixed = [
            "\"",
            "=",
            "==,==",
            "Bearer realm=\"unterminated",
            "Bearer realm=\"x\\",
            "Bearer ,,=,",
            "é",
            "Bearer ré=\"ü\"",
            "\u{0}\u{7f}",
            "Bearer realm",
            "Bearer realm=",
            "@@@ Basic",
        ];
        for header in fixed {
            let _ = parse_challenges(header);
        }
        // A small deterministic fuzz over an alphabet of the characters that matter.
        let alphabet: Vec<char> = "aB =\",\\\t;é:/?".chars().collect();
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..5000 {
            let mut s = String::new();
            for _ in 0..(state % 24) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let _ = parse_challenges(&s);
        }
    }

    #[test]
    fn bearer_is_preferred_and_basic_used_when_alone() {
        let both = parse_challenges(r#"Basic realm="x", Bearer realm="https://t",service="s""#);
        assert_eq!(
            select_auth(&both),
            HostAuth::Bearer {
                realm: "https://t".into(),
                service: Some("s".into())
            }
        );
        assert_eq!(
            select_auth(&parse_challenges(r#"Basic realm="x""#)),
            HostAuth::Basic
        );
        assert_eq!(
            select_auth(&parse_challenges("Bearer service=s")),
            HostAuth::Anonymous
        );
        assert_eq!(
            select_auth(&parse_challenges("Negotiate abc")),
            HostAuth::Anonymous
        );
        let two_headers = ["Basic realm=x", "Bearer realm=https://t"];
        assert_eq!(
            select_auth_from_headers(two_headers.into_iter()),
            HostAuth::Bearer {
                realm: "https://t".into(),
                service: None
            }
        );
    }

    #[test]
    fn token_response_table() {
        let now = Instant::now();
        let wall = humantime::parse_rfc3339("2025-01-01T00:10:00Z").unwrap();
        let secs = |t: &Token| t.expires_at.duration_since(now).as_secs();
        let cases: [(&str, &str, u64); 7] = [
            (r#"{"token":"t1"}"#, "t1", 60),
            (
                r#"{"access_token":"a","token":"t","expires_in":300}"#,
                "a",
                300,
            ),
            (
                r#"{"access_token":"","token":"t","expires_in":300}"#,
                "t",
                300,
            ),
            (r#"{"token":"t","expires_in":10}"#, "t", 60),
            (
                r#"{"token":"t","expires_in":300,"issued_at":"2025-01-01T00:08:00Z"}"#,
                "t",
                180,
            ),
            (
                r#"{"token":"t","expires_in":300,"issued_at":"2025-01-01T00:20:00Z"}"#,
                "t",
                300,
            ),
            (
                r#"{"token":"t","expires_in":300,"issued_at":"nonsense"}"#,
                "t",
                300,
            ),
        ];
        for (body, value, lifetime) in cases {
            let token = parse_token_response(body.as_bytes(), now, wall).unwrap();
            assert_eq!(token.value, value, "{body}");
            assert_eq!(secs(&token), lifetime, "{body}");
        }
        for bad in [&b"{}"[..], b"{\"token\":\"\"}", b"not json", b"[]"] {
            let err = parse_token_response(bad, now, wall).unwrap_err();
            assert!(!err.contains("not json"), "body must not be quoted: {err}");
        }
    }

    #[test]
    fn token_debug_is_redacted() {
        let token = Token {
            value: "s3cret".into(),
            expires_at: Instant::now(),
        };
        assert!(!format!("{token:?}").contains("s3cret"));
    }

    #[test]
    fn token_cache_covers_scopes_and_honours_the_refresh_margin() {
        let cache = TokenCache::default();
        let key = TokenKey {
            realm: "r".into(),
            service: None,
            identity: "anonymous".into(),
        };
        let now = Instant::now();
        let repos: BTreeSet<String> = ["a".to_owned(), "b".to_owned()].into();
        cache.insert(
            key.clone(),
            repos,
            Token {
                value: "tok".into(),
                expires_at: now + Duration::from_secs(60),
            },
        );
        assert_eq!(cache.get(&key, "a", now).as_deref(), Some("tok"));
        assert_eq!(cache.get(&key, "b", now).as_deref(), Some("tok"));
        assert_eq!(cache.get(&key, "c", now), None);
        assert_eq!(cache.get(&key, "a", now + Duration::from_secs(56)), None);
        let other = TokenKey {
            identity: "basic:u".into(),
            ..key
        };
        assert_eq!(cache.get(&other, "a", now), None);
    }
}
