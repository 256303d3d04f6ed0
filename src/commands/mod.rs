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
    let env = environment(std::env::vars_os())?;
    let (settings, warnings) = Settings::resolve(&cli.global, &env)?;
    crate::logging::init(settings.log_level, settings.log_json);
    for warning in warnings {
        log::warn!("{warning}");
    }
    let invocation = Invocation { settings, env };
    match cli.command {
        Command::Plan(args) => plan::run(&invocation, &args),
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
}
