//! One file per subcommand: each opens what it needs, calls the engine (or the state module)
//! and renders the result.
//! `dispatch` parses the command line and runs the chosen command.

mod apply;
mod doctor;
mod generate;
mod hold;
mod pin;
mod plan;
mod rollback;
mod status;
mod unblock;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Parser;

use crate::cli::{Cli, Command};
pub use crate::engine::Invocation;
use crate::error::{Failure, FailureKind, Outcome};
use crate::settings::Settings;

/// Parses `args`, validates settings against the process environment and runs the command.
pub fn dispatch<I: IntoIterator<Item = OsString>>(args: I) -> Result<Outcome> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Ok(Outcome::Ok)
                }
                _ => Err(Failure::new(FailureKind::Usage, "").into()),
            };
        }
    };
    let mut env = environment(std::env::vars_os())?;
    // The relay has its own unit without the settings file, and `generate` reads no settings.
    let file = if matches!(cli.command, Command::Relay(_) | Command::Generate(_)) {
        SettingsFile::NotRead
    } else {
        add_settings_file(&mut env, Path::new(SETTINGS_FILE))?
    };
    let (settings, warnings) = Settings::resolve(&cli.global, &env)?;
    crate::logging::init(settings.log_level, settings.log_json);
    if let SettingsFile::Unreadable { path, why } = &file {
        log::warn!(
            "Cannot read the settings file {} ({why}), so this run does not see the settings \
             the pullpilot units get from it; run as root (sudo), or fix its permissions.",
            path.display()
        );
    }
    for warning in warnings {
        log::warn!("{warning}");
    }
    let invocation = Invocation { settings, env };
    match cli.command {
        Command::Plan(args) => plan::run(&invocation, &args, &file),
        Command::Apply(args) => apply::run(&invocation, &args),
        Command::Status(args) => status::run(&invocation, &args),
        Command::Doctor(args) => doctor::run(&invocation, &args),
        Command::Rollback(args) => rollback::run(&invocation, &args),
        Command::Pin(args) => pin::pin(&invocation, &args),
        Command::Unpin(args) => pin::unpin(&invocation, &args),
        Command::Unblock(args) => unblock::run(&invocation, &args),
        Command::Pause(args) => hold::pause(&invocation, &args),
        Command::Resume(args) => hold::resume(&invocation, &args),
        Command::Approve(args) => hold::approve(&invocation, &args),
        Command::Generate(args) => generate::run(&args),
        Command::Listen(args) => crate::listen::run(&invocation, &args),
        Command::Relay(args) => crate::relay::run(&args),
    }
}

/// The settings file the packaged units read (`EnvironmentFile=`), unless `PP_CONFIG_FILE`
/// names another.
pub(crate) const SETTINGS_FILE: &str = "/etc/default/pullpilot";

/// What became of the settings file for this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SettingsFile {
    /// Read: `count` assignments, of which `overridden` were already set in the environment.
    Read {
        path: PathBuf,
        count: usize,
        overridden: Vec<String>,
    },
    /// The default file does not exist (no warning: most hosts without the .deb lack it).
    Missing { path: PathBuf },
    /// The default file exists but cannot be read (typically: not root).
    Unreadable { path: PathBuf, why: String },
    /// Not looked for (commands that read no settings).
    NotRead,
}

impl SettingsFile {
    /// One line for people: which file this run's settings came from.
    pub(crate) fn describe(&self) -> String {
        match self {
            SettingsFile::Read {
                path,
                count,
                overridden,
            } => {
                let overrides = if overridden.is_empty() {
                    String::new()
                } else {
                    format!("; the environment overrides {}", overridden.join(", "))
                };
                format!(
                    "Settings file: {} ({count} setting{}{overrides}).",
                    path.display(),
                    if *count == 1 { "" } else { "s" }
                )
            }
            SettingsFile::Missing { path } => {
                format!("Settings file: none ({} does not exist).", path.display())
            }
            SettingsFile::Unreadable { path, why } => format!(
                "Settings file: not read ({} cannot be read: {why}).",
                path.display()
            ),
            SettingsFile::NotRead => "Settings file: not read.".into(),
        }
    }
}

/// The settings file for `env`: `PP_CONFIG_FILE` when set and not empty (then `true`), else
/// `default`. Doctor checks the same file.
pub(crate) fn settings_file_path(
    env: &BTreeMap<String, String>,
    default: &Path,
) -> (PathBuf, bool) {
    match env.get("PP_CONFIG_FILE").filter(|p| !p.is_empty()) {
        Some(named) => (PathBuf::from(named), true),
        None => (default.to_path_buf(), false),
    }
}

/// Adds the settings file's assignments to `env` where the environment does not set the
/// variable (an empty value counts as set: the environment and flags take precedence, as a
/// unit's `Environment=` would). The file is `PP_CONFIG_FILE` when set, else `default`. A
/// missing default file is silent, an unreadable one a warning; a file named by
/// `PP_CONFIG_FILE` that cannot be read, and a malformed line in any file, are errors.
fn add_settings_file(env: &mut BTreeMap<String, String>, default: &Path) -> Result<SettingsFile> {
    let (path, explicit) = settings_file_path(env, default);
    if !explicit {
        match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(SettingsFile::Missing { path });
            }
            Err(e) => {
                return Ok(SettingsFile::Unreadable {
                    path,
                    why: e.to_string(),
                });
            }
            Ok(_) => {}
        }
    } else if !path.exists() {
        return Err(Failure::usage(format!(
            "PP_CONFIG_FILE names the settings file {}, which does not exist; fix the path, or \
             unset PP_CONFIG_FILE to read {} (if present)",
            path.display(),
            default.display()
        )));
    }
    let pairs = crate::settings::envfile::read(&path)?;
    let mut from_file: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in pairs {
        // The file cannot name another file: the units never chain either.
        if name != "PP_CONFIG_FILE" {
            from_file.insert(name, value);
        }
    }
    let mut overridden = Vec::new();
    for (name, value) in &from_file {
        match env.get(name) {
            Some(set) if set != value => overridden.push(name.clone()),
            Some(_) => {}
            None => {
                env.insert(name.clone(), value.clone());
            }
        }
    }
    Ok(SettingsFile::Read {
        path,
        count: from_file.len(),
        overridden,
    })
}

/// Variables pullpilot reads besides `PP_*` (here or in the Docker client); like `PP_*`, they
/// must be text.
const READ_VARIABLES: &[&str] = &[
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_TLS_VERIFY",
    "DOCKER_API_VERSION",
    "COMPOSE_PROJECT_NAME",
    "COMPOSE_FILE",
];

/// The environment as text. A variable pullpilot reads (`PP_*` and [`READ_VARIABLES`]) that is
/// not UTF-8 is an error naming it: taking it as unset would silently change what runs. Every
/// other variable is none of pullpilot's business and is skipped whatever its bytes (a Latin-1
/// line in an `EnvironmentFile` must not stop the tool).
fn environment(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for (name, value) in vars {
        let read = name.as_bytes().starts_with(b"PP_") || READ_VARIABLES.iter().any(|v| name == *v);
        match (name.to_str(), value.to_str()) {
            (Some(n), Some(v)) => {
                env.insert(n.to_string(), v.to_string());
            }
            _ if !read => {}
            (None, _) => {
                return Err(Failure::usage(format!(
                    "the environment variable {} has a name that is not valid UTF-8 text (byte {} \
                     is not); pullpilot reads PP_* variables as text, so rename or remove it \
                     (check the EnvironmentFile or env_file it comes from for a Latin-1 \
                     character)",
                    name.to_string_lossy(),
                    invalid_at(&name),
                )));
            }
            (Some(n), None) => {
                // The value itself is never shown: it may be a secret.
                return Err(Failure::usage(format!(
                    "{n} is not valid UTF-8 text (byte {} of its value is not); write the value \
                     in UTF-8 (check the EnvironmentFile or env_file it comes from for a \
                     Latin-1 character)",
                    invalid_at(&value),
                )));
            }
        }
    }
    Ok(env)
}

/// The 1-based position of the first byte that is not UTF-8.
fn invalid_at(text: &OsStr) -> usize {
    std::str::from_utf8(text.as_bytes()).map_or_else(|e| e.valid_up_to() + 1, |_| 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{FailureKind, kind_of};
    use std::os::unix::ffi::OsStringExt as _;

    fn os(bytes: &[u8]) -> OsString {
        OsString::from_vec(bytes.to_vec())
    }

    #[test]
    fn variables_pullpilot_does_not_read_are_skipped_whatever_their_bytes() {
        let env = environment([
            (os(b"PATH"), os(b"/bin")),
            (os(b"X"), os(b"caf\xe9")),
            (os(b"NAME_\xff"), os(b"v")),
            (os(b"PP_SOAK"), os(b"1h")),
        ])
        .unwrap();
        assert_eq!(env.len(), 2);
        assert_eq!(env["PP_SOAK"], "1h");
        assert_eq!(env["PATH"], "/bin");
    }

    #[test]
    fn a_pp_variable_that_is_not_utf8_is_a_usage_error_naming_it() {
        let err = environment([(os(b"PP_NOTIFY_URL"), os(b"ab\xffsecret"))]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("PP_NOTIFY_URL is not valid UTF-8 text (byte 3 "),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(kind_of(&err), Some(FailureKind::Usage));

        let err = environment([(os(b"PP_SO\xc0K"), os(b"1h"))]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("PP_SO\u{fffd}K has a name that is not valid UTF-8 text (byte 6"),
            "{text}"
        );
        assert_eq!(kind_of(&err), Some(FailureKind::Usage));

        let err = environment([(os(b"DOCKER_HOST"), os(b"unix:///r\xffn"))]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("DOCKER_HOST is not valid UTF-8"),
            "{err}"
        );
    }

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn the_settings_file_fills_in_what_the_environment_does_not_set() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pullpilot");
        std::fs::write(
            &file,
            "# comment\nPP_SOAK=2h\nPP_LOG_LEVEL=debug\nPP_TRACK=\"minor\"\nPP_CONFIG_FILE=/x\n",
        )
        .unwrap();
        let mut env = vars(&[("PP_LOG_LEVEL", "warn"), ("PP_TRACK", "minor")]);
        let read = add_settings_file(&mut env, &file).unwrap();
        assert_eq!(env["PP_SOAK"], "2h", "taken from the file");
        assert_eq!(env["PP_LOG_LEVEL"], "warn", "the environment wins");
        assert_eq!(env["PP_TRACK"], "minor");
        assert!(!env.contains_key("PP_CONFIG_FILE"), "the file cannot chain");
        assert_eq!(
            read,
            SettingsFile::Read {
                path: file.clone(),
                count: 3,
                overridden: vec!["PP_LOG_LEVEL".into()],
            }
        );
        assert_eq!(
            read.describe(),
            format!(
                "Settings file: {} (3 settings; the environment overrides PP_LOG_LEVEL).",
                file.display()
            )
        );
    }

    #[test]
    fn pp_config_file_names_the_file_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let default = dir.path().join("default");
        std::fs::write(&default, "PP_SOAK=1h\n").unwrap();
        let other = dir.path().join("other");
        std::fs::write(&other, "PP_SOAK=3h\n").unwrap();
        let mut env = vars(&[("PP_CONFIG_FILE", other.to_str().unwrap())]);
        add_settings_file(&mut env, &default).unwrap();
        assert_eq!(env["PP_SOAK"], "3h");

        let gone = dir.path().join("gone");
        let mut env = vars(&[("PP_CONFIG_FILE", gone.to_str().unwrap())]);
        let err = add_settings_file(&mut env, &default).unwrap_err();
        assert_eq!(kind_of(&err), Some(FailureKind::Usage));
        assert!(
            err.to_string().contains(&format!(
                "PP_CONFIG_FILE names the settings file {}, which does not exist",
                gone.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn the_settings_file_is_pp_config_file_unless_empty() {
        let default = Path::new("/etc/default/pullpilot");
        assert_eq!(
            settings_file_path(&vars(&[("PP_CONFIG_FILE", "/srv/pp.env")]), default),
            (PathBuf::from("/srv/pp.env"), true)
        );
        assert_eq!(
            settings_file_path(&vars(&[("PP_CONFIG_FILE", "")]), default),
            (default.to_path_buf(), false)
        );
        assert_eq!(
            settings_file_path(&BTreeMap::new(), default),
            (default.to_path_buf(), false)
        );
    }

    #[test]
    fn a_missing_default_file_is_silent_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let default = dir.path().join("absent");
        let mut env = vars(&[("PP_SOAK", "1h")]);
        let read = add_settings_file(&mut env, &default).unwrap();
        assert_eq!(read, SettingsFile::Missing { path: default });
        assert_eq!(env, vars(&[("PP_SOAK", "1h")]));
    }

    #[test]
    fn an_unreadable_default_file_is_reported_not_fatal_but_an_explicit_one_is() {
        let dir = tempfile::tempdir().unwrap();
        // Whoever runs the test (root reads any mode), a directory cannot be read as a file.
        let mut env = vars(&[("PP_SOAK", "1h")]);
        let read = add_settings_file(&mut env, dir.path()).unwrap();
        assert!(
            matches!(&read, SettingsFile::Unreadable { path, .. } if path == dir.path()),
            "{read:?}"
        );
        assert!(
            read.describe().starts_with("Settings file: not read ("),
            "{read:?}"
        );
        assert_eq!(env, vars(&[("PP_SOAK", "1h")]));

        let mut env = vars(&[("PP_CONFIG_FILE", dir.path().to_str().unwrap())]);
        let err = add_settings_file(&mut env, Path::new("/nonexistent")).unwrap_err();
        assert_eq!(kind_of(&err), Some(FailureKind::Usage));
        assert!(
            err.to_string().starts_with(&format!(
                "cannot read the settings file {}",
                dir.path().display()
            )),
            "{err}"
        );
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pullpilot");
        std::fs::write(&file, "PP_SOAK=1h\nexport PP_TRACK=minor\n").unwrap();
        let err = add_settings_file(&mut BTreeMap::new(), &file).unwrap_err();
        assert_eq!(kind_of(&err), Some(FailureKind::Usage));
        assert!(
            err.to_string()
                .starts_with(&format!("the settings file {}, line 2:", file.display())),
            "{err}"
        );
    }
}
