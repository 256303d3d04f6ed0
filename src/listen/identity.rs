//! The webhook identity (`ed25519.key`: the raw 32-byte Ed25519 seed) and the relay registration
//! (`webhook.json`), both in `PP_DATA_DIR` with mode 0600.
//!
//! A key file of the wrong size is an error, never a silent new identity: the registration and
//! poke URL belong to the key. A new key deletes the old registration, which it could not use.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::files::write_private;
use crate::webhook::protocol::{self, Identity, ProvisionRequest, Provisioned};

pub const KEY_FILE: &str = "ed25519.key";
pub const REGISTRATION_FILE: &str = "webhook.json";

/// Loads the identity, creating one (and dropping any registration) when there is none.
pub fn load_or_create(data_dir: &Path) -> Result<Identity> {
    crate::state::store::ensure_data_dir(data_dir)?;
    let path = data_dir.join(KEY_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                anyhow::anyhow!(
                    "the webhook identity {} is damaged ({} bytes, expected 32). Restore it from \
                     a backup; or delete it to make a new identity, which gets a new poke URL",
                    path.display(),
                    bytes.len()
                )
            })?;
            Ok(Identity::from_seed(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed = protocol::random_bytes::<32>();
            forget_registration(data_dir)?;
            write_private(&path, &seed)
                .with_context(|| format!("writing the webhook identity {}", path.display()))?;
            log::info!(
                "Created a new webhook identity in {}; keep it with the rest of PP_DATA_DIR.",
                path.display()
            );
            Ok(Identity::from_seed(&seed))
        }
        Err(e) => {
            Err(e).with_context(|| format!("reading the webhook identity {}", path.display()))
        }
    }
}

/// The relay's answer to provisioning, as kept in `webhook.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub base_url: String,
    pub webhook_id: String,
    pub poke_url: String,
    pub listen_url: String,
}

impl Registration {
    /// The poke URL with most of the webhook id and any userinfo hidden, for logs.
    pub fn redacted_poke_url(&self) -> String {
        redact_userinfo(&redact(&self.poke_url, &self.webhook_id))
    }
}

/// `url` with its userinfo (`user:pass@`), if any, shown as `***@`: for logs and errors.
pub fn redact_userinfo(url: &str) -> String {
    match userinfo(url) {
        Some(info) => url.replacen(&format!("{info}@"), "***@", 1),
        None => url.to_string(),
    }
}

/// The userinfo of `url` (`user:pass` in `https://user:pass@host/`), if it has one.
fn userinfo(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    authority.rfind('@').map(|at| &authority[..at])
}

/// `%XX` escapes decoded; anything else (and broken escapes) kept as is.
fn percent_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// `text` (an error message, say) with every trace of `url`'s userinfo replaced by `***`: the
/// whole of it, its password part and their percent-decoded forms.
pub fn scrub_userinfo(text: &str, url: &str) -> String {
    let Some(info) = userinfo(url) else {
        return text.to_string();
    };
    let mut secrets = vec![info.to_string()];
    if let Some((_, password)) = info.split_once(':') {
        secrets.push(password.to_string());
    }
    for s in secrets.clone() {
        secrets.push(percent_decoded(&s));
    }
    secrets.retain(|s| !s.is_empty());
    // Longest first, so the whole userinfo goes before its parts.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in &secrets {
        out = out.replace(s.as_str(), "***");
    }
    out
}

/// `url` with all but the first 7 characters of `id` replaced by `…`.
pub fn redact(url: &str, id: &str) -> String {
    if id.is_empty() {
        return url.to_string();
    }
    let shown: String = id.chars().take(7).collect();
    url.replace(id, &format!("{shown}…"))
}

fn registration_path(data_dir: &Path) -> PathBuf {
    data_dir.join(REGISTRATION_FILE)
}

/// The saved registration, if it is usable with `base_url`.
pub fn saved_registration(data_dir: &Path, base_url: &str) -> Option<Registration> {
    let path = registration_path(data_dir);
    let text = fs::read(&path).ok()?;
    match serde_json::from_slice::<Registration>(&text) {
        Ok(r) if !r.webhook_id.is_empty() && r.base_url == base_url => Some(r),
        Ok(r) if r.base_url != base_url => {
            log::info!(
                "PP_WEBHOOK_URL changed from {} to {}; registering with the new relay.",
                redact_userinfo(&r.base_url),
                redact_userinfo(base_url)
            );
            None
        }
        Ok(_) => None,
        Err(e) => {
            log::warn!(
                "The relay registration {} is unreadable ({e}); registering again.",
                path.display()
            );
            None
        }
    }
}

/// Any registration on disk, whatever relay it is for (for `listen --show-url`).
pub fn any_registration(data_dir: &Path) -> Result<Option<Registration>> {
    let path = registration_path(data_dir);
    match fs::read(&path) {
        Ok(text) => serde_json::from_slice(&text)
            .map(Some)
            .with_context(|| format!("reading the relay registration {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => {
            Err(e).with_context(|| format!("reading the relay registration {}", path.display()))
        }
    }
}

pub fn forget_registration(data_dir: &Path) -> Result<()> {
    let path = registration_path(data_dir);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            Err(e).with_context(|| format!("removing the relay registration {}", path.display()))
        }
    }
}

/// Registers `identity` with the relay at `base_url` and saves the registration.
pub fn provision(
    agent: &ureq::Agent,
    data_dir: &Path,
    base_url: &str,
    identity: &Identity,
) -> Result<Registration> {
    let url = format!("{base_url}/v1/provision");
    let shown = redact_userinfo(&url);
    let body = serde_json::to_string(&ProvisionRequest {
        pubkey: identity.public_key(),
        label: Some(protocol::LABEL.to_string()),
    })?;
    let mut response = agent
        .post(&url)
        .header("Content-Type", "application/json")
        .send(body.as_bytes())
        .map_err(|e| {
            anyhow::anyhow!(
                "registering with the relay at {shown}: {}",
                scrub_userinfo(&e.to_string(), base_url)
            )
        })?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    if status != 200 && status != 201 {
        let detail = super::relay_text::clean(&text);
        bail!(
            "the relay at {shown} refused to register this host: HTTP {status} \"{detail}\"; check \
             PP_WEBHOOK_URL"
        );
    }
    let provisioned: Provisioned = serde_json::from_str(&text).with_context(|| {
        format!("the relay at {shown} answered with something other than a registration")
    })?;
    if provisioned.webhook_id.is_empty()
        || !provisioned
            .webhook_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        bail!("the relay at {shown} answered with an unusable webhook id");
    }
    if !(provisioned.listen_url.starts_with("ws://")
        || provisioned.listen_url.starts_with("wss://"))
    {
        bail!("the relay at {shown} answered with a listen URL that is not ws:// or wss://");
    }
    let registration = Registration {
        base_url: base_url.to_string(),
        // Rebuilt from the base URL the operator configured, as the reference client does.
        poke_url: format!("{base_url}/v1/poke/{}", provisioned.webhook_id),
        webhook_id: provisioned.webhook_id,
        listen_url: provisioned.listen_url,
    };
    let mut text = serde_json::to_vec_pretty(&registration)?;
    text.push(b'\n');
    let path = registration_path(data_dir);
    write_private(&path, &text)
        .with_context(|| format!("saving the relay registration {}", path.display()))?;
    Ok(registration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// A path that does not exist yet, inside a fresh directory that is deleted when the
    /// returned guard drops.
    fn temp(name: &str) -> (tempfile::TempDir, PathBuf) {
        let prefix = format!("pp-ident-{name}-");
        let guard = tempfile::Builder::new().prefix(&prefix).tempdir().unwrap();
        let dir = guard.path().join(name);
        (guard, dir)
    }

    #[test]
    fn the_identity_is_created_once_with_private_modes() {
        let (_tmp, dir) = temp("create");
        let a = load_or_create(&dir).unwrap();
        let b = load_or_create(&dir).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let key = dir.join(KEY_FILE);
        assert_eq!(fs::read(&key).unwrap().len(), 32);
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn a_damaged_key_is_an_error_and_is_kept() {
        let (_tmp, dir) = temp("damaged");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(KEY_FILE), b"short").unwrap();
        let err = format!("{:#}", load_or_create(&dir).err().unwrap());
        assert!(err.contains("damaged (5 bytes, expected 32)"), "{err}");
        assert!(err.contains("Restore it"), "{err}");
        assert_eq!(fs::read(dir.join(KEY_FILE)).unwrap(), b"short");
    }

    #[test]
    fn a_new_key_drops_the_old_registration() {
        let (_tmp, dir) = temp("newkey");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(REGISTRATION_FILE), b"{}").unwrap();
        load_or_create(&dir).unwrap();
        assert!(!dir.join(REGISTRATION_FILE).exists());
    }

    #[test]
    fn a_registration_is_reused_only_for_the_same_relay() {
        let (_tmp, dir) = temp("reuse");
        fs::create_dir_all(&dir).unwrap();
        let r = Registration {
            base_url: "https://relay.example".into(),
            webhook_id: "wh_abc".into(),
            poke_url: "https://relay.example/v1/poke/wh_abc".into(),
            listen_url: "wss://relay.example/v1/listen/wh_abc".into(),
        };
        fs::write(dir.join(REGISTRATION_FILE), serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(saved_registration(&dir, "https://relay.example"), Some(r));
        assert_eq!(saved_registration(&dir, "https://other.example"), None);
        fs::write(dir.join(REGISTRATION_FILE), b"{broken").unwrap();
        assert_eq!(saved_registration(&dir, "https://relay.example"), None);
    }

    #[test]
    fn userinfo_never_shows() {
        let url = "https://ops:s3cr%3Ft@relay.example/base";
        assert_eq!(redact_userinfo(url), "https://***@relay.example/base");
        assert_eq!(
            redact_userinfo("https://relay.example/a@b"),
            "https://relay.example/a@b"
        );
        let text = "failed for https://ops:s3cr%3Ft@relay.example (user ops, s3cr?t)";
        let scrubbed = scrub_userinfo(text, url);
        assert!(!scrubbed.contains("s3cr"), "{scrubbed}");
        // Broken escapes stay as written; bytes that are not UTF-8 become U+FFFD.
        assert_eq!(percent_decoded("a%zz%4%3F"), "a%zz%4?");
        assert_eq!(percent_decoded("%C3%A9%ff"), "é\u{fffd}");
        let r = Registration {
            base_url: url.into(),
            webhook_id: "wh_0123456789".into(),
            poke_url: format!("{url}/v1/poke/wh_0123456789"),
            listen_url: "wss://relay.example/v1/listen/wh_0123456789".into(),
        };
        assert_eq!(
            r.redacted_poke_url(),
            "https://***@relay.example/base/v1/poke/wh_0123…"
        );
    }

    #[test]
    fn poke_urls_are_redacted() {
        assert_eq!(
            redact(
                "https://r.example/v1/poke/wh_0123456789abcdef",
                "wh_0123456789abcdef"
            ),
            "https://r.example/v1/poke/wh_0123…"
        );
    }
}
