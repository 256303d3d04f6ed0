//! Loading and saving `state.json` crash-safely, and the lock that makes one mutating run at a
//! time.
//!
//! Save = write `state.json.tmp` (0600), fsync, keep the previous file as `state.json.bak`,
//! rename into place, fsync the directory. Load never silently starts over: a corrupt file is
//! reported loudly, the backup is used, and (for mutating runs) the bad file is moved aside so
//! nothing is lost. Read-only commands never write or move anything.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

use super::schema::{SCHEMA_VERSION, State};
use crate::error::{Failure, FailureKind};

pub const STATE_FILE: &str = "state.json";
pub const BACKUP_FILE: &str = "state.json.bak";
pub const LOCK_FILE: &str = "lock";

/// A loaded state and where it came from.
#[derive(Debug)]
pub struct Loaded {
    pub state: State,
    /// True when the file did not exist yet (first run).
    pub fresh: bool,
}

/// Loads state for a read-only command: never creates, moves or writes a file.
pub fn load_read_only(data_dir: &Path) -> Result<Loaded> {
    load_inner(data_dir, false)
}

/// Loads state for a mutating command; a corrupt file is moved aside (never deleted).
pub fn load(data_dir: &Path) -> Result<Loaded> {
    load_inner(data_dir, true)
}

fn load_inner(data_dir: &Path, may_repair: bool) -> Result<Loaded> {
    let is_dir = fs::metadata(data_dir).map(|m| m.is_dir());
    if matches!(is_dir, Ok(false))
        || matches!(&is_dir, Err(e) if e.kind() == std::io::ErrorKind::NotADirectory)
    {
        return Err(crate::files::not_a_directory_error(
            data_dir,
            "the data directory",
            "PP_DATA_DIR",
        ));
    }
    let path = data_dir.join(STATE_FILE);
    let backup = data_dir.join(BACKUP_FILE);
    match read_state(&path)? {
        Read::Missing if !backup.exists() => Ok(Loaded {
            state: State::default(),
            fresh: true,
        }),
        Read::Ok(state) => Ok(Loaded {
            state,
            fresh: false,
        }),
        Read::Missing => {
            log::error!(
                "The state file {} is missing but its backup exists; using the backup {}.",
                path.display(),
                backup.display()
            );
            from_backup(&path, "", &backup)
        }
        Read::Corrupt(problem) => {
            // Decide before moving anything: without a usable backup, going on would forget
            // pins, blocked digests and interrupted updates, so the run stops instead.
            let loaded = from_backup(&path, &problem, &backup)?;
            log::error!(
                "The state file {} is damaged ({problem}); using the backup {} instead.",
                path.display(),
                backup.display()
            );
            if may_repair {
                let aside = aside_name(&path);
                fs::rename(&path, &aside).with_context(|| {
                    format!("moving the damaged state file {} aside", path.display())
                })?;
                log::error!(
                    "The damaged state file was kept as {} for inspection.",
                    aside.display()
                );
            }
            Ok(loaded)
        }
    }
}

/// The backup, for a state file that is damaged (`problem`) or missing (`problem` empty).
fn from_backup(path: &Path, problem: &str, backup: &Path) -> Result<Loaded> {
    match read_state(backup)? {
        Read::Ok(state) => Ok(Loaded {
            state,
            fresh: false,
        }),
        Read::Missing if problem.is_empty() => {
            log::error!(
                "There is no usable backup either; starting with empty state (soak clocks, pins \
                 and blocked digests are forgotten)."
            );
            Ok(Loaded {
                state: State::default(),
                fresh: true,
            })
        }
        Read::Missing => bail!(
            "the state file {} is damaged ({problem}) and there is no backup {} to use instead; \
             nothing was changed. Restore it from your backups, or move it aside (for example \
             `mv {0} {0}.broken`) to start with empty state, which forgets soak clocks, pins, \
             blocked digests and interrupted updates",
            path.display(),
            backup.display()
        ),
        Read::Corrupt(backup_problem) => bail!(
            "both the state file {} ({}) and its backup {} ({backup_problem}) are damaged; \
             nothing was changed. Restore one from your backups, or move both out of the data \
             directory to start with empty state",
            path.display(),
            if problem.is_empty() {
                "missing"
            } else {
                problem
            },
            backup.display()
        ),
    }
}

enum Read {
    Missing,
    Ok(State),
    Corrupt(String),
}

fn read_state(path: &Path) -> Result<Read> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Read::Missing),
        Err(e) => {
            return Err(e).with_context(|| format!("reading the state file {}", path.display()));
        }
    };
    let version = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64));
    if let Some(version) = version
        && version > u64::from(SCHEMA_VERSION)
    {
        bail!(
            "the state file {} was written by a newer pullpilot (schema {version}, this one \
             understands {SCHEMA_VERSION}); upgrade pullpilot, or move the file aside to start fresh",
            path.display()
        );
    }
    match serde_json::from_slice::<State>(&bytes) {
        Ok(state) => Ok(Read::Ok(state)),
        Err(e) => Ok(Read::Corrupt(e.to_string())),
    }
}

fn aside_name(path: &Path) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(':', "");
    path.with_file_name(format!("{STATE_FILE}.corrupt-{stamp}"))
}

/// Creates the data directory (0700) if needed; an existing one is checked, never changed
/// (see [`crate::files::ensure_private_dir`]).
pub fn ensure_data_dir(data_dir: &Path) -> Result<()> {
    crate::files::ensure_private_dir(data_dir, "the data directory", "PP_DATA_DIR")
}

/// What to say when the data directory cannot be written: where it is and what to do.
fn not_writable(data_dir: &Path) -> String {
    format!(
        "could not write to the data directory {} (PP_DATA_DIR): free space on its filesystem or \
         make it writable, then run again",
        data_dir.display()
    )
}

/// A mutating run's hold on the data directory: it holds the lock for as long as it lives, and
/// it is the only way to save, so state is never written without the lock.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    _lock: Option<Lock>,
}

impl Store {
    /// Takes the run lock (waiting for it when `wait`) and loads the state; a corrupt file is
    /// moved aside (never deleted).
    pub fn open(data_dir: &Path, wait: bool) -> Result<(Store, State)> {
        let lock = lock(data_dir, wait)?;
        let state = load(data_dir)?.state;
        Ok((
            Store {
                dir: data_dir.to_path_buf(),
                _lock: Some(lock),
            },
            state,
        ))
    }

    /// A store for a test that holds no lock (so the code under test may take it).
    #[cfg(test)]
    pub(crate) fn unlocked(data_dir: &Path) -> Store {
        Store {
            dir: data_dir.to_path_buf(),
            _lock: None,
        }
    }

    /// Saves crash-safely (see `save`).
    pub fn save(&self, state: &State) -> Result<()> {
        save(&self.dir, state)
    }
}

/// Saves atomically: tmp + fsync, previous copy kept as backup, rename, directory fsync. On
/// failure the previous `state.json` is left as it was (a new one is only ever renamed in).
/// Runs save through a [`Store`], which holds the lock.
pub(crate) fn save(data_dir: &Path, state: &State) -> Result<()> {
    ensure_data_dir(data_dir)?;
    save_inner(data_dir, state).with_context(|| not_writable(data_dir))
}

fn save_inner(data_dir: &Path, state: &State) -> Result<()> {
    let path = data_dir.join(STATE_FILE);
    let tmp = data_dir.join(format!("{STATE_FILE}.tmp"));
    let mut text = serde_json::to_vec_pretty(state).context("serialising the state")?;
    text.push(b'\n');
    write_synced(&tmp, &text)
        .with_context(|| format!("writing the state file {}", tmp.display()))?;
    if path.exists() {
        let backup_tmp = data_dir.join(format!("{BACKUP_FILE}.tmp"));
        let previous = fs::read(&path)
            .with_context(|| format!("reading the state file {}", path.display()))?;
        write_synced(&backup_tmp, &previous)
            .with_context(|| format!("writing the state backup {}", backup_tmp.display()))?;
        fs::rename(&backup_tmp, data_dir.join(BACKUP_FILE))
            .with_context(|| format!("replacing the state backup in {}", data_dir.display()))?;
    }
    fs::rename(&tmp, &path)
        .with_context(|| format!("replacing the state file {}", path.display()))?;
    File::open(data_dir)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("syncing the data directory {}", data_dir.display()))?;
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The exclusive lock held by a mutating run for its whole duration.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Takes the run lock; fails at once with the lock-held error unless `wait`.
pub fn lock(data_dir: &Path, wait: bool) -> Result<Lock> {
    ensure_data_dir(data_dir)?;
    let path = data_dir.join(LOCK_FILE);
    let file = crate::files::open_lock_file(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))
        .with_context(|| format!("{}; nothing was changed", not_writable(data_dir)))?;
    if wait {
        fs2::FileExt::lock_exclusive(&file)
            .with_context(|| format!("waiting for the lock {}", path.display()))?;
    } else if fs2::FileExt::try_lock_exclusive(&file).is_err() {
        return Err(Failure::new(
            FailureKind::LockHeld,
            format!(
                "another pullpilot run holds the lock {}; this run changed nothing. Wait for it \
                 to finish, or pass --wait to queue behind it",
                path.display()
            ),
        )
        .into());
    }
    Ok(Lock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Digest;
    use crate::state::schema::{Blocked, State};

    /// A path that does not exist yet, inside a fresh directory that is deleted when the
    /// returned guard drops.
    fn temp_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
        let prefix = format!("pp-state-{name}-");
        let guard = tempfile::Builder::new().prefix(&prefix).tempdir().unwrap();
        let dir = guard.path().join(name);
        (guard, dir)
    }

    fn sample(n: usize) -> State {
        let mut state = State::default();
        let digest = Digest::parse(&format!("sha256:{}", "c".repeat(64))).unwrap();
        let blocked = Blocked {
            at: SystemTime::UNIX_EPOCH,
            reason: format!("r{n}"),
            container: "x".into(),
        };
        state
            .blocked
            .entry("docker.io/library/nginx".into())
            .or_default()
            .insert(digest, blocked);
        state
    }

    #[test]
    fn missing_is_fresh_and_save_round_trips_with_modes_and_backup() {
        let (_tmp, dir) = temp_dir("roundtrip");
        let dir = dir.join("data");
        assert!(load_read_only(&dir).unwrap().fresh);
        assert!(
            !dir.exists(),
            "a read-only load must not create the data directory"
        );
        save(&dir, &sample(1)).unwrap();
        save(&dir, &sample(2)).unwrap();
        assert_eq!(load(&dir).unwrap().state, sample(2));
        let backup: State =
            serde_json::from_slice(&fs::read(dir.join(BACKUP_FILE)).unwrap()).unwrap();
        assert_eq!(backup, sample(1));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(STATE_FILE)), 0o600);
        assert_eq!(mode(&dir.join(BACKUP_FILE)), 0o600);
    }

    #[test]
    fn corrupt_file_uses_backup_and_is_moved_aside_only_when_mutating() {
        let (_tmp, dir) = temp_dir("corrupt");
        save(&dir, &sample(1)).unwrap();
        save(&dir, &sample(2)).unwrap();
        fs::write(dir.join(STATE_FILE), b"{\"version\": 1, \"containers\": {").unwrap();
        assert_eq!(load_read_only(&dir).unwrap().state, sample(1));
        assert!(
            dir.join(STATE_FILE).exists(),
            "read-only load must leave the file alone"
        );
        assert_eq!(load(&dir).unwrap().state, sample(1));
        assert!(!dir.join(STATE_FILE).exists());
        let aside = fs::read_dir(&dir).unwrap().filter_map(Result::ok).any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.json.corrupt-")
        });
        assert!(aside, "the damaged file must be kept");
    }

    #[test]
    fn corrupt_file_without_backup_is_refused_and_kept() {
        let (_tmp, dir) = temp_dir("corrupt-no-backup");
        save(&dir, &sample(1)).unwrap();
        let damaged = b"{\"version\": 1, \"conta".to_vec();
        fs::write(dir.join(STATE_FILE), &damaged).unwrap();
        for mutating in [false, true] {
            let err = load_inner(&dir, mutating).unwrap_err().to_string();
            assert!(
                err.contains("state.json is damaged")
                    && err.contains("no backup")
                    && err.contains("nothing was changed")
                    && err.contains("move it aside"),
                "{err}"
            );
            assert_eq!(fs::read(dir.join(STATE_FILE)).unwrap(), damaged);
        }
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "nothing moved or added"
        );
        fs::write(dir.join(BACKUP_FILE), b"garbage").unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(err.contains("both the state file"), "{err}");
        assert_eq!(fs::read(dir.join(STATE_FILE)).unwrap(), damaged);
    }

    #[test]
    fn issue_12_a_data_dir_that_is_a_file_is_a_usage_error_not_free_space() {
        let (_tmp, dir) = temp_dir("not-a-dir");
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("file");
        fs::write(&file, b"x").unwrap();
        for data in [file.clone(), file.join("data")] {
            for err in [
                save(&data, &sample(1)).unwrap_err(),
                lock(&data, false).unwrap_err(),
                load(&data).unwrap_err(),
                load_read_only(&data).unwrap_err(),
            ] {
                let text = format!("{err:#}");
                assert!(
                    text.contains(&format!("data directory {}", data.display()))
                        && text.contains("PP_DATA_DIR")
                        && text.contains("is not a directory")
                        && !text.contains("free space"),
                    "{text}"
                );
                assert_eq!(crate::error::kind_of(&err), Some(FailureKind::Usage));
            }
        }
        assert_eq!(fs::read(&file).unwrap(), b"x");
    }

    #[test]
    fn issue_12_an_existing_shared_dir_is_refused_and_left_alone() {
        let (_tmp, dir) = temp_dir("shared");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
        let err = lock(&dir, false).unwrap_err();
        assert!(format!("{err:#}").contains("chmod go-w"), "{err:#}");
        assert_eq!(crate::error::kind_of(&err), Some(FailureKind::Usage));
        save(&dir, &sample(1)).unwrap_err();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o1777, "the directory's permissions must not change");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "nothing written");
    }

    #[test]
    fn newer_schema_is_refused_not_overwritten() {
        let (_tmp, dir) = temp_dir("newer");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(STATE_FILE), b"{\"version\": 9}").unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(err.contains("newer pullpilot"), "{err}");
        assert!(dir.join(STATE_FILE).exists());
    }

    #[test]
    fn second_lock_fails_with_lock_held() {
        let (_tmp, dir) = temp_dir("lock");
        let held = lock(&dir, false).unwrap();
        let err = lock(&dir, false).unwrap_err();
        assert_eq!(crate::error::kind_of(&err), Some(FailureKind::LockHeld));
        drop(held);
        lock(&dir, false).unwrap();
    }
}
