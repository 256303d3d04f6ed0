//! The relay's registrations: one record per webhook id, kept in memory and in
//! `<state_dir>/registrations.json` (directory 0700, file 0600, replaced atomically), plus
//! `registrations.journal`, where each new registration is appended (one JSON line, synced)
//! so a provision costs the same with 100 or 100,000 records. The journal is folded into the
//! snapshot by the periodic save (see `Relay::save`) and replayed at start.
//!
//! Only registration changes and the pending flag are worth an immediate write; `lastSeen`
//! moves on every auth and poke, so it is only marked dirty and written with the next periodic
//! save, never once per poke.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::webhook::protocol;

pub(crate) const FILE_NAME: &str = "registrations.json";
pub(crate) const JOURNAL_NAME: &str = "registrations.journal";
/// The registrations as they were before the last prune that forgot any.
pub(crate) const BACKUP_NAME: &str = "registrations.before-prune.json";
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
    /// The client network (IPv4 address or IPv6 /64) that provisioned it, for the
    /// per-network cap; absent in records from older relays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) network: Option<String>,
}

impl Record {
    pub(crate) fn new(pubkey: String, label: Option<String>, now: SystemTime) -> Record {
        Record {
            pubkey,
            label,
            created_at: now,
            last_seen: now,
            pending: false,
            network: None,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    version: u32,
    webhooks: BTreeMap<String, Record>,
}

/// One journal line: a registration made after the snapshot was written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    record: Record,
}

/// The registrations and whether memory is ahead of the files.
#[derive(Debug)]
pub(crate) struct RegistrationStore {
    /// Held for the relay's life: two relays on one directory would overwrite each other.
    _lock: File,
    dir: PathBuf,
    records: BTreeMap<String, Record>,
    /// Records per provisioning network.
    by_network: HashMap<String, usize>,
    /// Opened for appending.
    journal: File,
    /// Bytes in the journal (a failed append is cut back to this).
    journal_len: u64,
    /// Entries in the journal; the snapshot is due once there are some.
    pub(crate) journal_entries: usize,
    /// Something changed that neither the snapshot nor the journal holds.
    pub(crate) dirty: bool,
}

impl RegistrationStore {
    /// Reads `<dir>/registrations.json` and replays the journal, creating the directory (0700)
    /// if needed. A missing file is an empty relay; a damaged one is a configuration error
    /// (exit 2, so systemd does not restart into it), never silently replaced by an empty list.
    pub(crate) fn open(dir: &Path) -> Result<RegistrationStore> {
        ensure_dir(dir)?;
        let lock = lock_dir(dir)?;
        let path = dir.join(FILE_NAME);
        let mut records = match fs::read(&path) {
            Ok(bytes) => parse(&bytes).map_err(|e| damaged(&path, &e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("reading the relay's registrations file {}", path.display())
                });
            }
        };
        let journal_path = dir.join(JOURNAL_NAME);
        let (journal_entries, journal_len) = match fs::read(&journal_path) {
            Ok(bytes) => replay(&bytes, &mut records).map_err(|e| damaged(&journal_path, &e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, 0),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("reading the relay's journal {}", journal_path.display())
                });
            }
        };
        let journal = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&journal_path)
            .with_context(|| format!("opening the relay's journal {}", journal_path.display()))?;
        // A torn last line (a crash mid-append) is dropped, so the next entry starts clean.
        journal
            .set_len(journal_len)
            .with_context(|| format!("repairing the relay's journal {}", journal_path.display()))?;
        let mut by_network = HashMap::new();
        for record in records.values() {
            if let Some(network) = &record.network {
                *by_network.entry(network.clone()).or_insert(0) += 1;
            }
        }
        Ok(RegistrationStore {
            _lock: lock,
            dir: dir.to_path_buf(),
            records,
            by_network,
            journal,
            journal_len,
            journal_entries,
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

    /// Registrations made from `network` that are still kept.
    pub(crate) fn count_for(&self, network: &str) -> usize {
        self.by_network.get(network).copied().unwrap_or(0)
    }

    #[cfg(test)]
    pub(crate) fn insert(&mut self, id: String, record: Record) {
        self.add(id, record);
        self.dirty = true;
    }

    /// Adds a registration and makes it durable by appending it to the journal (one synced
    /// line, whatever the number of records); on error nothing is added.
    pub(crate) fn insert_journaled(&mut self, id: String, record: Record) -> Result<()> {
        let mut line = serde_json::to_vec(&Entry {
            id: id.clone(),
            record: record.clone(),
        })
        .expect("records always serialise");
        line.push(b'\n');
        let appended = self
            .journal
            .write_all(&line)
            .and_then(|()| self.journal.sync_data());
        if let Err(e) = appended {
            // Cut a partial line off, or the next entry would be glued to it.
            let _ = self.journal.set_len(self.journal_len);
            return Err(e).with_context(|| {
                format!("appending to {}", self.dir.join(JOURNAL_NAME).display())
            });
        }
        self.journal_len += line.len() as u64;
        self.journal_entries += 1;
        self.add(id, record);
        Ok(())
    }

    fn add(&mut self, id: String, record: Record) {
        if let Some(network) = &record.network {
            *self.by_network.entry(network.clone()).or_insert(0) += 1;
        }
        if let Some(old) = self.records.insert(id, record) {
            self.forget_network(&old);
        }
    }

    fn forget_network(&mut self, record: &Record) {
        if let Some(network) = &record.network
            && let Some(count) = self.by_network.get_mut(network)
        {
            *count -= 1;
            if *count == 0 {
                self.by_network.remove(network);
            }
        }
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Record> {
        let removed = self.records.remove(id);
        if let Some(record) = &removed {
            self.forget_network(record);
            self.dirty = true;
        }
        removed
    }

    /// Empties the journal once a snapshot holds everything in it (`entries` is
    /// `journal_entries` when that snapshot was taken; later entries keep the journal whole,
    /// and replaying entries the snapshot already has changes nothing).
    pub(crate) fn snapshot_saved(&mut self, entries: usize) -> Result<()> {
        if entries == 0 || entries != self.journal_entries {
            return Ok(());
        }
        self.journal
            .set_len(0)
            .and_then(|()| self.journal.sync_data())
            .with_context(|| format!("emptying {}", self.dir.join(JOURNAL_NAME).display()))?;
        self.journal_len = 0;
        self.journal_entries = 0;
        Ok(())
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

/// The error for a file the relay cannot read: a configuration error (exit 2), naming the file
/// and the way out.
fn damaged(path: &Path, cause: &anyhow::Error) -> anyhow::Error {
    crate::error::Failure::usage(format!(
        "the relay's registrations file {} is damaged ({cause:#}); restore it from a backup \
         (such as {BACKUP_NAME} next to it) or move it aside (every webhook then has to \
         provision again) and start the relay again",
        path.display()
    ))
}

/// Adds the journal's registrations that the snapshot does not have yet; the number of entries
/// and the length of the whole lines. A last line without its newline is a crash during an
/// append and is ignored; anything else unreadable is damage.
fn replay(bytes: &[u8], records: &mut BTreeMap<String, Record>) -> Result<(usize, u64)> {
    let mut entries = 0;
    let mut whole = 0;
    for (n, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        if !line.ends_with(b"\n") {
            log::warn!(
                "Ignoring an incomplete last line in {JOURNAL_NAME} (the relay stopped while \
                 writing it; that provision was never answered)."
            );
            break;
        }
        let entry: Entry = serde_json::from_slice(line)
            .with_context(|| format!("line {} is not a journal entry", n + 1))?;
        check_record(&entry.id, &entry.record)?;
        records.entry(entry.id).or_insert(entry.record);
        entries += 1;
        whole += line.len() as u64;
    }
    Ok((entries, whole))
}

fn check_record(id: &str, record: &Record) -> Result<()> {
    if !is_webhook_id(id) {
        anyhow::bail!("{id:?} is not a webhook id (wh_ and 64 lowercase hex digits)");
    }
    protocol::check_public_key(&record.pubkey)
        .map_err(|code| anyhow::anyhow!("webhook {} has a bad public key ({code})", short_id(id)))
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
        check_record(id, record)?;
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
/// and a rename): a crash leaves either the old or the new file, never half of one, and a
/// failed write (a full disk) leaves no temporary file behind.
pub(crate) fn write_atomic(dir: &Path, bytes: &[u8]) -> Result<()> {
    write_file(dir, FILE_NAME, bytes)
}

/// Writes `<dir>/<name>` whole or not at all (0600, no temporary file left on failure).
pub(crate) fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
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

    /// A path that does not exist yet, inside a fresh directory that is deleted when the
    /// returned guard drops.
    fn temp_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
        let prefix = format!("pp-relay-store-{name}-");
        let guard = tempfile::Builder::new().prefix(&prefix).tempdir().unwrap();
        let dir = guard.path().join(name);
        (guard, dir)
    }

    fn key() -> String {
        protocol::b64url(&[9; 32])
    }

    #[test]
    fn records_survive_a_save_and_reopen() {
        let (_tmp, dir) = temp_dir("roundtrip");
        let mut store = RegistrationStore::open(&dir).unwrap();
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
        let again = RegistrationStore::open(&dir).unwrap();
        assert_eq!(again.get(&id), saved.as_ref());
        assert!(again.get(&id).unwrap().pending);
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let (_tmp, dir) = temp_dir("damaged");
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
            let err = RegistrationStore::open(&dir).unwrap_err();
            assert_eq!(
                crate::error::kind_of(&err),
                Some(crate::error::FailureKind::Usage)
            );
            let err = format!("{err:#}");
            assert!(err.contains("registrations.json is damaged"), "{err}");
        }
    }

    #[test]
    fn one_directory_serves_one_relay_at_a_time() {
        let (_tmp, dir) = temp_dir("lock");
        let first = RegistrationStore::open(&dir).unwrap();
        let err = format!("{:#}", RegistrationStore::open(&dir).unwrap_err());
        assert!(err.contains("another relay is already using"), "{err}");
        drop(first);
        RegistrationStore::open(&dir).unwrap();
    }

    #[test]
    fn stale_records_are_those_unseen_for_longer_than_the_limit() {
        let (_tmp, dir) = temp_dir("stale");
        let mut store = RegistrationStore::open(&dir).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let day = Duration::from_secs(86_400);
        let (old, fresh) = (new_webhook_id(), new_webhook_id());
        store.insert(old.clone(), Record::new(key(), None, t0));
        store.insert(fresh.clone(), Record::new(key(), None, t0));
        store.touch(&fresh, t0 + day * 100);
        assert_eq!(store.stale(t0 + day * 180, day * 180), Vec::<String>::new());
        assert_eq!(store.stale(t0 + day * 181, day * 180), vec![old.clone()]);
        assert_eq!(store.stale(t0 + day * 300, day * 180).len(), 2);
    }

    #[test]
    fn connected_listeners_refresh_last_seen_only_now_and_then() {
        let (_tmp, dir) = temp_dir("touch");
        let mut store = RegistrationStore::open(&dir).unwrap();
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
    }

    #[test]
    fn provisions_go_to_the_journal_and_survive_a_reopen() {
        let (_tmp, dir) = temp_dir("journal");
        let mut store = RegistrationStore::open(&dir).unwrap();
        let (a, b) = (new_webhook_id(), new_webhook_id());
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut record = Record::new(key(), None, now);
        record.network = Some("192.0.2.1".into());
        store.insert_journaled(a.clone(), record.clone()).unwrap();
        store.insert_journaled(b.clone(), record.clone()).unwrap();
        assert!(!store.dirty, "the journal holds them");
        assert!(!dir.join(FILE_NAME).exists(), "no snapshot was written");
        assert_eq!(store.count_for("192.0.2.1"), 2);
        drop(store);

        // A crash in the middle of a third append leaves half a line: ignored, then cut off.
        let journal = dir.join(JOURNAL_NAME);
        let mut text = fs::read_to_string(&journal).unwrap();
        text.push_str(r#"{"id":"wh_"#);
        fs::write(&journal, &text).unwrap();
        let mut store = RegistrationStore::open(&dir).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.journal_entries, 2);
        assert_eq!(store.count_for("192.0.2.1"), 2, "counts are rebuilt");
        assert_eq!(store.get(&a), Some(&record));

        // A snapshot taken before a later entry keeps the journal; one taken after empties it.
        write_atomic(&dir, &store.to_bytes()).unwrap();
        let c = new_webhook_id();
        store.insert_journaled(c.clone(), record.clone()).unwrap();
        store.snapshot_saved(2).unwrap();
        assert_eq!(store.journal_entries, 3);
        write_atomic(&dir, &store.to_bytes()).unwrap();
        store.snapshot_saved(3).unwrap();
        assert_eq!(fs::metadata(&journal).unwrap().len(), 0);
        assert_eq!(
            fs::metadata(&journal).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(store.remove(&c).is_some());
        assert_eq!(store.count_for("192.0.2.1"), 2);
        drop(store);
        let store = RegistrationStore::open(&dir).unwrap();
        assert_eq!(
            store.len(),
            3,
            "the snapshot holds c, removal was never saved"
        );
    }

    #[test]
    fn a_damaged_journal_line_is_a_configuration_error() {
        let (_tmp, dir) = temp_dir("bad-journal");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(JOURNAL_NAME), "not json\n{}\n").unwrap();
        let err = RegistrationStore::open(&dir).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("registrations.journal is damaged"), "{text}");
        assert!(text.contains("line 1"), "{text}");
        assert_eq!(
            crate::error::kind_of(&err),
            Some(crate::error::FailureKind::Usage),
            "exit 2: RestartPreventExitStatus in the unit"
        );
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let (_tmp, dir) = temp_dir("failed-write");
        fs::create_dir_all(dir.join(FILE_NAME)).unwrap();
        let err = write_atomic(&dir, b"{}").unwrap_err();
        assert!(format!("{err:#}").contains("registrations.json"), "{err:#}");
        assert!(!dir.join(format!("{FILE_NAME}.tmp")).exists());
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
