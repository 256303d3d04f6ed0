//! `pullpilot listen`: stay running and turn pokes into passes.
//!
//! Three sources start a pass, all through [`crate::engine::apply`] (so every gate holds: soak, pins,
//! blocked digests, health): the relay connection ([`relay_client`]), the local receiver
//! ([`receiver`]), and the `PP_SCHEDULE` floor, which runs whatever the relay does. One pass runs
//! at a time; pokes are debounced and joined ([`trigger`]). SIGTERM or SIGINT lets the pass in
//! progress finish, then exits.

pub mod identity;
mod receiver;
mod relay_client;
mod relay_text;
pub mod trigger;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result};

use crate::cli::ListenArgs;
use crate::engine::{self, Invocation, PassRequest};
use crate::error::{Failure, Outcome};
use crate::settings::ScopeSetting;
use crate::time::{Schedule, zone};
use crate::webhook::protocol;
use trigger::{Target, Trigger};

/// What the main loop reacts to.
#[derive(Debug)]
pub enum Wake {
    /// Run a pass soon, for one service or (None) everything in scope.
    Poke { service: Option<String> },
    /// The relay passed on pokes; how many is in the shared counter (see [`RelayPokes`]).
    RelayPokes,
    /// SIGTERM or SIGINT.
    Shutdown,
}

/// Relay pokes counted but not yet read by the main loop. Only the poke that finds it at zero
/// sends [`Wake::RelayPokes`], so a relay poking during a long pass queues one event, not
/// millions.
#[derive(Clone, Debug, Default)]
pub struct RelayPokes(Arc<AtomicU64>);

impl RelayPokes {
    /// Counts one poke; true when the main loop must be woken.
    fn add(&self) -> bool {
        self.0.fetch_add(1, Ordering::SeqCst) == 0
    }

    /// Takes the count (zero when an earlier take already had these pokes).
    fn take(&self) -> u64 {
        self.0.swap(0, Ordering::SeqCst)
    }
}

/// How long provisioning may take.
const PROVISION_TIMEOUT: Duration = Duration::from_secs(20);
/// The main loop looks at the wall clock at least this often, so a clock step (NTP at boot)
/// moves the schedule within a minute.
const CLOCK_CHECK: Duration = Duration::from_secs(60);
/// The most jitter drawn (centuries; it only keeps the random draw in range).
const MAX_JITTER: Duration = Duration::from_nanos(u64::MAX - 1);

/// Settings checked before `listen` starts waiting.
struct Checked {
    schedule: Schedule,
    zone: jiff::tz::TimeZone,
    relay_url: Option<String>,
    secret: Option<String>,
}

/// Checks every setting a pass would use, so a mistake stops `listen` at start (exit 2) with the
/// fix, instead of failing every pass while updates silently stop.
fn check_settings(inv: &Invocation, args: &ListenArgs) -> Result<Checked> {
    let settings = &inv.settings;
    let schedule = Schedule::parse(&settings.schedule).map_err(|e| {
        Failure::usage(format!(
            "PP_SCHEDULE={:?} is not a schedule: {e}. Use five cron fields such as \"0 3 * * *\" \
             or a descriptor such as @daily",
            settings.schedule
        ))
    })?;
    let zone = settings.timezone.clone();
    crate::notify::Notifier::new(&settings.notify_urls, &settings.timezone, PROVISION_TIMEOUT)
        .map_err(|e| {
            Failure::usage(format!(
                "PP_NOTIFY_URL: {e:#}. Fix or remove that URL: listen refuses to start rather \
                 than fail every pass"
            ))
        })?;
    check_engine_settings(settings)?;
    check_scope(inv)?;
    check_files(settings)?;
    let relay_url = match (settings.webhook, &settings.webhook_url) {
        (true, Some(url)) => {
            relay_client::check_base_url(url).map_err(|why| {
                Failure::usage(format!(
                    "PP_WEBHOOK_URL={:?} {why}. Set the relay's base URL, such as \
                     https://relay.example.org",
                    identity::redact_userinfo(url)
                ))
            })?;
            Some(url.clone())
        }
        (true, None) => {
            return Err(Failure::usage(
                "PP_WEBHOOK=true needs PP_WEBHOOK_URL, the relay's base URL (such as \
                 https://relay.example.org, or your own `pullpilot relay` behind TLS)",
            ));
        }
        (false, _) => None,
    };
    let secret = match (args.http, &settings.webhook_secret) {
        (Some(_), None) => {
            return Err(Failure::usage(
                "listen --http needs PP_WEBHOOK_SECRET: callers must send it as \
                 `Authorization: Bearer <secret>`. Set a long random value, for example from \
                 `openssl rand -hex 32`",
            ));
        }
        (Some(_), Some(s)) if s.0.trim() != s.0 => {
            return Err(Failure::usage(
                "PP_WEBHOOK_SECRET starts or ends with whitespace (often a newline from the file \
                 it was copied from). Callers cannot send that in a header, so remove it",
            ));
        }
        (Some(_), Some(s)) => Some(s.0.clone()),
        (None, _) => None,
    };
    Ok(Checked {
        schedule,
        zone,
        relay_url,
        secret,
    })
}

/// Whether `url` can be the relay's base URL (`PP_WEBHOOK_URL`); the error completes a sentence
/// that starts with the URL (for `doctor`, which reports what `listen` would refuse).
pub fn check_relay_url(url: &str) -> Result<(), String> {
    relay_client::check_base_url(url)
}

/// `DOCKER_HOST`, `DOCKER_API_VERSION` and the registry credentials (`DOCKER_CONFIG`), as every
/// pass reads them.
fn check_engine_settings(settings: &crate::settings::Settings) -> Result<()> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(host) = settings.docker_host.clone().or_else(|| env("DOCKER_HOST")) {
        crate::docker::DaemonAddress::parse(&host, env("DOCKER_TLS_VERIFY").is_some())
            .map_err(|e| Failure::usage(format!("DOCKER_HOST: {e}")))?;
    }
    if let Some(version) = env("DOCKER_API_VERSION")
        && crate::docker::ApiVersion::parse(&version).is_none()
    {
        return Err(Failure::usage(format!(
            "DOCKER_API_VERSION={version:?} is not an API version; use the form 1.41 or unset it \
             to negotiate"
        )));
    }
    crate::registry::RegistryClient::new(crate::registry::RegistryOptions {
        docker_config_dir: settings.docker_config.clone(),
        insecure_hosts: settings.insecure_registries.clone(),
        ..crate::registry::RegistryOptions::default()
    })
    .map_err(|e| Failure::usage(format!("registry credentials (DOCKER_CONFIG): {e:#}")))?;
    Ok(())
}

/// `PP_DATA_DIR` can be created (every pass takes its lock there) and `PP_METRICS_FILE`'s
/// directory exists (else every pass only warns and the metrics go stale).
fn check_files(settings: &crate::settings::Settings) -> Result<()> {
    crate::state::store::ensure_data_dir(&settings.data_dir)
        .map_err(|e| Failure::usage(format!("PP_DATA_DIR: {e:#}")))?;
    if let Some(file) = &settings.metrics_file {
        let dir = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            return Err(Failure::usage(format!(
                "PP_METRICS_FILE={:?}: the directory {} does not exist. Create it, or point \
                 PP_METRICS_FILE into an existing directory (such as the node exporter's \
                 textfile directory)",
                file.display().to_string(),
                dir.display()
            )));
        }
    }
    Ok(())
}

/// `PP_SCOPE=project` outside a container needs a compose project here; inside one (as
/// [`crate::engine::scope::resolve`] tells: `/.dockerenv` and a container id in the mounts), Docker
/// decides at the first pass.
fn check_scope(inv: &Invocation) -> Result<()> {
    let settings = &inv.settings;
    if settings.scope != ScopeSetting::OwnProject || maybe_in_container() {
        return Ok(());
    }
    let dir = match &settings.project_directory {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("reading the working directory")?,
    };
    crate::engine::scope::compose_project_name(&dir, &inv.env)
        .map_err(|e| Failure::usage(format!("PP_SCOPE (project, the default): {e:#}")))?;
    Ok(())
}

pub fn run(inv: &Invocation, args: &ListenArgs) -> Result<Outcome> {
    let settings = &inv.settings;
    if args.show_url {
        return show_url(inv);
    }
    let Checked {
        schedule,
        zone,
        relay_url,
        secret,
    } = check_settings(inv, args)?;

    let (tx, rx) = mpsc::channel::<Wake>();
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(tx.clone(), stop.clone())?;

    if let (Some(addr), Some(secret)) = (args.http, secret) {
        if secret.len() < 16 {
            log::warn!(
                "PP_WEBHOOK_SECRET is short ({} characters); use at least 32 random ones.",
                secret.len()
            );
        }
        let bound = receiver::start(addr, secret, tx.clone())?;
        log::info!("Accepting webhook calls on http://{bound}/notify (health: /health).");
    }
    let relay_pokes = RelayPokes::default();
    if let Some(base_url) = relay_url {
        let identity = identity::load_or_create(&settings.data_dir)?;
        relay_client::RelayClient {
            base_url,
            data_dir: settings.data_dir.clone(),
            identity,
            agent: crate::notify::http::agent(PROVISION_TIMEOUT),
            events: tx.clone(),
            pokes: relay_pokes.clone(),
            stop: stop.clone(),
            timing: relay_client::Timing {
                ping_interval: args.ping_interval,
                read_deadline: args.read_deadline,
            },
        }
        .spawn();
    } else if args.http.is_none() {
        log::info!("Neither PP_WEBHOOK nor --http is set, so only the schedule starts passes.");
    }
    drop(tx);

    let mut trigger = Trigger::new(args.debounce, args.min_interval);
    let next_fire = |after: SystemTime| {
        let at = schedule.next_after(&zone, after)?;
        let jitter = protocol::random_up_to(settings.jitter.min(MAX_JITTER));
        Some(at.checked_add(jitter).unwrap_or(at))
    };
    let mut scheduled = next_fire(SystemTime::now());
    log_schedule(&schedule, &zone, scheduled);

    // A pass at start heals anything an earlier run left half-done and catches up. Like every
    // pass, it warns first when pullpilot runs in a container of this Docker with PP_DATA_DIR
    // off a volume (engine::scope::resolve).
    run_pass(inv, &Target::Everything, "listen started");
    while !stop.load(Ordering::Relaxed) {
        let mut wait = CLOCK_CHECK;
        if let Some(at) = trigger.deadline() {
            wait = wait.min(at.saturating_duration_since(Instant::now()));
        }
        if let Some(at) = scheduled {
            wait = wait.min(at.duration_since(SystemTime::now()).unwrap_or_default());
        }
        match rx.recv_timeout(wait) {
            Ok(Wake::Poke { service }) => {
                trigger.poke(Instant::now(), service);
                continue;
            }
            Ok(Wake::RelayPokes) => {
                trigger.poke_many(Instant::now(), None, relay_pokes.take());
                continue;
            }
            Ok(Wake::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if scheduled.is_some_and(|at| SystemTime::now() >= at) {
            trigger.satisfied();
            run_pass(inv, &Target::Everything, "scheduled");
            scheduled = next_fire(SystemTime::now());
            log_schedule(&schedule, &zone, scheduled);
        } else if let Some(due) = trigger.take(Instant::now()) {
            trigger.ran(Instant::now());
            let why = format!(
                "{} poke{}",
                due.pokes,
                if due.pokes == 1 { "" } else { "s" }
            );
            run_pass(inv, &due.target, &why);
        }
    }
    log::info!("listen stopped.");
    Ok(Outcome::Ok)
}

fn log_schedule(schedule: &Schedule, tz: &jiff::tz::TimeZone, next: Option<SystemTime>) {
    match next {
        Some(at) => log::info!(
            "Next scheduled pass ({schedule}, {}): {}.",
            zone::name(tz),
            zone::format(tz, at).human
        ),
        None => log::warn!("PP_SCHEDULE {schedule} never fires; only pokes start passes."),
    }
}

/// One `apply` pass; its failure is logged, never fatal to `listen`.
fn run_pass(inv: &Invocation, target: &Target, why: &str) {
    let Some(target) = drop_unknown_services(inv, target) else {
        return;
    };
    let services = target.services();
    if services.is_empty() {
        log::info!("Starting a pass ({why}).");
    } else {
        log::info!("Starting a pass for {} ({why}).", services.join(", "));
    }
    let mut settings = inv.settings.clone();
    // A pass started by hand or by the timer may hold the lock; wait for it rather than skip.
    settings.wait = true;
    let pass = Invocation {
        settings,
        env: inv.env.clone(),
    };
    match engine::apply(&pass, &PassRequest { services }, false) {
        Ok(Outcome::Ok) => log::info!("The pass finished."),
        Ok(Outcome::SomeFailed) => {
            log::warn!("The pass finished, but some containers failed; see the lines above.");
        }
        Err(e) => log::error!(
            "The pass failed: {e:#}. listen keeps running and tries again on the next poke or \
             scheduled pass."
        ),
    }
}

/// The target without the services no container in scope answers to (each is logged), so one
/// caller's typo does not cost the other pokes of its window their pass. `None`: nothing is
/// left to run. When Docker cannot be asked, the target is kept and the pass reports why.
fn drop_unknown_services(inv: &Invocation, target: &Target) -> Option<Target> {
    if *target == Target::Everything {
        return Some(Target::Everything);
    }
    let all = match in_scope(inv) {
        Ok(all) => all,
        Err(e) => {
            log::debug!("Could not list the containers in scope before the pass: {e:#}");
            return Some(target.clone());
        }
    };
    let known =
        |name: &str| crate::engine::discover::select(all.clone(), &[name.to_string()]).is_ok();
    let (left, unknown) = target.clone().keep_known(known);
    for name in &unknown {
        log::warn!(
            "Dropped a poke for \"{}\": no single service or container of that name is in \
             scope (check the caller's URL).",
            relay_text::clean(name)
        );
    }
    if left.is_none() {
        log::info!("No pass: every service the pokes named was unknown.");
    }
    left
}

fn maybe_in_container() -> bool {
    std::path::Path::new("/.dockerenv").exists()
        && std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| {
            m.split("/containers/").skip(1).any(|rest| {
                let id = rest.split('/').next().unwrap_or_default();
                id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
            })
        })
}

fn in_scope(inv: &Invocation) -> Result<Vec<crate::engine::discover::Discovered>> {
    let docker = crate::docker::Docker::connect(inv.settings.docker_host.as_deref())?;
    Ok(inv.discover(&docker)?.1)
}

fn watch_signals(tx: mpsc::Sender<Wake>, stop: Arc<AtomicBool>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).context("handling SIGTERM")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                log::info!(
                    "Got {}; finishing the pass in progress (if any), then stopping.",
                    if signal == SIGTERM {
                        "SIGTERM"
                    } else {
                        "SIGINT"
                    }
                );
                stop.store(true, Ordering::Relaxed);
                let _ = tx.send(Wake::Shutdown);
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// `listen --show-url`: the one place the full poke URL is shown.
fn show_url(inv: &Invocation) -> Result<Outcome> {
    let data_dir = &inv.settings.data_dir;
    match identity::any_registration(data_dir)? {
        Some(r) => {
            crate::output::text(&format!(
                "{}\n\nAnyone with this URL can start passes (never choose what they update). \
                 Registered with {}.\n",
                r.poke_url, r.base_url
            ));
            Ok(Outcome::Ok)
        }
        None => Err(Failure::usage(format!(
            "there is no relay registration in {} yet: start `pullpilot listen` with \
             PP_WEBHOOK=true and PP_WEBHOOK_URL set, then run this again",
            data_dir.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_pokes_wake_the_loop_once_per_batch() {
        let pokes = RelayPokes::default();
        let wakes = (0..1_000_000).filter(|_| pokes.add()).count();
        assert_eq!(wakes, 1, "a flood must queue one event");
        assert_eq!(pokes.take(), 1_000_000);
        assert_eq!(pokes.take(), 0);
        assert!(
            pokes.add(),
            "the next poke after a take wakes the loop again"
        );
    }
}
