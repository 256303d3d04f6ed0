//! Which containers a run may touch.
//!
//! `project` scope means pullpilot's own compose project: inside a container, the project of
//! that container; on a host, the compose project of the working directory (or
//! `--project-directory`), named the way compose names it. No project found is an error, never
//! "the whole host".

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::Failure;
use crate::labels;
use crate::runtime::Runtime;
use crate::settings::{ScopeSetting, Settings};

/// The resolved scope of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// The compose project to manage; `None` means every container on the host.
    pub project: Option<String>,
    /// pullpilot's own container, when it runs in one.
    pub own_container: Option<String>,
}

impl Scope {
    /// `project:<name>` or `all`, as shown to people.
    pub fn label(&self) -> String {
        self.project
            .as_ref()
            .map_or_else(|| "all".to_string(), |p| format!("project:{p}"))
    }
}

/// Compose's default file names, in its order of preference.
const COMPOSE_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// Resolves the scope for this run.
pub fn resolve(
    settings: &Settings,
    docker: &dyn Runtime,
    env: &BTreeMap<String, String>,
) -> Result<Scope> {
    let own_container = own_container_id(docker);
    // Only in a container of the Docker it manages: pullpilot run in some other container
    // (a CI job, a dev container) cannot tell whether its file system outlives it.
    if own_container.is_some()
        && let Some(warning) = data_dir_warning_here(&settings.data_dir)
    {
        log::warn!("{warning}");
    }
    let project = match &settings.scope {
        ScopeSetting::All => None,
        ScopeSetting::Project(name) => Some(name.clone()),
        ScopeSetting::OwnProject => Some(if let Some(id) = &own_container {
            project_of_container(docker, id)?
        } else {
            let dir = match &settings.project_directory {
                Some(dir) => dir.clone(),
                None => std::env::current_dir().context("reading the working directory")?,
            };
            compose_project_name(&dir, env)?
        }),
    };
    Ok(Scope {
        project,
        own_container,
    })
}

fn project_of_container(docker: &dyn Runtime, id: &str) -> Result<String> {
    let facts = docker.inspect_container(id)?;
    facts
        .labels
        .get(labels::COMPOSE_PROJECT)
        .cloned()
        .ok_or_else(|| {
            Failure::usage(format!(
                "pullpilot runs in container {} which is not part of a compose project, so scope \
             `project` has nothing to manage; set PP_SCOPE=project:<name> or PP_SCOPE=all",
                facts.name
            ))
        })
}

/// pullpilot's own container ID when it runs inside a container: see [`find_own_container`].
fn own_container_id(docker: &dyn Runtime) -> Option<String> {
    if !Path::new("/.dockerenv").exists() && !Path::new("/run/.containerenv").exists() {
        return None;
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    find_own_container(docker, &mountinfo, hostname.trim())
}

/// pullpilot's own container, confirmed by asking Docker, found by (in this order):
/// - `/proc/self/mountinfo`: Docker bind-mounts `/etc/hostname` from
///   `…/containers/<id>/hostname`, whatever hostname the container was given. An ID there
///   that this Docker does not know means a container of another daemon (a CI job, a dev
///   container): not one of this Docker's, and nothing else is guessed;
/// - the hostname, when it is the container ID (Docker's default: its first 12 hex digits),
///   matching exactly one container. A custom hostname like `db` is never taken for an ID
///   prefix: it must be at least 12 hex digits;
/// - the `io.pullpilot.self` label, when exactly one container carries it.
fn find_own_container(docker: &dyn Runtime, mountinfo: &str, hostname: &str) -> Option<String> {
    if let Some(id) = container_id_from_mountinfo(mountinfo) {
        return docker.inspect_container(&id).ok().map(|facts| facts.id);
    }
    let all = docker.list_containers(None).ok()?;
    let only = |found: Vec<&String>| (found.len() == 1).then(|| found[0].clone());
    let hex = hostname.len() >= 12 && hostname.bytes().all(|b| b.is_ascii_hexdigit());
    if hex
        && let Some(id) = only(
            all.iter()
                .filter(|c| c.id.starts_with(hostname))
                .map(|c| &c.id)
                .collect(),
        )
    {
        return Some(id);
    }
    only(
        all.iter()
            .filter(|c| {
                c.labels
                    .get(labels::SELF)
                    .and_then(|v| crate::values::parse_bool(v))
                    == Some(true)
            })
            .map(|c| &c.id)
            .collect(),
    )
}

fn container_id_from_mountinfo(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let root = line.split_whitespace().nth(3)?;
        let (_, rest) = root.split_once("/containers/")?;
        let id = rest.split('/').next()?;
        (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
    })
}

/// Whether this process runs in a container: a runtime's marker file (`/.dockerenv`,
/// `/run/.containerenv`), a container cgroup (cgroup v1), or Docker's per-container
/// `hostname` file mounted (what [`find_own_container`] reads first).
pub fn in_container(marker: bool, cgroup: &str, mountinfo: &str) -> bool {
    marker
        || cgroup.lines().any(|l| {
            ["docker", "containerd", "kubepods", "libpod"]
                .iter()
                .any(|word| l.contains(word))
        })
        || mountinfo.lines().any(|l| {
            l.split(' ')
                .nth(3)
                .is_some_and(|root| root.contains("/containers/") && root.ends_with("/hostname"))
        })
}

/// Whether `path` lies on a mount other than `/`, from `/proc/self/mountinfo`: the longest
/// mount point above it decides. A path that does not exist yet is judged by its nearest
/// existing ancestor. `None` when the file lists no mount above it.
pub fn on_volume(path: &Path, mountinfo: &str) -> Option<bool> {
    mount_of(path, mountinfo).map(|(point, _)| point != Path::new("/"))
}

/// The mount point holding `path` and its file-system type, from `/proc/self/mountinfo`.
fn mount_of(path: &Path, mountinfo: &str) -> Option<(PathBuf, String)> {
    let mut existing = path.to_path_buf();
    let resolved = loop {
        if let Ok(real) = fs::canonicalize(&existing) {
            break real.join(path.strip_prefix(&existing).unwrap_or(Path::new("")));
        }
        if !existing.pop() {
            break path.to_path_buf();
        }
    };
    let resolved = normalized(&resolved);
    mountinfo
        .lines()
        .filter_map(|line| {
            let point = PathBuf::from(unescape(line.split(' ').nth(4)?));
            let fstype = line
                .split_once(" - ")
                .and_then(|(_, rest)| rest.split(' ').next())
                .unwrap_or_default();
            Some((point, fstype.to_string()))
        })
        .filter(|(point, _)| resolved.starts_with(point))
        .max_by_key(|(point, _)| point.components().count())
}

/// `path` without `.` and with `..` applied (after canonicalising what exists).
fn normalized(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if bytes[i] == b'\\'
            && let Some(digits) = octal
        {
            let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
            out.push(value as u8);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The warning for a data directory that is not on a volume inside a container: everything
/// kept there is lost when the container is recreated. `None` on a host, on a volume, or when
/// the mounts cannot be told.
pub fn data_dir_warning(data_dir: &Path, in_container: bool, mountinfo: &str) -> Option<String> {
    if !in_container {
        return None;
    }
    let (point, fstype) = mount_of(data_dir, mountinfo)?;
    let lost = if point == Path::new("/") {
        "is not a volume: pullpilot runs in a container, and everything it keeps there"
    } else if fstype == "tmpfs" {
        "is on a tmpfs (memory): everything pullpilot keeps there"
    } else {
        return None;
    };
    Some(format!(
        "PP_DATA_DIR ({}) {lost} (the soak clocks, blocked digests, pins, the journal of \
         updates in flight and the webhook identity) is lost when this container is recreated \
         or restarted. Mount a named volume on it (`volumes: [pullpilot-data:{}]`).",
        data_dir.display(),
        data_dir.display()
    ))
}

/// [`data_dir_warning`] for this process, from `/proc`.
fn data_dir_warning_here(data_dir: &Path) -> Option<String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let marker = Path::new("/.dockerenv").exists() || Path::new("/run/.containerenv").exists();
    let cgroup = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    data_dir_warning(
        data_dir,
        in_container(marker, &cgroup, &mountinfo),
        &mountinfo,
    )
}

/// The compose project name for `dir`, as `docker compose` would name it there:
/// `COMPOSE_PROJECT_NAME` (environment, then the project's `.env`), else the compose file's
/// top-level `name:`, else the normalised name of the directory holding the compose file.
pub fn compose_project_name(dir: &Path, env: &BTreeMap<String, String>) -> Result<String> {
    if let Some(name) = env.get("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()) {
        return validated(name, "COMPOSE_PROJECT_NAME");
    }
    let Some(file) = find_compose_file(dir, env) else {
        return Err(Failure::usage(format!(
            "no compose project found: neither {} nor any parent directory has a compose file \
             (compose.yaml, docker-compose.yml, …). Run pullpilot from your project's directory, \
             pass --project-directory DIR, or set PP_SCOPE=project:<name> or PP_SCOPE=all",
            dir.display()
        )));
    };
    let project_dir = file
        .parent()
        .map_or_else(|| dir.to_path_buf(), Path::to_path_buf);
    if let Some(name) = dotenv_value(&project_dir.join(".env"), "COMPOSE_PROJECT_NAME") {
        return validated(
            &name,
            &format!(
                "COMPOSE_PROJECT_NAME in {}",
                project_dir.join(".env").display()
            ),
        );
    }
    if let Some(name) = top_level_name(&file)? {
        return validated(&name, &format!("`name:` in {}", file.display()));
    }
    let base = project_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = normalise_project_name(&base);
    if name.is_empty() {
        return Err(Failure::usage(format!(
            "the directory name of {} gives no valid compose project name; set `name:` in {} or \
             PP_SCOPE=project:<name>",
            project_dir.display(),
            file.display()
        )));
    }
    Ok(name)
}

fn find_compose_file(dir: &Path, env: &BTreeMap<String, String>) -> Option<PathBuf> {
    if let Some(files) = env.get("COMPOSE_FILE").filter(|f| !f.is_empty()) {
        let separator = env
            .get("COMPOSE_PATH_SEPARATOR")
            .map_or(":", String::as_str);
        let first = files.split(separator).next().unwrap_or(files);
        let path = dir.join(first);
        return path.is_file().then_some(path);
    }
    dir.ancestors().find_map(|d| {
        COMPOSE_FILES
            .iter()
            .map(|f| d.join(f))
            .find(|p| p.is_file())
    })
}

fn top_level_name(file: &Path) -> Result<Option<String>> {
    let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| {
        Failure::usage(format!(
            "the compose file {} is not valid YAML ({e}); fix it, or set PP_SCOPE=project:<name>",
            file.display()
        ))
    })?;
    match doc.get("name") {
        None | Some(serde_yaml::Value::Null) => Ok(None),
        Some(serde_yaml::Value::String(name)) if name.contains('$') => {
            Err(Failure::usage(format!(
                "the project name in {} uses a variable ({name}); pullpilot does not interpolate it. \
             Set PP_SCOPE=project:<name> to the name `docker compose ls` shows",
                file.display()
            )))
        }
        Some(serde_yaml::Value::String(name)) => Ok(Some(name.clone())),
        Some(_) => Err(Failure::usage(format!(
            "`name:` in {} must be a string",
            file.display()
        ))),
    }
}

fn dotenv_value(path: &Path, key: &str) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|line| {
            let line = line.trim().strip_prefix("export ").unwrap_or(line.trim());
            let (k, v) = line.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        })
        .filter(|v| !v.is_empty())
}

fn validated(name: &str, source: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(name.to_string())
    } else {
        Err(Failure::usage(format!(
            "{source} = {name:?} is not a valid compose project name (lowercase letters, digits, \
             `-` and `_`, starting with a letter or digit)"
        )))
    }
}

/// Compose's rule: lowercase, keep `[a-z0-9_-]`, drop leading `_` and `-`.
pub fn normalise_project_name(name: &str) -> String {
    let kept: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory (0700), deleted when the returned guard drops.
    fn temp(name: &str) -> (tempfile::TempDir, PathBuf) {
        let prefix = format!("pp-scope-{name}-");
        let guard = tempfile::Builder::new().prefix(&prefix).tempdir().unwrap();
        let dir = guard.path().to_path_buf();
        (guard, dir)
    }

    #[test]
    fn normalises_directory_names_like_compose() {
        assert_eq!(normalise_project_name("My App.v2"), "myappv2");
        assert_eq!(normalise_project_name("__x-Y"), "x-y");
        assert_eq!(normalise_project_name("ünï"), "n");
    }

    #[test]
    fn name_precedence_env_then_dotenv_then_name_then_directory() {
        let (_tmp_root, root) = temp("precedence");
        let dir = root.join("Shop_Front");
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("compose.yaml"), "services: {}\n").unwrap();
        let none = BTreeMap::new();
        assert_eq!(compose_project_name(&dir, &none).unwrap(), "shop_front");
        assert_eq!(
            compose_project_name(&dir.join("sub"), &none).unwrap(),
            "shop_front",
            "parents are searched"
        );
        fs::write(dir.join("compose.yaml"), "name: storefront\nservices: {}\n").unwrap();
        assert_eq!(compose_project_name(&dir, &none).unwrap(), "storefront");
        fs::write(dir.join(".env"), "# x\nCOMPOSE_PROJECT_NAME=fromdotenv\n").unwrap();
        assert_eq!(compose_project_name(&dir, &none).unwrap(), "fromdotenv");
        let env: BTreeMap<String, String> =
            [("COMPOSE_PROJECT_NAME".to_string(), "fromenv".to_string())].into();
        assert_eq!(compose_project_name(&dir, &env).unwrap(), "fromenv");
    }

    #[test]
    fn no_compose_file_is_a_usage_error() {
        let (_tmp, dir) = temp("none");
        let err = compose_project_name(&dir, &BTreeMap::new()).unwrap_err();
        assert_eq!(
            crate::error::kind_of(&err),
            Some(crate::error::FailureKind::Usage)
        );
        assert!(
            err.to_string().contains("no compose project found"),
            "{err}"
        );
    }

    #[test]
    fn broken_yaml_and_interpolated_names_are_clear_errors() {
        let (_tmp, dir) = temp("broken");
        fs::write(dir.join("docker-compose.yml"), "name: [unclosed\n").unwrap();
        let err = compose_project_name(&dir, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid YAML"), "{err}");
        fs::write(dir.join("docker-compose.yml"), "name: ${STACK}\n").unwrap();
        let err = compose_project_name(&dir, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("variable"), "{err}");
    }

    #[test]
    fn finds_own_container_id_in_mountinfo() {
        let id = "a".repeat(64);
        let line = format!(
            "1234 99 254:1 /var/lib/docker/containers/{id}/hostname /etc/hostname rw - ext4 /dev/vda rw"
        );
        assert_eq!(
            container_id_from_mountinfo(&format!("junk\n{line}\n")),
            Some(id)
        );
        assert_eq!(
            container_id_from_mountinfo("1 2 3 / / rw - ext4 x rw"),
            None
        );
    }

    const MOUNTINFO: &str = "\
22 1 0:21 / / rw,relatime - overlay overlay rw
23 22 254:1 /var/lib/docker/volumes/pp/_data /data rw - ext4 /dev/vda1 rw
24 22 254:1 /var/lib/docker/containers/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/hostname /etc/hostname rw - ext4 /dev/vda1 rw
";

    #[test]
    fn a_data_dir_off_a_volume_in_a_container_is_warned_about() {
        let gone = Path::new("/pp-nonexistent-xyz/state");
        let warning = data_dir_warning(gone, true, MOUNTINFO).unwrap();
        assert!(
            warning.starts_with("PP_DATA_DIR (/pp-nonexistent-xyz/state) is not a volume"),
            "{warning}"
        );
        assert!(warning.contains("soak clocks"), "{warning}");
        assert_eq!(data_dir_warning(Path::new("/data"), true, MOUNTINFO), None);
        let memory = format!("{MOUNTINFO}25 22 0:30 / /run/pp rw - tmpfs tmpfs rw\n");
        let warning = data_dir_warning(Path::new("/run/pp/state"), true, &memory).unwrap();
        assert!(
            warning.starts_with("PP_DATA_DIR (/run/pp/state) is on a tmpfs (memory)"),
            "{warning}"
        );
        assert_eq!(data_dir_warning(gone, false, MOUNTINFO), None, "a host");
        assert_eq!(data_dir_warning(gone, true, ""), None, "mounts unknown");
        assert!(in_container(false, "", MOUNTINFO));
    }

    fn fake_with(labels: &[(&str, &str)]) -> (crate::runtime::fake::Fake, String, String) {
        let fake = crate::runtime::fake::Fake::new();
        let other = fake.container("shop-web-1", "sha256:1", "web:1", &[], true);
        let me = fake.container(
            "shop-pullpilot-1",
            "sha256:2",
            "pullpilot:local",
            labels,
            true,
        );
        (fake, me, other)
    }

    #[test]
    fn own_container_by_mounts_then_hostname_then_label() {
        let (fake, me, _) = fake_with(&[]);
        let mounts = format!("1 2 3 /var/lib/docker/containers/{me}/hostname /etc/hostname rw");
        assert_eq!(
            find_own_container(&fake, &mounts, "custom"),
            Some(me.clone())
        );
        // No mount: the hostname, when it is an ID prefix of one container only (Docker's
        // default is the first 12 digits; the fake's IDs differ only in the last one).
        assert_eq!(find_own_container(&fake, "", &me), Some(me.clone()));
        assert_eq!(find_own_container(&fake, "", &me[..12]), None, "two match");
        // A short hostname is never read as an ID prefix, even one that is a prefix.
        assert_eq!(find_own_container(&fake, "", &me[..11]), None);
        assert_eq!(find_own_container(&fake, "", "db"), None);

        let (fake, me, _) = fake_with(&[("io.pullpilot.self", "true")]);
        assert_eq!(find_own_container(&fake, "", "db"), Some(me.clone()));
        // In a container of another daemon: not this Docker's, whatever the labels say.
        let elsewhere = format!(
            "1 2 3 /var/lib/docker/containers/{}/hostname /etc/hostname rw",
            "e".repeat(64)
        );
        assert_eq!(find_own_container(&fake, &elsewhere, &me), None);
        // Two containers claiming to be pullpilot: neither is taken.
        fake.container(
            "b-pp-1",
            "sha256:3",
            "pullpilot:local",
            &[("io.pullpilot.self", "1")],
            true,
        );
        assert_eq!(find_own_container(&fake, "", "db"), None);
    }
}
