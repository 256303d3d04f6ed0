//! Files pullpilot writes: small secret files (the webhook identity and registration) written
//! whole or not at all and readable by their owner only; the private directories that hold
//! them; and atomic replacement of a user's file (compose file, `.env`) that keeps its owner
//! and mode.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::error::Failure;

/// Writes `bytes` to `path` with mode 0600 through a synced temporary file and a rename, so a
/// crash leaves either the old content or the new one, and a failed write leaves no temporary
/// file behind.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Opens (creating it 0600 if needed, never truncating) a file used only for its `flock`.
pub fn open_lock_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

/// Makes sure `dir` is a directory fit for files holding secrets. A missing one is created
/// (with its missing parents) mode 0700. An existing one is never changed: it is refused
/// (a usage error, exit 2) when it is not a directory, when group or others may write to it,
/// or when it belongs to another user than the one running pullpilot or root, because then
/// someone else could replace or redirect the files in it. `what` names it ("the data
/// directory") and `setting` says where it comes from (`PP_DATA_DIR`).
pub fn ensure_private_dir(dir: &Path, what: &str, setting: &str) -> anyhow::Result<()> {
    let shown = dir.display();
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
            {
                Ok(()) => Ok(()),
                Err(e) if is_not_a_directory(&e) => Err(not_a_directory_error(dir, what, setting)),
                Err(e) => Err(e).with_context(|| {
                    format!("creating {what} {shown} (set {setting} to change it)")
                }),
            };
        }
        Err(e) if is_not_a_directory(&e) => return Err(not_a_directory_error(dir, what, setting)),
        Err(e) => return Err(e).with_context(|| format!("reading {what} {shown} ({setting})")),
    };
    if !meta.is_dir() {
        return Err(not_a_directory_error(dir, what, setting));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Failure::usage(format!(
            "{what} {shown} ({setting}) can be written by {} (mode {mode:04o}), so the secrets \
             and state kept there are not safe; pullpilot never changes the permissions of a \
             directory it did not create. Point {setting} at a directory of its own (a missing \
             one is created with mode 0700), or, if nothing else needs to write there, restrict \
             it: chmod go-w {shown}",
            if mode & 0o020 != 0 && mode & 0o002 != 0 {
                "group and others"
            } else if mode & 0o002 != 0 {
                "others"
            } else {
                "its group"
            }
        )));
    }
    if let Some(me) = effective_uid()
        && meta.uid() != me
        && meta.uid() != 0
    {
        return Err(Failure::usage(format!(
            "{what} {shown} ({setting}) belongs to user id {}, not to the user running pullpilot \
             (id {me}) or root, so that user could change the secrets and state kept there. Point \
             {setting} at a directory of your own (a missing one is created with mode 0700), or \
             give this one to the right user: chown {me} {shown}",
            meta.uid()
        )));
    }
    Ok(())
}

/// The user id the process runs as: the owner of `/proc/self` (Linux), or `None` without
/// `/proc` (then the owner check is skipped).
fn effective_uid() -> Option<u32> {
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Whether `e` says that a path component is a file (or a file took the directory's place).
fn is_not_a_directory(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotADirectory | std::io::ErrorKind::AlreadyExists
    )
}

/// The usage error for a path that should be a directory but is (or runs through) a file.
pub fn not_a_directory_error(dir: &Path, what: &str, setting: &str) -> anyhow::Error {
    Failure::usage(format!(
        "{what} {} ({setting}) is not a directory (it, or a path above it, is a file); point \
         {setting} at a directory, or move the file out of the way",
        dir.display()
    ))
}

/// Where [`replace_file`] may be made to fail in tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReplaceStep {
    Write,
    Rename,
}

/// Replaces the content of the existing file `path` atomically: a temporary file in the same
/// directory gets the bytes, the original's owner and group (`chown`) and permission bits,
/// and an fsync; then it is renamed over the original and the directory is fsynced. Killed at
/// any moment, this leaves the old file or the new one, never a truncated one; on an error
/// the temporary file is removed and the original is untouched. A symbolic link is followed:
/// its target is replaced and the link is kept. (Hard links to the file keep the old content,
/// and extended attributes and ACLs are not copied.)
pub fn replace_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    replace_file_failing_at(path, bytes, None)
}

fn replace_file_failing_at(
    path: &Path,
    bytes: &[u8],
    fail: Option<ReplaceStep>,
) -> anyhow::Result<()> {
    let target = fs::canonicalize(path).with_context(|| format!("reading {}", path.display()))?;
    let meta = fs::metadata(&target).with_context(|| format!("reading {}", target.display()))?;
    let dir = target.parent().unwrap_or(Path::new("/"));
    let tmp = temp_path(&target);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| {
            format!(
                "creating a temporary file in {} to replace {} atomically (the directory must \
                 be writable)",
                dir.display(),
                target.display()
            )
        })?;
    let written = (|| -> anyhow::Result<()> {
        let injected = |step| {
            if fail == Some(step) {
                Err(std::io::Error::other("injected failure"))
            } else {
                Ok(())
            }
        };
        injected(ReplaceStep::Write)
            .and_then(|()| file.write_all(bytes))
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid())).with_context(|| {
            format!(
                "giving the new {} its owner back (uid {}, gid {}); run as that user or as root",
                target.display(),
                meta.uid(),
                meta.gid()
            )
        })?;
        // After the chown, which may clear set-id bits.
        file.set_permissions(fs::Permissions::from_mode(
            meta.permissions().mode() & 0o7777,
        ))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
        injected(ReplaceStep::Rename)
            .and_then(|()| fs::rename(&tmp, &target))
            .with_context(|| format!("replacing {}", target.display()))
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e.context(format!("{} was left as it was", target.display())));
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing the directory {}", dir.display()))
}

/// `.NAME.pullpilot-PID.tmp` beside `path`: hidden, and unique per process.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.pullpilot-{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory (0700), deleted when the returned guard drops.
    fn temp_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
        let prefix = format!("pp-files-{name}-");
        let guard = tempfile::Builder::new().prefix(&prefix).tempdir().unwrap();
        let dir = guard.path().to_path_buf();
        (guard, dir)
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn writes_whole_files_with_mode_0600() {
        let (_tmp, dir) = temp_dir("private");
        let path = dir.join("secret");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(mode(&path), 0o600);
        assert!(!dir.join("secret.tmp").exists());
    }

    #[test]
    fn replace_file_keeps_mode_and_owner_and_leaves_no_temp_file() {
        let (_tmp, dir) = temp_dir("replace");
        let path = dir.join("compose.yaml");
        fs::write(&path, b"image: nginx:1\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let before = fs::metadata(&path).unwrap();
        replace_file(&path, b"image: nginx:1@sha256:aa\n").unwrap();
        let after = fs::metadata(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"image: nginx:1@sha256:aa\n");
        assert_eq!(mode(&path), 0o640);
        assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
        assert_ne!(after.ino(), before.ino(), "a new file was renamed in");
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn replace_file_keeps_a_group_other_than_the_users_own() {
        // Root can give the file any group; then the replacement must get it back.
        let (_tmp, dir) = temp_dir("replace-group");
        let path = dir.join(".env");
        fs::write(&path, b"TAG=1\n").unwrap();
        if std::os::unix::fs::chown(&path, Some(65534), Some(65534)).is_err() {
            return; // not root: cannot set up another owner
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o604)).unwrap();
        replace_file(&path, b"TAG=2\n").unwrap();
        let after = fs::metadata(&path).unwrap();
        assert_eq!(
            (after.uid(), after.gid(), mode(&path)),
            (65534, 65534, 0o604)
        );
    }

    #[test]
    fn replace_file_failures_leave_the_original_and_no_temp_file() {
        let (_tmp, dir) = temp_dir("replace-fail");
        let path = dir.join("compose.yaml");
        fs::write(&path, b"original\n").unwrap();
        for step in [ReplaceStep::Write, ReplaceStep::Rename] {
            let err = replace_file_failing_at(&path, b"new\n", Some(step)).unwrap_err();
            assert!(format!("{err:#}").contains("was left as it was"), "{err:#}");
            assert_eq!(fs::read(&path).unwrap(), b"original\n", "{step:?}");
            assert_eq!(
                fs::read_dir(&dir).unwrap().count(),
                1,
                "{step:?}: temp file left"
            );
        }
    }

    #[test]
    fn replace_file_through_a_symlink_replaces_the_target_and_keeps_the_link() {
        let (_tmp, dir) = temp_dir("replace-link");
        let real = dir.join("real.yaml");
        let link = dir.join("compose.yaml");
        fs::write(&real, b"old\n").unwrap();
        std::os::unix::fs::symlink("real.yaml", &link).unwrap();
        replace_file(&link, b"new\n").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&real).unwrap(), b"new\n");
    }

    #[test]
    fn ensure_private_dir_creates_0700_and_never_changes_an_existing_dir() {
        let (_tmp, dir) = temp_dir("ensure");
        let fresh = dir.join("a/b");
        ensure_private_dir(&fresh, "the data directory", "PP_DATA_DIR").unwrap();
        assert_eq!(mode(&fresh), 0o700);
        // Readable by others is fine (the files inside are 0600) and is left as it is.
        let open = dir.join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&open, "the data directory", "PP_DATA_DIR").unwrap();
        assert_eq!(mode(&open), 0o755);
    }

    #[test]
    fn issue_12_a_writable_shared_dir_is_refused_not_chmodded() {
        let (_tmp, dir) = temp_dir("shared");
        let shared = dir.join("tmp");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&shared, &link).unwrap();
        for (path, group) in [(&shared, 0o1777), (&link, 0o1777)] {
            let err = ensure_private_dir(path, "the data directory", "PP_DATA_DIR").unwrap_err();
            let text = format!("{err:#}");
            assert!(
                text.contains("can be written by group and others (mode 1777)")
                    && text.contains("chmod go-w")
                    && text.contains("PP_DATA_DIR"),
                "{text}"
            );
            assert_eq!(
                crate::error::kind_of(&err),
                Some(crate::error::FailureKind::Usage)
            );
            assert_eq!(mode(&shared), group, "the permissions must not change");
        }
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o770)).unwrap();
        let text = format!(
            "{:#}",
            ensure_private_dir(&shared, "the data directory", "PP_DATA_DIR").unwrap_err()
        );
        assert!(text.contains("written by its group (mode 0770)"), "{text}");
    }

    #[test]
    fn issue_12_a_file_is_not_a_directory() {
        let (_tmp, dir) = temp_dir("notdir");
        let file = dir.join("file");
        fs::write(&file, b"x").unwrap();
        for path in [file.clone(), file.join("data")] {
            let err = ensure_private_dir(&path, "the data directory", "PP_DATA_DIR").unwrap_err();
            let text = format!("{err:#}");
            assert!(
                text.contains("is not a directory")
                    && !text.contains("free space")
                    && !text.contains("reading"),
                "{text}"
            );
            assert_eq!(
                crate::error::kind_of(&err),
                Some(crate::error::FailureKind::Usage)
            );
        }
    }

    #[test]
    fn a_dir_of_another_user_is_refused() {
        let (_tmp, dir) = temp_dir("owner");
        let theirs = dir.join("theirs");
        fs::create_dir(&theirs).unwrap();
        fs::set_permissions(&theirs, fs::Permissions::from_mode(0o700)).unwrap();
        if std::os::unix::fs::chown(&theirs, Some(65534), None).is_err() {
            return; // not root: cannot set up another owner
        }
        let text = format!(
            "{:#}",
            ensure_private_dir(&theirs, "the data directory", "PP_DATA_DIR").unwrap_err()
        );
        assert!(text.contains("belongs to user id 65534"), "{text}");
    }
}
