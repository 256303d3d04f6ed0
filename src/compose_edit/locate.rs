//! Where a compose service's image is written ([`locate`]), and the atomic edits of that file
//! for pins and version moves ([`retag_file`], [`write_in_place`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{EditError, ImageValue, find_image, map_dotenv_var, map_image_line, retag_value};
use crate::compose::ProjectFiles;
use crate::files;
use crate::labels;

/// The file that sets a service's image, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub spot: Spot,
    /// The value written there now (the image, or the variable's value).
    pub value: String,
}

/// How the image is set in [`Location::file`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spot {
    /// The compose file's `image:` line (its index when located).
    Line(usize),
    /// A variable line in an env file (`.env`).
    Variable(String),
}

/// Finds where the image of the compose service these `labels` describe is set. With
/// `single`, an image set in more than one compose file is refused (a version move must not
/// guess which one wins); otherwise the last file that sets it wins, as in compose's merge.
/// Errors are sentences saying what to do.
pub fn locate(labels: &BTreeMap<String, String>, single: bool) -> Result<Location, String> {
    let (Some(service), Some(files)) = (
        labels.get(labels::COMPOSE_SERVICE),
        labels.get(labels::COMPOSE_CONFIG_FILES),
    ) else {
        return Err("it is not part of a compose project, so there is no file to edit".into());
    };
    let list: Vec<&str> = files
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    let mut found = Vec::new();
    for file in &list {
        let path = PathBuf::from(file);
        let text = fs::read_to_string(&path)
            .map_err(|e| format!("the compose file {} cannot be read ({e})", path.display()))?;
        match find_image(&text, service) {
            Ok(value) => found.push((path, value)),
            Err(EditError::FlowStyle(_) | EditError::NoServices) if list.len() > 1 => {}
            Err(EditError::NoService(_) | EditError::NoImage(_)) => {}
            Err(e) => return Err(format!("cannot edit {}: {e}", path.display())),
        }
    }
    if single && found.len() > 1 {
        let names: Vec<String> = found.iter().map(|(p, _)| p.display().to_string()).collect();
        return Err(format!(
            "the image of service {service} is set in several compose files ({}); keep it in one \
             or edit it by hand",
            names.join(", ")
        ));
    }
    let Some((path, value)) = found.pop() else {
        return Err(format!(
            "no compose file sets an `image:` for service {service} ({files}); it may come from \
             `extends` or an include, which pullpilot does not edit"
        ));
    };
    match value {
        ImageValue::Line { index, value } => Ok(Location {
            file: path,
            spot: Spot::Line(index),
            value,
        }),
        ImageValue::Variable(var) => {
            let env_file = env_file_setting(labels, &path, &var);
            let text = fs::read_to_string(&env_file).unwrap_or_default();
            let value = dotenv_value(&text, &var).ok_or_else(|| {
                format!(
                    "cannot edit {}: {}",
                    env_file.display(),
                    EditError::VarNotInDotenv(var.clone())
                )
            })?;
            Ok(Location {
                file: env_file,
                spot: Spot::Variable(var),
                value,
            })
        }
    }
}

/// The env file that sets `var`: the last of the project's `--env-file`s that does, else the
/// project directory's `.env`.
fn env_file_setting(labels: &BTreeMap<String, String>, compose_file: &Path, var: &str) -> PathBuf {
    let project = ProjectFiles::parse(labels).ok();
    if let Some(p) = &project
        && !p.env_files.is_empty()
    {
        for f in p.env_files.iter().rev() {
            let text = fs::read_to_string(f).unwrap_or_default();
            if dotenv_value(&text, var).is_some() {
                return f.clone();
            }
        }
        return p.env_files[p.env_files.len() - 1].clone();
    }
    let dir = labels.get(labels::COMPOSE_WORKING_DIR).map_or_else(
        || {
            compose_file
                .parent()
                .unwrap_or(Path::new("."))
                .to_path_buf()
        },
        PathBuf::from,
    );
    dir.join(".env")
}

/// The value `var` has in env-file `text`, unquoted.
fn dotenv_value(text: &str, var: &str) -> Option<String> {
    let seen = std::cell::RefCell::new(None);
    map_dotenv_var(text, var, |v| {
        *seen.borrow_mut() = Some(v.to_string());
        Some(v.to_string())
    })
    .ok()?;
    seen.into_inner()
}

/// Whether pullpilot may replace `path`: refused when its mode has no write bit (as root a
/// write would succeed, but the operator said no).
pub fn check_writable(path: &Path) -> Result<(), String> {
    let meta =
        fs::metadata(path).map_err(|e| format!("{} cannot be read ({e})", path.display()))?;
    if meta.permissions().readonly() {
        return Err(format!("{} is read-only", path.display()));
    }
    Ok(())
}

/// Replaces a compose or env file atomically (same owner and mode, see
/// [`files::replace_file`]), refusing read-only files.
pub fn write_in_place(path: &Path, text: &str) -> anyhow::Result<()> {
    check_writable(path).map_err(|why| {
        anyhow::anyhow!("{why}, so it was not changed; make it writable or edit it by hand")
    })?;
    files::replace_file(path, text.as_bytes())
}

/// Moves the image of compose `service` in `file` (its `image:` line, or variable `var` of an
/// env file) from tag `from` to tag `to`, atomically. Idempotent: a file that already says
/// `to` is left alone (`Ok(false)`). Used forward by a version update and backward by its
/// rollback and heal.
pub fn retag_file(
    file: &Path,
    service: &str,
    var: Option<&str>,
    from: &str,
    to: &str,
) -> anyhow::Result<bool> {
    let text = fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("reading {} ({e})", file.display()))?;
    let already = |v: &str| retag_value(v, to, to).is_some();
    let new = if let Some(var) = var {
        if dotenv_value(&text, var).is_some_and(|v| already(&v)) {
            return Ok(false);
        }
        map_dotenv_var(&text, var, |v| retag_value(v, from, to))
            .map_err(|e| anyhow::anyhow!("cannot edit {}: {e}", file.display()))?
    } else {
        {
            let index = match find_image(&text, service) {
                Ok(ImageValue::Line { index, value }) => {
                    if already(&value) {
                        return Ok(false);
                    }
                    index
                }
                Ok(ImageValue::Variable(v)) => anyhow::bail!(
                    "cannot edit {}: the image of service {service} now comes from ${{{v}}}",
                    file.display()
                ),
                Err(e) => anyhow::bail!("cannot edit {}: {e}", file.display()),
            };
            map_image_line(&text, index, |v| retag_value(v, from, to)).ok_or_else(|| {
                anyhow::anyhow!(
                    "cannot edit {}: the image of service {service} no longer ends in the tag {from}",
                    file.display()
                )
            })?
        }
    };
    write_in_place(file, &new)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Project {
        dir: tempfile::TempDir,
    }

    impl Project {
        fn new(files: &[(&str, &str)]) -> Project {
            let dir = tempfile::Builder::new()
                .prefix("pp-locate-")
                .tempdir()
                .unwrap();
            for (name, text) in files {
                fs::write(dir.path().join(name), text).unwrap();
            }
            Project { dir }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn labels(&self, service: &str, files: &[&str]) -> BTreeMap<String, String> {
            let list: Vec<String> = files
                .iter()
                .map(|f| self.path(f).display().to_string())
                .collect();
            BTreeMap::from([
                (labels::COMPOSE_PROJECT.to_string(), "shop".to_string()),
                (labels::COMPOSE_SERVICE.to_string(), service.to_string()),
                (labels::COMPOSE_CONFIG_FILES.to_string(), list.join(",")),
                (
                    labels::COMPOSE_WORKING_DIR.to_string(),
                    self.dir.path().display().to_string(),
                ),
            ])
        }
    }

    const FILE: &str = "services:\n  app:\n    image: reg.lan:5000/app:1.2.3 # ours\n  \
                        env:\n    image: reg.lan:5000/env:${ENV_TAG}\n";

    #[test]
    fn a_version_move_changes_one_line_and_comes_back() {
        let p = Project::new(&[("compose.yaml", FILE)]);
        let loc = locate(&p.labels("app", &["compose.yaml"]), true).unwrap();
        assert_eq!(loc.value, "reg.lan:5000/app:1.2.3");
        assert_eq!(loc.spot, Spot::Line(2));
        let file = p.path("compose.yaml");
        assert!(retag_file(&file, "app", None, "1.2.3", "1.2.10").unwrap());
        let moved = fs::read_to_string(&file).unwrap();
        assert_eq!(moved, FILE.replace("app:1.2.3", "app:1.2.10"));
        assert!(
            !retag_file(&file, "app", None, "1.2.3", "1.2.10").unwrap(),
            "idempotent"
        );
        assert!(retag_file(&file, "app", None, "1.2.10", "1.2.3").unwrap());
        assert_eq!(fs::read_to_string(&file).unwrap(), FILE);
    }

    #[test]
    fn a_variable_is_moved_in_the_env_file() {
        let p = Project::new(&[
            ("compose.yaml", FILE),
            (".env", "# tags\nENV_TAG=\"2.0\"\n"),
        ]);
        let loc = locate(&p.labels("env", &["compose.yaml"]), true).unwrap();
        assert_eq!(loc.file, p.path(".env"));
        assert_eq!(loc.spot, Spot::Variable("ENV_TAG".into()));
        assert_eq!(loc.value, "2.0");
        assert!(retag_file(&loc.file, "env", Some("ENV_TAG"), "2.0", "2.1").unwrap());
        assert_eq!(
            fs::read_to_string(p.path(".env")).unwrap(),
            "# tags\nENV_TAG=\"2.1\"\n"
        );
        assert_eq!(fs::read_to_string(p.path("compose.yaml")).unwrap(), FILE);
    }

    #[test]
    fn what_cannot_be_edited_safely_is_refused_with_the_reason() {
        let p = Project::new(&[
            ("compose.yaml", FILE),
            (
                "override.yaml",
                "services:\n  app:\n    image: reg.lan:5000/app:1.2.4\n",
            ),
            (
                "ext.yaml",
                "services:\n  child:\n    extends: { file: compose.yaml, service: app }\n",
            ),
        ]);
        let err = locate(&p.labels("app", &["compose.yaml", "override.yaml"]), true).unwrap_err();
        assert!(err.contains("several compose files"), "{err}");
        // A pin takes the last file, as compose's merge does.
        let pinned = locate(&p.labels("app", &["compose.yaml", "override.yaml"]), false).unwrap();
        assert_eq!(pinned.file, p.path("override.yaml"));
        let err = locate(&p.labels("child", &["ext.yaml"]), true).unwrap_err();
        assert!(err.contains("extends"), "{err}");
        let err = locate(&p.labels("env", &["compose.yaml"]), true).unwrap_err();
        assert!(err.contains("ENV_TAG"), "{err}");
        let mut plain = p.labels("app", &["compose.yaml"]);
        plain.remove(labels::COMPOSE_CONFIG_FILES);
        assert!(
            locate(&plain, true)
                .unwrap_err()
                .contains("not part of a compose project")
        );
    }

    #[test]
    fn read_only_files_are_never_replaced() {
        use std::os::unix::fs::PermissionsExt as _;
        let p = Project::new(&[("compose.yaml", FILE)]);
        let file = p.path("compose.yaml");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o444)).unwrap();
        assert!(check_writable(&file).unwrap_err().contains("read-only"));
        let err = retag_file(&file, "app", None, "1.2.3", "1.2.10").unwrap_err();
        assert!(format!("{err:#}").contains("read-only"), "{err:#}");
        assert_eq!(fs::read_to_string(&file).unwrap(), FILE);
    }

    #[test]
    fn retag_value_replaces_only_the_tag() {
        assert_eq!(
            retag_value("app:1.2.3", "1.2.3", "1.2.4").as_deref(),
            Some("app:1.2.4")
        );
        assert_eq!(
            retag_value("1.2.3", "1.2.3", "1.2.4").as_deref(),
            Some("1.2.4")
        );
        assert_eq!(
            retag_value("reg:5000/app:1.2.3", "1.2.3", "1.3.0").as_deref(),
            Some("reg:5000/app:1.3.0")
        );
        assert_eq!(retag_value("app:11.2.3", "1.2.3", "1.2.4"), None);
        assert_eq!(retag_value("app:latest", "1.2.3", "1.2.4"), None);
    }
}
