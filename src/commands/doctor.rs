//! `pullpilot doctor`: checks the setup and says, line by line, what is ok, what deserves a look
//! (warn) and what stops pullpilot from working (fail), each with what to do. Exit status 1
//! when any line is fail. Changes nothing: the only write is a probe file in the data
//! directory, removed at once, and `--send-test` sends one test message per notification URL.
//!
//! - `checks`: the facts → the lines, and their text and JSON (pure, table-tested);
//! - `gather`: the facts, through the same seams a pass uses.

mod checks;
mod gather;

#[cfg(test)]
mod tests;

use std::fs;
use std::path::Path;

use anyhow::Result;

use crate::cli::DoctorArgs;
use crate::commands::Invocation;
use crate::compose::ComposeCli;
use crate::docker::Docker;
use crate::engine::session::registry_options;
use crate::error::Outcome;
use crate::output;
use crate::registry::RegistryClient;
use checks::{EngineFacts, Facts, RegistryFacts, ScopeFacts};

pub(super) fn run(inv: &Invocation, args: &DoctorArgs) -> Result<Outcome> {
    let facts = gather_all(inv, args.send_test);
    let list = checks::findings(&facts);
    if args.json {
        output::json(&checks::document(&list))?;
    } else {
        output::text(&checks::render(&list));
    }
    Ok(if checks::any_fail(&list) {
        Outcome::SomeFailed
    } else {
        Outcome::Ok
    })
}

/// Every fact, from the real Docker, registries, compose CLI, file system and systemd.
fn gather_all(inv: &Invocation, send_test: bool) -> Facts {
    let settings = &inv.settings;
    let registry = RegistryClient::new(registry_options(settings)).map_err(|e| format!("{e:#}"));
    let side = match Docker::connect(settings.docker_host.as_deref()) {
        Ok(docker) => gather::engine_side(
            settings,
            &inv.env,
            &docker,
            docker.endpoint(),
            registry.as_ref().map_err(String::as_str),
        ),
        Err(e) => gather::EngineSide {
            engine: EngineFacts::Failed(e),
            scope: ScopeFacts::Skipped,
            registries: RegistryFacts::Skipped("Docker is not reachable".into()),
            containers: Vec::new(),
        },
    };
    let cli = ComposeCli::new(
        settings.compose.clone(),
        settings.docker_host.as_deref(),
        &inv.env,
    );
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok();
    let in_container = gather::in_container(
        Path::new("/.dockerenv").exists() || Path::new("/run/.containerenv").exists(),
        &fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
        mountinfo.as_deref().unwrap_or_default(),
    );
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".into());
    Facts {
        settings_file: gather::settings_file(
            &crate::commands::settings_file_path(
                &inv.env,
                Path::new(crate::commands::SETTINGS_FILE),
            )
            .0,
            &inv.env,
        ),
        compose: gather::compose(&cli, &settings.compose, &side.containers),
        data_dir: gather::data_dir(&settings.data_dir, in_container, mountinfo.as_deref()),
        notify: gather::notify(&settings.notify_urls, &settings.timezone, send_test, &host),
        webhook: gather::webhook(settings),
        systemd: gather::systemd(Path::new("/run/systemd/system").is_dir(), "systemctl"),
        engine: side.engine,
        scope: side.scope,
        registries: side.registries,
    }
}
