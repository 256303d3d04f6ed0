//! pullpilot: a compose-aware container auto-updater for Docker hosts.
//!
//! One pass is a pipeline: settings → scope → containers → labels and image references →
//! registry digests → [`decide`] (pure) → plan → (apply) → state. [`engine::pass`] is that pass,
//! and `apply`, `listen` and `rollback` all reach it through [`engine`]; containers are reached
//! only through [`runtime::Runtime`] (Docker, or an in-memory fake in unit tests). Modules
//! import only downward (tests/layers.rs names the layers). `run` is the entry point the binary
//! calls; it is the only place that turns an outcome into an exit code.

pub mod cli;
pub mod commands;
pub mod compose;
pub mod compose_edit;
pub mod decide;
pub mod docker;
pub mod engine;
pub mod error;
pub mod fault;
pub mod files;
pub mod hooks;
pub mod labels;
pub mod listen;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod output;
pub mod process;
pub mod reference;
pub mod registry;
pub mod relay;
pub mod runtime;
pub mod settings;
pub mod state;
#[cfg(test)]
mod testhttp;
#[cfg(test)]
mod testsnap;
pub mod time;
pub mod tls;
pub mod values;
pub mod version;
pub mod webhook;

use std::ffi::OsString;
use std::process::ExitCode;

/// Runs one invocation of the command line and returns the exit status documented in the
/// manual (0 ok, 1 a container failed, 2 usage/configuration, 3 Docker unreachable, 75 locked).
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    error::exit_code(commands::dispatch(args))
}
