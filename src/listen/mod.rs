//! `pullpilot listen`: stay running and turn pokes into passes.
//!
//! Three sources start a pass, all through the same `apply` (so every gate holds: soak, pins,
//! blocked digests, health): the relay connection ([`relay_client`]), the local receiver
//! ([`receiver`]), and the `PP_SCHEDULE` floor, which runs whatever the relay does. One pass runs
//! at a time; pokes are debounced and joined ([`trigger`]). SIGTERM or SIGINT lets the pass in
//! progress finish, then exits.

pub mod identity;
mod receiver;
mod relay_client;
pub mod trigger;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result};

use crate::cli::ListenArgs;
use crate::commands::{self, Invocation};
use crate::error::{Failure, Outcome};
use crate::notify::tz::Zone;
use crate::schedule::Schedule;
use crate::webhook::protocol;
use trigger::{Target, Trigger};

/// What the main loop reacts to.
#[derive(Debug)]
pub enum Event {
    /// Run a pass soon, for one service or (None) everything in scope.
    Poke { service: Option<String> },
    /// SIGTERM or SIGINT.
    Shutdown,
}

/// How long provisioning may take.
const PROVISION_TIMEOUT: Duration = Duration::from_secs(20);
/// The main loop looks at the wall clock at least this often, so a clock step (NTP at boot)
/// moves the schedule within a minute.
const CLOCK_CHECK: Duration = Duration::from_secs(60);

pub fn run(inv: &Invocation, args: &ListenArgs) -> Result<Outcome> {
    let settings = &inv.settings;
    if args.show_url {
        return show_url(inv);
    }
    let schedule = Schedule::parse(&settings.schedule).map_err(|e| {
        Failure::usage(format!(
            "PP_SCHEDULE={:?} is not a schedule: {e}. Use five cron fields such as \"0 3 * * *\" \
             or a descriptor such as @daily",
            settings.schedule
        ))
    })?;
    let zone =
        Zone::load(&settings.timezone).map_err(|e| Failure::usage(format!("PP_TIMEZONE: {e}")))?;
    let relay_url = match (settings.webhook, &settings.webhook_url) {
        (true, Some(url)) => Some(url.clone()),
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
        (Some(_), Some(s)) => Some(s.0.clone()),
        (None, _) => None,
    };

    let (tx, rx) = mpsc::channel::<Event>();
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
    if let Some(base_url) = relay_url {
        let identity = identity::load_or_create(&settings.data_dir)?;
        relay_client::RelayClient {
            base_url,
            data_dir: settings.data_dir.clone(),
            identity,
            agent: crate::notify::http::agent(PROVISION_TIMEOUT),
            events: tx.clone(),
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
        schedule
            .next_after(&zone, after)
            .map(|t| t + protocol::random_up_to(settings.jitter))
    };
    let mut scheduled = next_fire(SystemTime::now());
    log_schedule(&schedule, &zone, scheduled);

    // A pass at start heals anything an earlier run left half-done and catches up.
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
            Ok(Event::Poke { service }) => {
                trigger.poke(Instant::now(), service);
                continue;
            }
            Ok(Event::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
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

fn log_schedule(schedule: &Schedule, zone: &Zone, next: Option<SystemTime>) {
    match next {
        Some(at) => log::info!(
            "Next scheduled pass ({schedule}, {}): {}.",
            zone.name(),
            zone.format(at).human
        ),
        None => log::warn!("PP_SCHEDULE {schedule} never fires; only pokes start passes."),
    }
}

/// One `apply` pass; its failure is logged, never fatal to `listen`.
fn run_pass(inv: &Invocation, target: &Target, why: &str) {
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
    match commands::apply_pass(&pass, services) {
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

fn watch_signals(tx: mpsc::Sender<Event>, stop: Arc<AtomicBool>) -> Result<()> {
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
                let _ = tx.send(Event::Shutdown);
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
