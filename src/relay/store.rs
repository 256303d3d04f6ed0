//! The relay's registrations: one record per webhook id, kept in memory and in
//! `<state_dir>/registrations.json` (directory 0700, file 0600, replaced atomically).
//!
//! Only registration changes and the pending flag are worth an immediate write; `lastSeen`
//! moves on every auth and poke, so it is only marked dirty and written with the next periodic
//! save (see `Relay::save`), never once per poke.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::webhook::protocol;

pub(crate) const FILE_NAME: &str = "registrations.json";
const LOCK_NAME: &str = "relay.lock";
const FORMAT_VERSION: u32 = 1;

/// What the relay knows about one webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Record {
    /// Canonical unpadded base64url of the 32-byte Ed25519 public key.
    pub(crate) pubkey: String,
    pub(crate) label: Option<String>,
    #[serde(with = "iso")]
    pub(crate) created_at: SystemTime,
    /// The last auth, poke or (coarsely) connected moment; pruning counts from here.
    #[serde(with = "iso")]
    pub(crate) last_seen: SystemTime,
    /// A poke arrived while no listener was authenticated; delivered after the next auth.
    #[serde(default)]
    pub(crate) pending: bool,
}

impl Record {
    pub(crate) fn new(pubkey: String, label: Option<String>, now: SystemTime) -> Record {
        Record {
            pubkey,
            label,
            created_at: now,
            last_seen: now,
            pending: false,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    version: u32,
    webhooks: BTreeMap<String, Record>,
}

/// The registrations and whether memory is ahead of the file.
#[derive(Debug)]
pub(crate) struct Store {
    /// Held for the relay's life: two relays on one directory would overwrite each other.
    _lock: File,
    dir: PathBuf,
    records: BTreeMap<String, Record>,
    /// Something changed since the last successful save.
    pub(crate) dirty: bool,
}

impl Store {
    /// Reads `<dir>/registrations.json`, creating the directory (0700) if needed. A missing file
    /// is an empty relay; a damaged one is an error, never silently replaced by an empty list.
    pub(crate) fn open(dir: &Path) -> Result<Store> {
        ensure_dir(dir)?;
        let lock = lock_dir(dir)?;
        let path = dir.join(FILE_NAME);
        let records = match fs::read(&path) {
            Ok(bytes) => parse(&bytes).with_context(|| {
                format!(
                    "the relay's registrations file {} is damaged; restore it from a backup or \
                     move it aside (every webhook then has to provision again) and start the relay again",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("reading the relay's registrations file {}", path.display())
                });
            }
        };
        Ok(Store {
            _lock: lock,
            dir: dir.to_path_buf(),
            records,
            dirty: false,
        })
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Record> {
        self.records.get(id)
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.records.contains_key(id)
    }

    pub(crate) fn insert(&mut self, id: String, record: Record) {
        self.records.insert(id, record);
        self.dirty = true;
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Record> {
        let removed = self.records.remove(id);
        self.dirty |= removed.is_some();
        removed
    }

    /// Records activity; the change waits for the next periodic save.
    pub(crate) fn touch(&mut self, id: &str, now: SystemTime) {
        if let Some(record) = self.records.get_mut(id) {
            record.last_seen = now;
            self.dirty = true;
        }
    }

    /// Refreshes `lastSeen` only when it is older than `every`: enough for pruning, which
    /// counts in days, without a write each minute for every connected listener.
    pub(crate) fn touch_if_older(&mut self, id: &str, now: SystemTime, every: Duration) {
        if self
            .records
            .get(id)
            .is_some_and(|r| now.duration_since(r.last_seen).unwrap_or_default() >= every)
        {
            self.touch(id, now);
        }
    }

    /// Sets or clears the pending flag; true when it changed (and so is worth saving now).
    pub(crate) fn set_pending(&mut self, id: &str, pending: bool) -> bool {
        match self.records.get_mut(id) {
            Some(record) if record.pending != pending => {
                record.pending = pending;
                self.dirty = true;
                true
            }
            _ => false,
        }
    }

    /// Ids whose `lastSeen` is more than `after` before `now`.
    pub(crate) fn stale(&self, now: SystemTime, after: Duration) -> Vec<String> {
        self.records
            .iter()
            .filter(|(_, r)| now.duration_since(r.last_seen).unwrap_or_default() > after)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The file's content as it would be saved now.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let file = StoreFile {
            version: FORMAT_VERSION,
            webhooks: self.records.clone(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).expect("records always serialise");
        bytes.push(b'\n');
        bytes
    }
}

fn parse(bytes: &[u8]) -> Result<BTreeMap<String, Record>> {
    let file: StoreFile = serde_json::from_slice(bytes).context("it is not valid JSON")?;
    if file.version != FORMAT_VERSION {
        anyhow::bail!(
            "it has format version {}, and this relay reads version {FORMAT_VERSION}",
            file.version
        );
    }
    for (id, record) in &file.webhooks {
        if !is_webhook_id(id) {
            anyhow::bail!("{id:?} is not a webhook id (wh_ and 64 lowercase hex digits)");
        }
        protocol::check_public_key(&record.pubkey).map_err(|code| {
            anyhow::anyhow!("webhook {} has a bad public key ({code})", short_id(id))
        })?;
    }
    Ok(file.webhooks)
}

/// `wh_` followed by 64 lowercase hex digits.
pub(crate) fn is_webhook_id(id: &str) -> bool {
    id.strip_prefix("wh_").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A new random webhook id.
pub(crate) fn new_webhook_id() -> String {
    format!("wh_{}", protocol::hex(&protocol::random_bytes::<32>()))
}

/// A webhook id as logs show it: enough to tell webhooks apart, too little to poke one.
pub(crate) fn short_id(id: &str) -> String {
    let cut: String = id.chars().take(11).collect();
    format!("{cut}…")
}

/// Creates the directory (0700) if needed; an existing one is checked, never changed.
fn ensure_dir(dir: &Path) -> Result<()> {
    crate::files::ensure_private_dir(dir, "the relay's state directory", "--state-dir")
}

fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_NAME);
    let file = crate::files::open_lock_file(&path)
        .with_context(|| format!("opening the relay's lock file {}", path.display()))?;
    fs2::FileExt::try_lock_exclusive(&file).map_err(|_| {
        anyhow::anyhow!(
            "another relay is already using the state directory {}; stop it or give this one \
             its own --state-dir",
            dir.display()
        )
    })?;
    Ok(file)
}

/// Replaces `<dir>/registrations.json` with `bytes` (0600, through a synced temporary file
/// and a rename): a crash leaves either the old or the new file, never half of one.
pub(crate) fn write_atomic(dir: &Path, bytes: &[u8]) -> Result<()> {
    let path = dir.join(FILE_NAME);
    crate::files::write_private(&path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// RFC 3339 timestamps in UTC with seconds, as `createdAt`/`lastSeen` are written.
mod iso {
    use std::time::SystemTime;

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_seconds(*t))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339(&text)
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a timestamp: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pullpilot-relay-store-{name}-{}-{}",
            std::process::id(),
            protocol::hex(&protocol::random_bytes::<4>())
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn key() -> String {
        protocol::b64url(&[9; 32])
    }

    #[test]
    fn records_survive_a_save_and_reopen() {
        let dir = temp_dir("roundtrip");
        let mut store = Store::open(&dir).unwrap();
        assert_eq!(store.len(), 0);
        let id = new_webhook_id();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        store.insert(
            id.clone(),
            Record::new(key(), Some("pullpilot".into()), now),
        );
        assert!(store.set_pending(&id, true));
        assert!(!store.set_pending(&id, true));
        write_atomic(&dir, &store.to_bytes()).unwrap();

        let text = fs::read_to_string(dir.join(FILE_NAME)).unwrap();
        assert!(
            text.contains("\"createdAt\": \"2023-11-14T22:13:20Z\""),
            "{text}"
        );
        assert!(text.contains("\"lastSeen\""));
        let mode = fs::metadata(dir.join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);

        let saved = store.get(&id).cloned();
        drop(store);
        let again = Store::open(&dir).unwrap();
        assert_eq!(again.get(&id), saved.as_ref());
        assert!(again.get(&id).unwrap().pending);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = temp_dir("damaged");
        fs::create_dir_all(&dir).unwrap();
        for content in [
            "{not json".to_string(),
            r#"{"version":2,"webhooks":{}}"#.to_string(),
            format!(
                r#"{{"version":1,"webhooks":{{"wh_short":{{"pubkey":"{}","label":null,"createdAt":"2024-01-01T00:00:00Z","lastSeen":"2024-01-01T00:00:00Z"}}}}}}"#,
                key()
            ),
        ] {
            fs::write(dir.join(FILE_NAME), content).unwrap();
            let err = format!("{:#}", Store::open(&dir).unwrap_err());
            assert!(err.contains("registrations.json is damaged"), "{err}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn one_directory_serves_one_relay_at_a_time() {
        let dir = temp_dir("lock");
        let first = Store::open(&dir).unwrap();
        let err = format!("{:#}", Store::open(&dir).unwrap_err());
        assert!(err.contains("another relay is already using"), "{err}");
        drop(first);
        Store::open(&dir).unwrap();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn stale_records_are_those_unseen_for_longer_than_the_limit() {
        let dir = temp_dir("stale");
        let mut store = Store::open(&dir).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let day = Duration::from_secs(86_400);
        let (old, fresh) = (new_webhook_id(), new_webhook_id());
        store.insert(old.clone(), Record::new(key(), None, t0));
        store.insert(fresh.clone(), Record::new(key(), None, t0));
        store.touch(&fresh, t0 + day * 100);
        assert_eq!(store.stale(t0 + day * 180, day * 180), Vec::<String>::new());
        assert_eq!(store.stale(t0 + day * 181, day * 180), vec![old.clone()]);
        assert_eq!(store.stale(t0 + day * 300, day * 180).len(), 2);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn connected_listeners_refresh_last_seen_only_now_and_then() {
        let dir = temp_dir("touch");
        let mut store = Store::open(&dir).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let id = new_webhook_id();
        store.insert(id.clone(), Record::new(key(), None, t0));
        store.dirty = false;
        let hour = Duration::from_secs(3600);
        store.touch_if_older(&id, t0 + Duration::from_secs(60), hour);
        assert!(!store.dirty);
        store.touch_if_older(&id, t0 + hour, hour);
        assert!(store.dirty);
        assert_eq!(store.get(&id).unwrap().last_seen, t0 + hour);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn webhook_ids_have_one_shape() {
        let id = new_webhook_id();
        assert!(is_webhook_id(&id), "{id}");
        assert!(!is_webhook_id("wh_ABC"));
        assert!(!is_webhook_id(&id.to_uppercase()));
        assert!(!is_webhook_id(&format!("{id}0")));
        assert_eq!(short_id(&id).chars().count(), 12);
        assert!(short_id(&id).ends_with('…'));
    }
}
