//! One file per subcommand, each wiring settings, Docker, registry and state for its job.
//! `dispatch` parses the command line and runs the chosen command.

mod apply;
mod generate;
mod pin;
mod plan;
mod rollback;
mod status;
mod unblock;

use std::collections::BTreeMap;
use std::ffi::OsString;

use anyhow::Result;
use clap::Parser;

use crate::cli::{Cli, Command};
use crate::discover::{self, Discovered};
use crate::docker::Docker;
use crate::error::{Failure, FailureKind, Outcome};
use crate::scope::{self, Scope};
use crate::settings::Settings;
use crate::{evaluate, update};

/// What every command gets: validated settings and the environment they came from.
pub struct Invocation {
    pub settings: Settings,
    pub env: BTreeMap<String, String>,
}

impl Invocation {
    /// The scope (`PP_SCOPE`, or the working directory's compose project) and every
    /// container in it.
    fn discover(&self, docker: &Docker) -> Result<(Scope, Vec<Discovered>)> {
        let scope = scope::resolve(&self.settings, docker, &self.env)?;
        let all = discover::discover(docker, &scope, self.settings.compat_watchtower)?;
        Ok((scope, all))
    }

    /// What the decision needs from the settings.
    fn evaluate_knobs(&self) -> evaluate::Knobs {
        evaluate::Knobs {
            default_soak: self.settings.soak,
            self_update: self.settings.self_update,
        }
    }

    /// How updates run; `cleanup` says whether replaced images are removed.
    fn update_knobs(&self, cleanup: bool) -> update::Knobs {
        update::Knobs {
            health_timeout: self.settings.health_timeout,
            health_stable: self.settings.health_stable,
            cleanup,
            pre_update_hook: self.settings.pre_update_hook.clone(),
            hook_timeout: self.settings.hook_timeout,
        }
    }
}

/// One `apply` pass over `services` (all in scope when empty), as `listen` runs it.
pub fn apply_pass(inv: &Invocation, services: Vec<String>) -> Result<Outcome> {
    apply::run(
        inv,
        &crate::cli::ApplyArgs {
            services,
            json: false,
        },
    )
}

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
    let env: BTreeMap<String, String> = std::env::vars().collect();
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
        Command::Rollback(args) => rollback::run(&invocation, &args),
        Command::Pin(args) => pin::pin(&invocation, &args),
        Command::Unpin(args) => pin::unpin(&invocation, &args),
        Command::Unblock(args) => unblock::run(&invocation, &args),
        Command::Generate(args) => generate::run(&args),
        Command::Listen(args) => crate::listen::run(&invocation, &args),
        Command::Relay(args) => crate::relay::run(&args),
    }
}
