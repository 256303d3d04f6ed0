//! Credentials from Docker's `config.json` (`auths`, `credHelpers`, `credsStore`) and from
//! `docker-credential-*` helpers. Owns key matching and the helper protocol. Secrets never reach
//! `Debug` output, logs or error messages.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::Deserialize;

use super::{HUB_SERVER_ADDRESS, is_docker_hub, strip_scheme};
use crate::process::{self, RunError, RunLimits, Stream};

/// Stdout of a helper that has nothing stored for the server.
const HELPER_NOT_FOUND: &str = "credentials not found in native keychain";
/// The username a helper reports when its secret is an identity token.
const IDENTITY_TOKEN_USERNAME: &str = "<token>";

/// A secret that can authenticate to a registry.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// Username and password (or personal access token).
    Basic { username: String, password: String },
    /// An `OAuth2` refresh token (`identitytoken`, or a helper's `<token>` user).
    IdentityToken {
        username: Option<String>,
        token: String,
    },
    /// A bearer token sent as is (`registrytoken`).
    RegistryToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Self::IdentityToken { username, .. } => f
                .debug_struct("IdentityToken")
                .field("username", username)
                .field("token", &"<redacted>")
                .finish(),
            Self::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
        }
    }
}

impl Credential {
    /// `Basic base64(user:password)`, for Basic registries and token requests.
    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Self::Basic { username, password } => Some(format!(
                "Basic {}",
                STANDARD.encode(format!("{username}:{password}"))
            )),
            Self::IdentityToken { .. } | Self::RegistryToken(_) => None,
        }
    }

    /// A non-secret name for the token cache key.
    pub(crate) fn identity(&self) -> String {
        // The first 8 bytes of the SHA-256: enough to tell secrets apart, useless to recover one.
        let fingerprint = |secret: &str| super::sha256_hex(secret.as_bytes())[..16].to_owned();
        match self {
            Self::Basic { username, password } => {
                format!("basic:{username}:{}", fingerprint(password))
            }
            Self::IdentityToken { token, .. } => format!("identity:{}", fingerprint(token)),
            Self::RegistryToken(token) => format!("registry-token:{}", fingerprint(token)),
        }
    }

    /// The `X-Registry-Auth` JSON fields for the Engine (without `serveraddress`).
    pub(crate) fn engine_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        match self {
            Self::Basic { username, password } => {
                map.insert("username".into(), username.clone().into());
                map.insert("password".into(), password.clone().into());
            }
            Self::IdentityToken { token, .. } => {
                map.insert("identitytoken".into(), token.clone().into());
            }
            Self::RegistryToken(token) => {
                map.insert("registrytoken".into(), token.clone().into());
            }
        }
        map
    }
}

/// Where a credential came from, for error messages ("check …").
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    ConfigEntry { key: String, path: PathBuf },
    Helper { program: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConfigEntry { key, path } => {
                write!(f, "the entry for {key} in {}", path.display())
            }
            Self::Helper { program } => write!(f, "the credentials stored in {program}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) credential: Credential,
    pub(crate) origin: Origin,
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
    registrytoken: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: Option<String>,
    secret: Option<String>,
}

/// Credentials for registry hosts: parsed `config.json` plus helper results cached per host.
pub(crate) struct CredentialStore {
    path: PathBuf,
    auths: BTreeMap<String, Option<Credential>>,
    creds_store: Option<String>,
    cred_helpers: BTreeMap<String, String>,
    helper_dir: Option<PathBuf>,
    pub(crate) helper_timeout: Duration,
    helper_cache: Mutex<HashMap<String, Option<Resolved>>>,
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialStore")
            .field("path", &self.path)
            .field("auths", &self.auths.keys().collect::<Vec<_>>())
            .field("creds_store", &self.creds_store)
            .field("cred_helpers", &self.cred_helpers)
            .finish_non_exhaustive()
    }
}

impl CredentialStore {
    /// Reads `<dir>/config.json` (`~/.docker` when `dir` is `None`). A missing file means
    /// anonymous access; an unreadable or malformed one is an error naming the file.
    pub(crate) fn load(dir: Option<&Path>, helper_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let dir = match dir {
            Some(dir) => dir.to_path_buf(),
            None => std::env::var_os("HOME")
                .map_or_else(|| PathBuf::from("~"), PathBuf::from)
                .join(".docker"),
        };
        let path = dir.join("config.json");
        let file = match std::fs::read(&path) {
            Ok(bytes) => parse_config(&bytes).with_context(|| {
                format!(
                    "Docker config {} is malformed; fix it (or point DOCKER_CONFIG at another \
                     directory)",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
            Err(e) => bail!(
                "cannot read Docker config {}: {e}; fix its permissions or point DOCKER_CONFIG at \
                 another directory",
                path.display()
            ),
        };
        let mut auths = BTreeMap::new();
        for (key, entry) in file.auths {
            let credential = decode_entry(&entry).with_context(|| {
                format!(
                    "Docker config {}: the entry for {key} is malformed",
                    path.display()
                )
            })?;
            auths.insert(key, credential);
        }
        log::debug!(
            "docker config {}: {} auths entries, credsStore {:?}, {} credHelpers",
            path.display(),
            auths.len(),
            file.creds_store,
            file.cred_helpers.len()
        );
        Ok(Self {
            path,
            auths,
            creds_store: file.creds_store.filter(|s| !s.is_empty()),
            cred_helpers: file.cred_helpers,
            helper_dir,
            helper_timeout: Duration::from_secs(30),
            helper_cache: Mutex::new(HashMap::new()),
        })
    }

    /// The `config.json` path, read or not.
    pub(crate) fn config_path(&self) -> &Path {
        &self.path
    }

    /// The credentials for a registry host: a credential helper (`credHelpers` before
    /// `credsStore`) when one is configured, else the `auths` entry. `Ok(None)` is anonymous.
    pub(crate) fn lookup(&self, host: &str) -> Result<Option<Resolved>, String> {
        let helper = find_key(&self.cred_helpers, host)
            .map(|(_, suffix)| suffix.clone())
            .or_else(|| self.creds_store.clone());
        if let Some(suffix) = helper {
            return self.lookup_helper(&suffix, host);
        }
        Ok(find_key(&self.auths, host).and_then(|(key, credential)| {
            credential.clone().map(|credential| Resolved {
                credential,
                origin: Origin::ConfigEntry {
                    key: key.clone(),
                    path: self.path.clone(),
                },
            })
        }))
    }

    fn lookup_helper(&self, suffix: &str, host: &str) -> Result<Option<Resolved>, String> {
        let server = server_address(host);
        // Held while the helper runs, so one host's helper runs once even under parallel checks.
        let mut cache = self
            .helper_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(hit) = cache.get(&server) {
            return Ok(hit.clone());
        }
        let program = format!("docker-credential-{suffix}");
        let credential = self.run_helper(suffix, &program, &server)?;
        let resolved = credential.map(|credential| Resolved {
            credential,
            origin: Origin::Helper {
                program: program.clone(),
            },
        });
        cache.insert(server, resolved.clone());
        Ok(resolved)
    }

    fn run_helper(
        &self,
        suffix: &str,
        program: &str,
        server: &str,
    ) -> Result<Option<Credential>, String> {
        if suffix.is_empty()
            || !suffix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(format!(
                "the credential helper name {suffix:?} in {} is not valid; fix credHelpers or \
                 credsStore",
                self.path.display()
            ));
        }
        let exe = self
            .helper_dir
            .as_ref()
            .map_or_else(|| PathBuf::from(program), |d| d.join(program));
        log::debug!("running {} get for {server}", exe.display());
        let output = run_with_timeout(&exe, server, self.helper_timeout).map_err(|e| {
            format!(
                "credential helper {program} (configured in {}) could not be run: {e}; install it \
                 or remove it from credHelpers/credsStore",
                self.path.display()
            )
        })?;
        if !output.success {
            let stdout = String::from_utf8_lossy(&output.stdout);
            if stdout.trim() == HELPER_NOT_FOUND {
                log::debug!("{program} has no credentials for {server}; going anonymous");
                return Ok(None);
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            let reason = [stdout.trim(), stderr.trim()]
                .into_iter()
                .find(|s| !s.is_empty())
                .and_then(|s| s.lines().next())
                .map_or_else(
                    || "no message".to_owned(),
                    |line| line.chars().take(200).collect(),
                );
            return Err(format!(
                "credential helper {program} failed for {server} ({}: {reason}); run \
                 `{program} get` by hand to see why",
                output.status
            ));
        }
        let answer: HelperAnswer = serde_json::from_slice(&output.stdout).map_err(|_| {
            format!("credential helper {program} printed something other than the expected JSON")
        })?;
        let username = answer.username.unwrap_or_default();
        let secret = answer.secret.unwrap_or_default();
        Ok(if secret.is_empty() && username.is_empty() {
            None
        } else if username == IDENTITY_TOKEN_USERNAME {
            Some(Credential::IdentityToken {
                username: None,
                token: secret,
            })
        } else {
            Some(Credential::Basic {
                username,
                password: secret,
            })
        })
    }
}

/// The server address Docker uses for credentials: Hub's v1 URL, else the host.
pub(crate) fn server_address(host: &str) -> String {
    if is_docker_hub(host) {
        HUB_SERVER_ADDRESS.to_owned()
    } else {
        host.to_ascii_lowercase()
    }
}

fn parse_config(bytes: &[u8]) -> anyhow::Result<ConfigFile> {
    serde_json::from_slice(bytes).map_err(|e| {
        // Say where, never what: serde's messages can quote values.
        let what = match e.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "JSON syntax error",
            serde_json::error::Category::Data => "unexpected value type",
            serde_json::error::Category::Eof => "unexpected end of file",
        };
        anyhow::anyhow!("{what} at line {} column {}", e.line(), e.column())
    })
}

/// Applies Docker's precedence: `registrytoken`, `identitytoken`, then `auth`
/// (base64 of `user:password`, split at the first colon) over `username`/`password`.
fn decode_entry(entry: &AuthEntry) -> anyhow::Result<Option<Credential>> {
    let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let (mut username, mut password) = (non_empty(&entry.username), non_empty(&entry.password));
    if let Some(auth) = non_empty(&entry.auth) {
        let auth = auth.trim();
        let bytes = STANDARD
            .decode(auth)
            .or_else(|_| STANDARD_NO_PAD.decode(auth.trim_end_matches('=')))
            .map_err(|_| anyhow::anyhow!("its `auth` value is not valid base64"))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("its `auth` value does not decode to text"))?;
        let (user, pass) = text
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("its `auth` value is not base64 of user:password"))?;
        username = Some(user.to_owned());
        password = Some(pass.to_owned());
    }
    Ok(if let Some(token) = non_empty(&entry.registrytoken) {
        Some(Credential::RegistryToken(token))
    } else if let Some(token) = non_empty(&entry.identitytoken) {
        Some(Credential::IdentityToken { username, token })
    } else if username.is_some() || password.is_some() {
        Some(Credential::Basic {
            username: username.unwrap_or_default(),
            password: password.unwrap_or_default(),
        })
    } else {
        None
    })
}

/// `https://myreg:5000/v2/` → `myreg:5000`; Docker Hub's names → `docker.io`.
fn normalise_key(key: &str) -> String {
    let host = strip_scheme(key.trim())
        .split('/')
        .next()
        .unwrap_or_default();
    if is_docker_hub(host) {
        "docker.io".to_owned()
    } else {
        host.to_ascii_lowercase()
    }
}

/// Finds the config key for `host`: an exact match first (for Docker Hub, its usual keys in
/// Docker's order), then any key that normalises to the same host.
fn find_key<'a, V>(map: &'a BTreeMap<String, V>, host: &str) -> Option<(&'a String, &'a V)> {
    let exact: Vec<&str> = if is_docker_hub(host) {
        vec![
            HUB_SERVER_ADDRESS,
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
            host,
        ]
    } else {
        vec![host]
    };
    for want in exact {
        if let Some(found) = map.iter().find(|(key, _)| key.eq_ignore_ascii_case(want)) {
            return Some(found);
        }
    }
    let target = normalise_key(host);
    map.iter().find(|(key, _)| {
        // The CLI's web login also writes `…/v1/access-token` and `…/refresh-token` entries.
        let web_login = key.ends_with("/access-token") || key.ends_with("/refresh-token");
        !web_login && normalise_key(key) == target
    })
}

struct HelperOutput {
    success: bool,
    status: std::process::ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `<exe> get` with `input` on stdin; kills it (and anything it started) after `timeout`.
/// The helper inherits pullpilot's environment: it may need `HOME`, `DBUS_SESSION_BUS_ADDRESS`
/// or its own variables to reach the secret store.
fn run_with_timeout(exe: &Path, input: &str, timeout: Duration) -> Result<HelperOutput, String> {
    let mut cmd = Command::new(exe);
    cmd.arg("get");
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let limits = RunLimits {
        timeout,
        max_output: 1 << 20,
    };
    let finished =
        process::run(
            &mut cmd,
            Some(input.as_bytes()),
            limits,
            |stream, chunk| match stream {
                Stream::Stdout => stdout.extend_from_slice(chunk),
                Stream::Stderr => stderr.extend_from_slice(chunk),
            },
        )
        .map_err(|e| match e {
            RunError::Start(e) | RunError::Wait(e) => e.to_string(),
            RunError::TimedOut { .. } => format!(
                "it did not answer within {}",
                humantime::format_duration(timeout)
            ),
        })?;
    if finished.output_abandoned {
        log::warn!(
            "Credential helper {} left a process that still holds its output; pullpilot stopped \
             reading it.",
            exe.display()
        );
    }
    Ok(HelperOutput {
        success: finished.status.success(),
        status: finished.status,
        stdout,
        stderr,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Instant;

    /// A fresh directory for one test, deleted on drop.
    pub(crate) struct TempDir(tempfile::TempDir);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            let prefix = format!("pp-registry-{tag}-");
            Self(tempfile::Builder::new().prefix(&prefix).tempdir().unwrap())
        }

        pub(crate) fn path(&self) -> &Path {
            self.0.path()
        }

        pub(crate) fn write(&self, name: &str, contents: &str) -> PathBuf {
            let path = self.path().join(name);
            std::fs::write(&path, contents).unwrap();
            path
        }

        pub(crate) fn write_script(&self, name: &str, contents: &str) {
            use std::os::unix::fs::PermissionsExt as _;
            let path = self.write(name, contents);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    fn store_with(config: &str) -> (TempDir, CredentialStore) {
        let dir = TempDir::new("creds");
        dir.write("config.json", config);
        let store =
            CredentialStore::load(Some(dir.path()), Some(dir.path().to_path_buf())).unwrap();
        (dir, store)
    }

    fn basic(user: &str, pass: &str) -> Credential {
        Credential::Basic {
            username: user.into(),
            password: pass.into(),
        }
    }

    #[test]
    fn credential_lookup_table() {
        let config = serde_json::json!({
            "auths": {
                "https://index.docker.io/v1/": {"auth": b64("hubuser:hub:pass")},
                "https://index.docker.io/v1/access-token": {"auth": b64("x:y")},
                "ghcr.io": {"username": "gh", "password": "pat"},
                "https://myreg:5000/v2/": {"auth": b64("legacy:pw")},
                "exact.example": {"auth": b64("exact:1")},
                "http://exact.example/v1/": {"auth": b64("normalised:2")},
                "acr.example": {"identitytoken": "refresh", "auth": b64("00000000:")},
                "tok.example": {"registrytoken": "bearer-as-is"},
                "empty.example": {},
                "both.example": {"auth": b64("fromauth:a"), "username": "u", "password": "p"}
            }
        });
        let (_dir, store) = store_with(&config.to_string());
        let get = |host: &str| store.lookup(host).unwrap().map(|r| r.credential);
        let cases: Vec<(&str, Option<Credential>)> = vec![
            ("registry-1.docker.io", Some(basic("hubuser", "hub:pass"))),
            ("docker.io", Some(basic("hubuser", "hub:pass"))),
            ("INDEX.docker.io", Some(basic("hubuser", "hub:pass"))),
            ("ghcr.io", Some(basic("gh", "pat"))),
            ("myreg:5000", Some(basic("legacy", "pw"))),
            ("myreg", None),
            ("exact.example", Some(basic("exact", "1"))),
            (
                "acr.example",
                Some(Credential::IdentityToken {
                    username: Some("00000000".into()),
                    token: "refresh".into(),
                }),
            ),
            (
                "tok.example",
                Some(Credential::RegistryToken("bearer-as-is".into())),
            ),
            ("empty.example", None),
            ("both.example", Some(basic("fromauth", "a"))),
            ("quay.io", None),
        ];
        for (host, want) in cases {
            assert_eq!(get(host), want, "{host}");
        }
        let origin = store.lookup("myreg:5000").unwrap().unwrap().origin;
        assert_eq!(
            origin.to_string(),
            format!(
                "the entry for https://myreg:5000/v2/ in {}",
                store.config_path().display()
            )
        );
    }

    #[test]
    fn hub_access_token_entries_are_ignored() {
        let config = serde_json::json!({"auths": {
            "https://index.docker.io/v1/access-token": {"auth": b64("x:y")},
            "https://index.docker.io/v1/refresh-token": {"auth": b64("x:y")}
        }});
        let (_dir, store) = store_with(&config.to_string());
        assert_eq!(store.lookup("docker.io").unwrap(), None);
    }

    #[test]
    fn missing_config_is_anonymous_and_malformed_config_names_the_file() {
        let dir = TempDir::new("nocfg");
        let store = CredentialStore::load(Some(dir.path()), None).unwrap();
        assert_eq!(store.lookup("ghcr.io").unwrap(), None);

        dir.write(
            "config.json",
            r#"{"auths": {"ghcr.io": {"auth": "s3cret!!"}}}"#,
        );
        let err = format!(
            "{:#}",
            CredentialStore::load(Some(dir.path()), None).unwrap_err()
        );
        assert!(
            err.contains(&dir.path().join("config.json").display().to_string()),
            "{err}"
        );
        assert!(err.contains("ghcr.io") && err.contains("base64"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");

        dir.write("config.json", r#"{"auths": {"ghcr.io": {"auth": "#);
        let err = format!(
            "{:#}",
            CredentialStore::load(Some(dir.path()), None).unwrap_err()
        );
        assert!(
            err.contains("config.json") && err.contains("line 1"),
            "{err}"
        );

        dir.write("config.json", r#"{"auths": {"ghcr.io": {"auth": 12345}}}"#);
        let err = format!(
            "{:#}",
            CredentialStore::load(Some(dir.path()), None).unwrap_err()
        );
        assert!(!err.contains("12345"), "values are never quoted: {err}");
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let creds = [
            Credential::Basic {
                username: "u".into(),
                password: "pw-secret".into(),
            },
            Credential::IdentityToken {
                username: None,
                token: "id-secret".into(),
            },
            Credential::RegistryToken("rt-secret".into()),
        ];
        for c in creds {
            let text = format!("{c:?} {}", c.identity());
            assert!(!text.contains("secret"), "{text}");
        }
        let (_dir, store) = store_with(r#"{"auths":{"h":{"auth":"dTpwdy1zZWNyZXQ="}}}"#);
        assert!(!format!("{store:?}").contains("secret"));
    }

    /// A fake helper: logs its argument and stdin, then answers per server URL.
    const FAKE_HELPER: &str = r#"#!/bin/sh
[ "$1" = "get" ] || exit 3
read -r server || true
echo "$server" >> "$(dirname "$0")/calls.log"
case "$server" in
  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"hubuser","Secret":"hubpat"}' ;;
  ghcr.io) echo '{"ServerURL":"ghcr.io","Username":"<token>","Secret":"refresh-tok"}' ;;
  missing.example) echo 'credentials not found in native keychain'; exit 1 ;;
  garbage.example) echo 'not json' ;;
  *) echo 'keychain is locked' >&2; exit 1 ;;
esac
"#;

    #[test]
    fn credential_helper_protocol() {
        let config = serde_json::json!({
            "auths": {"ghcr.io": {"auth": b64("ignored:because-helper")}, "plain.example": {"auth": b64("p:q")}},
            "credsStore": "fake",
            "credHelpers": {"https://special.example/v2/": "absent"}
        });
        let (dir, store) = store_with(&config.to_string());
        dir.write_script("docker-credential-fake", FAKE_HELPER);

        let hub = store.lookup("registry-1.docker.io").unwrap().unwrap();
        assert_eq!(hub.credential, basic("hubuser", "hubpat"));
        assert_eq!(
            hub.origin.to_string(),
            "the credentials stored in docker-credential-fake"
        );
        assert_eq!(
            store.lookup("ghcr.io").unwrap().unwrap().credential,
            Credential::IdentityToken {
                username: None,
                token: "refresh-tok".into()
            }
        );
        assert_eq!(store.lookup("missing.example").unwrap(), None);

        let err = store.lookup("locked.example").unwrap_err();
        assert!(
            err.contains("docker-credential-fake") && err.contains("keychain is locked"),
            "{err}"
        );
        let err = store.lookup("garbage.example").unwrap_err();
        assert!(
            err.contains("docker-credential-fake") && !err.contains("not json"),
            "{err}"
        );

        // credHelpers beats credsStore, matched by normalised key; a missing binary is named.
        let err = store.lookup("special.example").unwrap_err();
        assert!(
            err.contains("docker-credential-absent") && err.contains("could not be run"),
            "{err}"
        );

        // Results are cached per host: a second lookup does not run the helper again.
        store.lookup("registry-1.docker.io").unwrap();
        store.lookup("docker.io").unwrap();
        let calls = std::fs::read_to_string(dir.path().join("calls.log")).unwrap();
        assert_eq!(
            calls.lines().filter(|l| *l == HUB_SERVER_ADDRESS).count(),
            1,
            "{calls}"
        );
    }

    #[test]
    fn credential_helper_that_hangs_is_killed() {
        let (dir, mut store) = store_with(r#"{"credsStore":"slow"}"#);
        dir.write_script("docker-credential-slow", "#!/bin/sh\nsleep 5\n");
        store.helper_timeout = Duration::from_millis(200);
        let started = Instant::now();
        let err = store.lookup("ghcr.io").unwrap_err();
        assert!(err.contains("did not answer"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn a_background_job_of_a_credential_helper_does_not_hold_the_lookup() {
        let (dir, store) = store_with(r#"{"credsStore":"bg"}"#);
        // The job keeps stdout open; before the shared process helper, the lookup waited for it.
        dir.write_script(
            "docker-credential-bg",
            "#!/bin/sh\nsleep 15 &\necho $! > \"$(dirname \"$0\")/bg.pid\"\n\
             echo '{\"Username\":\"u\",\"Secret\":\"s\"}'\n",
        );
        let started = Instant::now();
        let found = store.lookup("ghcr.io").unwrap().unwrap();
        let elapsed = started.elapsed();
        assert_eq!(found.credential, basic("u", "s"));
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        // And the job was killed with the helper's process group (gone, or a zombie).
        let pid = std::fs::read_to_string(dir.path().join("bg.pid")).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        let dead = || {
            std::fs::read_to_string(&stat).map_or(true, |s| {
                s.rsplit(") ").next().is_some_and(|r| r.starts_with('Z'))
            })
        };
        let waited = Instant::now();
        while !dead() && waited.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(dead(), "the helper's background job was left running");
    }

    #[test]
    fn engine_fields_follow_the_credential_kind() {
        let fields = basic("u", "p").engine_fields();
        assert_eq!(
            serde_json::Value::Object(fields),
            serde_json::json!({"username":"u","password":"p"})
        );
        let fields = Credential::IdentityToken {
            username: None,
            token: "t".into(),
        }
        .engine_fields();
        assert_eq!(
            serde_json::Value::Object(fields),
            serde_json::json!({"identitytoken":"t"})
        );
    }
}
