//! `pullpilot relay`: the relay protocol v1 as a self-hostable server.
//!
//! One process, plain HTTP and WebSocket (a TLS reverse proxy goes in front), one thread per
//! connection. That holds 5,000 listeners on 2 cores within issue #14's goals (B7 in
//! BENCHMARKS.md: 120 MiB, about 21 KiB resident per idle listener, its thread's stack being
//! mostly untouched virtual memory; heartbeats wake one thread at a time), so the relay has no
//! event loop; the connection cap follows the descriptor and task limits up to 10,000. Routes and answers follow the public relay exactly (`webhook::protocol`, the
//! behaviour reference §5.4–5.5), with these fixes:
//!
//! - registrations, `lastSeen` and the pending flag live in one file that survives restarts;
//!   `lastSeen` is written at most once a minute, not once per poke;
//! - pruning is a sweep at start and every hour, and a connected listener keeps its webhook
//!   alive (the reference's weekly refresh never ran after hibernation);
//! - a poke within 5 s of the last delivery is not dropped: one delivery (with the latest
//!   reason) is sent when the 5 s are over;
//! - an authenticated socket silent for two minutes is closed (clients ping every 30 s), so a
//!   vanished listener cannot hold one of the four places forever;
//! - slow clients: a request (head and body) must arrive within 10 s in all, a client network
//!   (IPv4 address, IPv6 /64) may have 16 connections without a complete request, and the total
//!   is sized to the file descriptor and task limits; failing accepts back off and log once a
//!   minute;
//! - registrations are capped in total and per client network, and a provision appends to a
//!   journal instead of rewriting the whole file.
//!
//! Over 500 lines: the relay's start, accept loop, saves and shutdown are one lifecycle.

mod limits;
mod room;
mod routes;
mod socket;
mod store;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result};

use crate::cli::RelayArgs;
use crate::error::{Failure, Outcome};
use crate::webhook::admission::{self, AcceptBackoff, ConnLimits, Refusal};
use limits::ProvisionLimiter;
use room::{Room, lock};
use store::{RegistrationStore, short_id};

/// Most connections served at once; more are answered 503 and closed. Lowered at start when
/// the file descriptor or task limit is too small for it (see [`connection_cap`]). Each is a
/// thread of about 21 KiB resident: B7 held 9,500 listeners in 221 MiB, under its 512 MiB.
const MAX_CONNECTIONS: usize = 10_000;
/// Connections one client network may hold before its request is complete; more get 429.
const MAX_PENDING_PER_CLIENT: usize = 16;
/// Descriptors kept for everything but connections (state files, signals, std streams).
const SPARE_FDS: u64 = 64;
/// Tasks kept for everything but connection threads (main, housekeeping, signals, and other
/// processes in the same cgroup, such as an `ExecStartPre`).
const SPARE_TASKS: u64 = 16;
/// `--prune-after` below this is refused: it is meant in days, and `0` forgets everything.
const MIN_PRUNE_AFTER: Duration = Duration::from_secs(86_400);
/// The journal is folded into the snapshot once it has this many entries (or a minute passed).
const COMPACT_AFTER: usize = 256;
/// How often `lastSeen` changes are written, at most.
const SAVE_EVERY: Duration = Duration::from_secs(60);
/// How often stale registrations are looked for (besides at start).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How stale `lastSeen` may get while a listener stays connected.
const CONNECTED_TOUCH_EVERY: Duration = Duration::from_secs(3600);

/// The relay's settings, from the command line.
#[derive(Debug)]
pub(crate) struct Config {
    /// The address actually bound (the port is known even for `:0`).
    pub(crate) local: SocketAddr,
    /// `--public-url` without trailing slashes.
    pub(crate) public_url: Option<String>,
    pub(crate) challenge_ttl: Duration,
    pub(crate) auth_timeout: Duration,
    pub(crate) prune_after: Duration,
    pub(crate) max_registrations: usize,
    pub(crate) max_per_network: usize,
}

/// Work for the housekeeping thread.
#[derive(Debug, Default)]
struct Chores {
    /// Deferred poke deliveries: when, and for which webhook.
    deferred: Vec<(Instant, String)>,
    save_now: bool,
    stop: bool,
}

/// Everything the connection threads share.
pub(crate) struct Relay {
    pub(crate) cfg: Config,
    store: Mutex<RegistrationStore>,
    rooms: Mutex<HashMap<String, Arc<Mutex<Room>>>>,
    pub(crate) provisions: Mutex<ProvisionLimiter>,
    chores: Mutex<Chores>,
    chores_changed: Condvar,
    /// Serialises file writes, so a later snapshot is never overwritten by an earlier one.
    saving: Mutex<()>,
    stopping: AtomicBool,
    limits: Arc<ConnLimits>,
}

pub fn run(args: &RelayArgs) -> Result<Outcome> {
    let public_url = args
        .public_url
        .as_deref()
        .map(routes::parse_public_url)
        .transpose()?;
    if args.prune_after < MIN_PRUNE_AFTER {
        return Err(Failure::usage(format!(
            "--prune-after {} is too short: it is how long an unused webhook is kept, at least \
             1 day (a bare number counts seconds); use days, such as --prune-after 180d",
            humantime::format_duration(args.prune_after)
        )));
    }
    let mut store = RegistrationStore::open(&args.state_dir)?;
    let pruned = prune_at_start(&mut store, args.prune_after)?;
    let open_files = admission::open_files_limit();
    let tasks = tasks_limit();
    let cap = connection_cap(open_files, tasks);
    if cap < MAX_CONNECTIONS {
        if cap == connection_cap(open_files, None) {
            log::warn!(
                "Serving at most {cap} connections at once (not {MAX_CONNECTIONS}): the limit \
                 on open files is {}; raise it (LimitNOFILE=20480 in the unit, ulimit -n) for \
                 more.",
                open_files.unwrap_or_default()
            );
        } else {
            log::warn!(
                "Serving at most {cap} connections at once (not {MAX_CONNECTIONS}): each takes \
                 a thread, and this service may have {} tasks; raise it (TasksMax=12000 in the \
                 unit) for more.",
                tasks.unwrap_or_default()
            );
        }
    }
    let listener = bind(args.listen)?;
    let local = listener
        .local_addr()
        .context("reading the relay's bound address")?;
    let loaded = store.len();
    let path = store.path();
    let relay = Arc::new(Relay {
        cfg: Config {
            local,
            public_url,
            challenge_ttl: args.challenge_ttl,
            auth_timeout: args.auth_timeout,
            prune_after: args.prune_after,
            max_registrations: args.max_registrations,
            max_per_network: args.max_registrations_per_network,
        },
        store: Mutex::new(store),
        rooms: Mutex::new(HashMap::new()),
        provisions: Mutex::new(ProvisionLimiter::default()),
        chores: Mutex::new(Chores::default()),
        chores_changed: Condvar::new(),
        saving: Mutex::new(()),
        stopping: AtomicBool::new(false),
        limits: ConnLimits::new(cap, MAX_PENDING_PER_CLIENT),
    });
    watch_signals(&relay)?;
    let housekeeper = {
        let relay = Arc::clone(&relay);
        thread::Builder::new()
            .name("relay-housekeeping".into())
            .spawn(move || relay.housekeep())
            .context("starting the relay's housekeeping thread")?
    };
    let pruned_note = if pruned > 0 {
        format!(
            " ({pruned} unused for over {} forgotten)",
            humantime::format_duration(args.prune_after)
        )
    } else {
        String::new()
    };
    log::info!(
        "Relay listening on http://{local} with {loaded} registration{} from {}{pruned_note}.",
        if loaded == 1 { "" } else { "s" },
        path.display()
    );
    if relay.cfg.public_url.is_none() {
        log::info!(
            "Poke and listen URLs follow each request's Host header; set --public-url to the \
             address clients use if that is not what they send."
        );
    }
    accept_loop(&relay, &listener);
    relay.shut_down();
    let _ = housekeeper.join();
    // New registrations are already in the journal; only activity times and pending flags can
    // be newer in memory. Nothing changed, nothing written: a full disk cannot fail the stop.
    if relay.with_store(|s| s.dirty) {
        relay.save().context(
            "saving the registrations before exiting; the last minute of activity may be lost",
        )?;
        log::info!("Relay stopped; registrations saved.");
    } else {
        log::info!("Relay stopped; nothing to save.");
    }
    Ok(Outcome::Ok)
}

/// Connections at once that fit in the descriptor limit (each WebSocket needs two: the socket
/// and the writer's clone) and in the task limit (each is a thread), with some of both kept for
/// the rest.
fn connection_cap(open_files: Option<u64>, tasks: Option<u64>) -> usize {
    let by_files = open_files.map_or(u64::MAX, |limit| limit.saturating_sub(SPARE_FDS) / 2);
    let by_tasks = tasks.map_or(u64::MAX, |limit| limit.saturating_sub(SPARE_TASKS));
    let fit = by_files.min(by_tasks);
    usize::try_from(fit).map_or(MAX_CONNECTIONS, |fit| fit.clamp(16, MAX_CONNECTIONS))
}

/// How many tasks (threads included) this process's cgroup may hold: systemd's `TasksMax`,
/// which defaults to 15 % of the kernel's pid limit (4,915 where that is 32,768). `None` when
/// unlimited or unknown.
fn tasks_limit() -> Option<u64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let file = pids_max_file(&cgroups)?;
    parse_pids_max(&std::fs::read_to_string(file).ok()?)
}

/// Where the `pids.max` of the cgroup described by `/proc/self/cgroup` is: the `pids`
/// controller's line under cgroup v1, the unified (`0::`) one under v2.
fn pids_max_file(cgroups: &str) -> Option<String> {
    let mut unified = None;
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let path = path.trim_end_matches('/');
        if controllers.split(',').any(|c| c == "pids") {
            return Some(format!("/sys/fs/cgroup/pids{path}/pids.max"));
        }
        if controllers.is_empty() {
            unified = Some(format!("/sys/fs/cgroup{path}/pids.max"));
        }
    }
    unified
}

/// `pids.max`: a number, or `max` for no limit.
fn parse_pids_max(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            Failure::usage(format!(
                "cannot listen on {addr}: the address is already in use (another relay or web \
                 server?); stop it or choose another address with --listen"
            ))
        } else {
            Failure::usage(format!(
                "cannot listen on {addr}: {e}; choose another address with --listen"
            ))
        }
    })
}

/// Drops registrations unused for longer than `after` before serving anything.
fn prune_at_start(store: &mut RegistrationStore, after: Duration) -> Result<usize> {
    let stale = store.stale(SystemTime::now(), after);
    if !stale.is_empty() {
        back_up_before_prune(store)?;
    }
    for id in &stale {
        store.remove(id);
        log_forgotten(id, after);
    }
    if !stale.is_empty() {
        let path = store.path();
        let dir = path
            .parent()
            .expect("the file is inside the state directory");
        store::write_atomic(dir, &store.to_bytes())
            .context("saving the registrations after pruning")?;
        store.dirty = false;
        store.snapshot_saved(store.journal_entries)?;
    }
    Ok(stale.len())
}

/// Keeps the registrations as they are now in `registrations.before-prune.json`, so a prune
/// that went wrong (a clock jump, a mistaken flag) can be undone by hand.
fn back_up_before_prune(store: &RegistrationStore) -> Result<()> {
    let path = store.path();
    let dir = path
        .parent()
        .expect("the file is inside the state directory");
    store::write_file(dir, store::BACKUP_NAME, &store.to_bytes())
        .context("keeping a copy of the registrations before forgetting unused ones")?;
    log::info!(
        "Kept a copy of the registrations in {} before forgetting unused webhooks.",
        dir.join(store::BACKUP_NAME).display()
    );
    Ok(())
}

fn log_forgotten(id: &str, after: Duration) {
    log::info!(
        "Forgot webhook {} after more than {} without activity.",
        short_id(id),
        humantime::format_duration(after)
    );
}

/// SIGTERM and SIGINT stop accepting, close the sockets and save (see `run`).
fn watch_signals(relay: &Arc<Relay>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .context("installing the SIGTERM/SIGINT handlers")?;
    let relay = Arc::clone(relay);
    thread::Builder::new()
        .name("relay-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let name = if signal == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                log::info!("Got {name}; closing connections and saving registrations.");
                relay.stopping.store(true, Ordering::SeqCst);
                // Wake the accept loop with a connection of our own.
                let _ = TcpStream::connect_timeout(
                    &wake_address(relay.cfg.local),
                    Duration::from_secs(2),
                );
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// Where to connect to reach our own listener.
fn wake_address(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

fn accept_loop(relay: &Arc<Relay>, listener: &TcpListener) {
    let mut backoff = AcceptBackoff::default();
    loop {
        let accepted = listener.accept();
        if relay.stopping.load(Ordering::SeqCst) {
            break;
        }
        let (mut stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                backoff.on_error("relay", &e);
                continue;
            }
        };
        backoff.succeeded();
        let slot = match relay.limits.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(Refusal::Full) => {
                routes::refuse_busy(&mut stream);
                continue;
            }
            Err(Refusal::PerClient) => {
                routes::refuse_too_many(&mut stream);
                continue;
            }
        };
        let worker = Arc::clone(relay);
        let spawned = thread::Builder::new()
            .name("relay-conn".into())
            .spawn(move || routes::serve(&worker, stream, peer, slot));
        if let Err(e) = spawned {
            log::warn!(
                "Could not start a thread for a connection from {peer} ({e}); it was dropped."
            );
        }
    }
}

impl Relay {
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Runs `f` on the registrations.
    pub(crate) fn with_store<R>(&self, f: impl FnOnce(&mut RegistrationStore) -> R) -> R {
        f(&mut lock(&self.store))
    }

    pub(crate) fn is_known(&self, id: &str) -> bool {
        self.with_store(|s| s.contains(id))
    }

    /// The live side of a registered webhook; `None` when the id is unknown.
    pub(crate) fn room(&self, id: &str) -> Option<Arc<Mutex<Room>>> {
        if !self.is_known(id) {
            return None;
        }
        Some(Arc::clone(
            lock(&self.rooms).entry(id.to_string()).or_default(),
        ))
    }

    /// Sets or clears the pending flag, saving soon if that changed it.
    pub(crate) fn set_pending(&self, id: &str, pending: bool) -> bool {
        let changed = self.with_store(|s| s.set_pending(id, pending));
        if changed {
            self.request_save();
        }
        changed
    }

    /// Asks the housekeeping thread to save now instead of with the next minute.
    pub(crate) fn request_save(&self) {
        lock(&self.chores).save_now = true;
        self.chores_changed.notify_all();
    }

    /// Arms the timer of a deferred poke delivery.
    pub(crate) fn schedule_delivery(&self, due: Instant, id: &str) {
        lock(&self.chores).deferred.push((due, id.to_string()));
        self.chores_changed.notify_all();
    }

    /// Writes the registrations file from the current state and empties the journal.
    pub(crate) fn save(&self) -> Result<()> {
        let _serial = lock(&self.saving);
        let (bytes, path, entries) = self.with_store(|s| {
            s.dirty = false;
            (s.to_bytes(), s.path(), s.journal_entries)
        });
        let dir = path
            .parent()
            .expect("the file is inside the state directory");
        store::write_atomic(dir, &bytes).inspect_err(|_| self.with_store(|s| s.dirty = true))?;
        self.with_store(|s| s.snapshot_saved(entries))
    }

    /// The housekeeping thread: deferred deliveries, saves, pruning.
    fn housekeep(&self) {
        let mut last_save = Instant::now();
        let mut next_prune = Instant::now() + PRUNE_EVERY;
        let mut next_tick = Instant::now() + SAVE_EVERY;
        loop {
            let (due, save_now) = {
                let mut chores = lock(&self.chores);
                let now = Instant::now();
                let wake = chores
                    .deferred
                    .iter()
                    .map(|(at, _)| *at)
                    .chain([next_tick, next_prune])
                    .min()
                    .expect("the chain has two fixed entries");
                if !chores.stop && !chores.save_now && wake > now {
                    chores = self
                        .chores_changed
                        .wait_timeout(chores, wake - now)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
                if chores.stop {
                    return;
                }
                let now = Instant::now();
                let (due, later): (Vec<_>, Vec<_>) =
                    chores.deferred.drain(..).partition(|(at, _)| *at <= now);
                chores.deferred = later;
                (due, std::mem::take(&mut chores.save_now))
            };
            let now = Instant::now();
            for (_, id) in due {
                self.fire_deferred(&id, now);
            }
            if now >= next_tick {
                next_tick = now + SAVE_EVERY;
                self.touch_connected();
                lock(&self.provisions).forget_expired(now);
            }
            if now >= next_prune {
                next_prune = now + PRUNE_EVERY;
                self.prune();
            }
            let (dirty, journaled) = self.with_store(|s| (s.dirty, s.journal_entries));
            let due = now.duration_since(last_save) >= SAVE_EVERY;
            if save_now || journaled >= COMPACT_AFTER || ((dirty || journaled > 0) && due) {
                match self.save() {
                    Ok(()) => last_save = now,
                    Err(e) => log::error!(
                        "Could not save the relay's registrations ({e:#}); check the state directory. Retrying in a minute."
                    ),
                }
            }
        }
    }

    fn fire_deferred(&self, id: &str, now: Instant) {
        let Some(room) = lock(&self.rooms).get(id).map(Arc::clone) else {
            return;
        };
        let mut room = lock(&room);
        if room.fire_deferred(now) {
            // The listener left during the window: keep the poke for its return.
            self.set_pending(id, true);
        }
    }

    /// Keeps webhooks with a connected listener from looking unused.
    fn touch_connected(&self) {
        let rooms: Vec<_> = lock(&self.rooms)
            .iter()
            .map(|(id, room)| (id.clone(), Arc::clone(room)))
            .collect();
        let now = SystemTime::now();
        for (id, room) in rooms {
            let room = lock(&room);
            if room.authed_count() > 0 {
                self.with_store(|s| s.touch_if_older(&id, now, CONNECTED_TOUCH_EVERY));
            }
        }
    }

    /// Forgets webhooks unused for longer than `--prune-after` that have no socket open.
    fn prune(&self) {
        let after = self.cfg.prune_after;
        let stale = self.with_store(|s| s.stale(SystemTime::now(), after));
        if stale.is_empty() {
            return;
        }
        if let Err(e) = self.with_store(|s| back_up_before_prune(s)) {
            log::error!(
                "Not forgetting unused webhooks this hour: {e:#}; check the state directory."
            );
            return;
        }
        let mut forgotten = 0;
        let mut rooms = lock(&self.rooms);
        for id in stale {
            if let Some(room) = rooms.get(&id) {
                let room = lock(room);
                if room.has_members() || room.scheduled().is_some() {
                    continue;
                }
            }
            rooms.remove(&id);
            if self.with_store(|s| s.remove(&id)).is_some() {
                forgotten += 1;
                log_forgotten(&id, after);
            }
        }
        // Rooms of webhooks that were never registered (raced with pruning) go too.
        rooms.retain(|id, room| self.is_known(id) || lock(room).has_members());
        drop(rooms);
        if forgotten > 0 {
            self.request_save();
        }
    }

    /// Stops the housekeeping thread and closes every socket with 1001.
    fn shut_down(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let rooms: Vec<_> = lock(&self.rooms).values().map(Arc::clone).collect();
        for room in rooms {
            lock(&room).close_all(1001, "relay shutting down");
        }
        lock(&self.chores).stop = true;
        self.chores_changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_fits_the_descriptor_limit() {
        let table = [
            (None, 10_000),
            (Some(u64::MAX), 10_000),
            (Some(1_048_576), 10_000),
            (Some(20_480), 10_000),
            (Some(20_000), 9_968),
            (Some(4096), 2016),
            (Some(1024), 480),
            (Some(100), 18),
            (Some(10), 16),
        ];
        for (limit, cap) in table {
            assert_eq!(connection_cap(limit, None), cap, "{limit:?}");
        }
    }

    /// Thread per connection: under systemd's default `TasksMax` (4,915 with a pid limit of
    /// 32,768) the 4,900th listener's thread could not start; the cap stays below it instead.
    #[test]
    fn the_connection_cap_fits_the_task_limit() {
        let table = [
            (Some(20_480), None, 10_000),
            (Some(20_480), Some(4915), 4899),
            (Some(4096), Some(4915), 2016),
            (None, Some(100_000), 10_000),
            (Some(20_480), Some(10), 16),
        ];
        for (files, tasks, cap) in table {
            assert_eq!(connection_cap(files, tasks), cap, "{files:?} {tasks:?}");
        }
    }

    #[test]
    fn the_task_limit_is_read_from_either_cgroup_version() {
        let v2 = "0::/system.slice/pullpilot-relay.service\n";
        assert_eq!(
            pids_max_file(v2).unwrap(),
            "/sys/fs/cgroup/system.slice/pullpilot-relay.service/pids.max"
        );
        assert_eq!(pids_max_file("0::/\n").unwrap(), "/sys/fs/cgroup/pids.max");
        let v1 = "9:name=systemd:/x\n8:pids:/system.slice/r.service\n1:cpu,cpuacct:/\n0::/\n";
        assert_eq!(
            pids_max_file(v1).unwrap(),
            "/sys/fs/cgroup/pids/system.slice/r.service/pids.max"
        );
        assert_eq!(pids_max_file("garbage"), None);
        assert_eq!(parse_pids_max("4915\n"), Some(4915));
        assert_eq!(parse_pids_max("max\n"), None);
        assert_eq!(parse_pids_max(""), None);
    }

    #[test]
    fn shutdown_wakes_the_listener_through_a_reachable_address() {
        let table = [
            ("0.0.0.0:8080", "127.0.0.1:8080"),
            ("[::]:8080", "[::1]:8080"),
            ("192.0.2.7:80", "192.0.2.7:80"),
            ("127.0.0.1:1", "127.0.0.1:1"),
        ];
        for (bound, wake) in table {
            assert_eq!(
                wake_address(bound.parse().unwrap()),
                wake.parse::<SocketAddr>().unwrap(),
                "{bound}"
            );
        }
    }
}
