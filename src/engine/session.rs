//! What one pass works with: the settings and environment ([`Invocation`]), and a [`Session`]
//! that adds the runtime, the registry client and the notifier. [`Tools`] opens the real ones.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use anyhow::Result;

use super::announce::Notify;
use super::check;
use super::discover::{self, Discovered};
use super::scope::{self, Scope};
use super::update::{Executor, UpdateKnobs};
use crate::compose::{Compose, ComposeCli};
use crate::docker::Docker;
use crate::error::Failure;
use crate::notify::Notifier;
use crate::registry::{RegistryClient, RegistryOptions};
use crate::runtime::Runtime;
use crate::settings::Settings;
use crate::state::Store;

/// How long one notification target may take before it is given up on.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// What every command gets: validated settings and the environment they came from.
pub struct Invocation {
    pub settings: Settings,
    pub env: BTreeMap<String, String>,
}

/// Where a pass reads the time for soak clocks, history, the journal and blocks (the health
/// gate measures its own durations).
pub trait Clock {
    fn now(&self) -> SystemTime;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Everything a pass talks to. Borrowed, so tests hand in the in-memory runtime, a recording
/// notifier and a clock they move.
pub struct Session<'a> {
    pub settings: &'a Settings,
    pub env: &'a BTreeMap<String, String>,
    pub runtime: &'a dyn Runtime,
    pub registry: &'a RegistryClient,
    pub notifier: &'a dyn Notify,
    pub clock: &'a dyn Clock,
    /// The compose CLI, unless `PP_COMPOSE=off`.
    pub compose: Option<&'a dyn Compose>,
}

/// The real runtime, registry client and notifier, owned for as long as a command runs.
pub struct Tools {
    pub docker: Docker,
    pub registry: RegistryClient,
    pub notifier: Notifier,
    pub compose: ComposeCli,
}

impl Tools {
    /// Connects to Docker and builds the registry client; `notify` also builds the notifier
    /// from `PP_NOTIFY_URL` (a bad URL is a usage error), otherwise it notifies nobody.
    pub fn open(inv: &Invocation, notify: bool) -> Result<Tools> {
        let settings = &inv.settings;
        let urls: &[String] = if notify { &settings.notify_urls } else { &[] };
        let notifier = Notifier::new(urls, &settings.timezone, NOTIFY_TIMEOUT)
            .map_err(|e| Failure::usage(format!("PP_NOTIFY_URL: {e:#}")))?;
        let docker = Docker::connect(settings.docker_host.as_deref())?;
        let registry = RegistryClient::new(registry_options(settings))?;
        let compose = ComposeCli::new(
            settings.compose.clone(),
            settings.docker_host.as_deref(),
            &inv.env,
        );
        Ok(Tools {
            docker,
            registry,
            notifier,
            compose,
        })
    }

    pub fn session<'a>(&'a self, inv: &'a Invocation) -> Session<'a> {
        Session {
            settings: &inv.settings,
            env: &inv.env,
            runtime: &self.docker,
            registry: &self.registry,
            notifier: &self.notifier,
            clock: &SystemClock,
            compose: self
                .compose
                .enabled()
                .then_some(&self.compose as &dyn Compose),
        }
    }
}

/// Registry client options from the settings.
pub fn registry_options(settings: &Settings) -> RegistryOptions {
    RegistryOptions {
        docker_config_dir: settings.docker_config.clone(),
        insecure_hosts: settings.insecure_registries.clone(),
        per_host_concurrency: settings.registry_concurrency,
        ..RegistryOptions::default()
    }
}

impl Invocation {
    /// The scope (`PP_SCOPE`, or the working directory's compose project) and every
    /// container in it.
    pub fn discover(&self, runtime: &dyn Runtime) -> Result<(Scope, Vec<Discovered>)> {
        discover_in(&self.settings, &self.env, runtime)
    }
}

fn discover_in(
    settings: &Settings,
    env: &BTreeMap<String, String>,
    runtime: &dyn Runtime,
) -> Result<(Scope, Vec<Discovered>)> {
    let scope = scope::resolve(settings, runtime, env)?;
    let all = discover::discover(runtime, &scope, settings.compat_watchtower)?;
    Ok((scope, all))
}

impl Session<'_> {
    /// The scope and every container in it.
    pub fn discover(&self) -> Result<(Scope, Vec<Discovered>)> {
        discover_in(self.settings, self.env, self.runtime)
    }

    /// What the decision needs from the settings.
    pub fn check_knobs(&self) -> check::CheckKnobs<'_> {
        check::CheckKnobs {
            default_soak: self.settings.soak,
            default_track: &self.settings.track,
            default_window: self.settings.window.as_ref(),
            approve_manual: self.settings.approve_manual,
            timezone: &self.settings.timezone,
            self_update: self.settings.self_update,
        }
    }

    /// The updater, saving through `store`; `cleanup` says whether replaced images are
    /// removed.
    pub fn executor<'s>(&'s self, store: &'s Store, cleanup: bool) -> Executor<'s> {
        Executor {
            runtime: self.runtime,
            registry: self.registry,
            store,
            knobs: UpdateKnobs {
                health_timeout: self.settings.health_timeout,
                health_stable: self.settings.health_stable,
                cleanup,
                pre_update_hook: self.settings.pre_update_hook.clone(),
                post_update_hook: self.settings.post_update_hook.clone(),
                hook_timeout: self.settings.hook_timeout,
            },
            clock: self.clock,
            compose: self.compose,
        }
    }
}
