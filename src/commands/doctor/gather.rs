//! The gathering half of `doctor`: each fact from the seam the rest of pullpilot uses for it
//! (the [`Runtime`], the registry client, the compose CLI, the notifier, the file system,
//! `systemctl`), so unit tests drive it with the in-memory runtime, loopback servers and
//! temporary directories. Nothing here decides ok or fail.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use super::checks::{
    ComposeFacts, DataDirFacts, DirKind, EngineFacts, FileRead, LISTEN_UNIT, NotifyUrl, PASS_UNIT,
    RegistryAnswer, RegistryFacts, ScopeFacts, SecretShape, SettingsFile, SystemdFacts, TIMER_UNIT,
    WebhookFacts,
};
use crate::commands::READ_VARIABLES;
use crate::compose::{ComposeCli, ComposeSetting, ProjectFiles};
use crate::decide;
use crate::engine::check::repo_tag;
use crate::engine::discover::{self, Discovered};
use crate::engine::scope;
use crate::notify::{Event, EventKind, Notifier};
use crate::process::{self, RunLimits};
use crate::registry::RegistryClient;
use crate::runtime::Runtime;
use crate::settings::{Settings, envfile};
use crate::state::State;

/// How long one notification target may take for the test message.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the engine side found: Docker's answer, the scope and its containers, and one
/// registry answer per host.
pub(super) struct EngineSide {
    pub(super) engine: EngineFacts,
    pub(super) scope: ScopeFacts,
    pub(super) registries: RegistryFacts,
    pub(super) containers: Vec<Discovered>,
}

/// Docker, the scope and the registries, through `runtime` (reached at `endpoint`) and
/// `registry` (or why it could not be built).
pub(super) fn engine_side(
    settings: &Settings,
    env: &BTreeMap<String, String>,
    runtime: &dyn Runtime,
    endpoint: &str,
    registry: Result<&RegistryClient, &str>,
) -> EngineSide {
    let info = match runtime.engine_info() {
        Ok(info) => info,
        Err(e) => {
            return EngineSide {
                engine: EngineFacts::Failed(e),
                scope: ScopeFacts::Skipped,
                registries: RegistryFacts::Skipped("Docker is not reachable".into()),
                containers: Vec::new(),
            };
        }
    };
    let engine = EngineFacts::Reached {
        endpoint: endpoint.to_string(),
        info,
    };
    let found = scope::resolve(settings, runtime, env).and_then(|scope| {
        discover::discover(runtime, &scope, settings.compat_watchtower).map(|all| (scope, all))
    });
    let (scope, containers) = match found {
        Ok(found) => found,
        Err(e) => {
            return EngineSide {
                engine,
                scope: ScopeFacts::Failed(format!("{e:#}")),
                registries: RegistryFacts::Skipped("the scope does not resolve".into()),
                containers: Vec::new(),
            };
        }
    };
    let registries = match registry {
        Ok(client) => RegistryFacts::Checked(registry_answers(&containers, client, settings)),
        Err(e) => RegistryFacts::Unusable(e.to_string()),
    };
    EngineSide {
        engine,
        scope: ScopeFacts::Resolved {
            label: scope.label(),
            containers: containers
                .iter()
                .map(|c| c.display_name().to_string())
                .collect(),
            own_container: scope.own_container,
        },
        registries,
        containers,
    }
}

/// One check per registry host in scope: the first tag (by name) a pass would check there.
/// Pins in state are ignored (a pinned service's registry still matters once it is unpinned).
fn registry_answers(
    containers: &[Discovered],
    client: &RegistryClient,
    settings: &Settings,
) -> Vec<RegistryAnswer> {
    let state = State::default();
    let ctx = decide::Context {
        now: SystemTime::now(),
        default_soak: settings.soak,
        default_track: &settings.track,
        default_window: settings.window.as_ref(),
        approve_manual: settings.approve_manual,
        timezone: &settings.timezone,
        self_update: settings.self_update,
        state: &state,
    };
    let mut per_host = BTreeMap::new();
    for c in containers {
        if let Ok(reference) = decide::registry_target(&c.observed, &ctx) {
            let item = repo_tag(&reference);
            per_host
                .entry(item.host.clone())
                .and_modify(|first: &mut crate::registry::RepoTag| {
                    if item < *first {
                        first.clone_from(&item);
                    }
                })
                .or_insert(item);
        }
    }
    let items: Vec<_> = per_host.into_values().collect();
    let mut results = client.check_all(&items);
    items
        .into_iter()
        .map(|item| RegistryAnswer {
            host: item.host.clone(),
            item: format!("{}:{}", item.repository, item.tag),
            result: results.remove(&item).map_or(Ok(()), |r| r.map(|_| ())),
        })
        .collect()
}

/// The settings file at `path` against `env`: which variables pullpilot reads (`PP_*` and
/// the few others) have another value here than in the file, an empty value counting as
/// unset.
pub(super) fn settings_file(path: &Path, env: &BTreeMap<String, String>) -> SettingsFile {
    let read = match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileRead::Missing,
        Err(e) => FileRead::Unreadable(e.to_string()),
        Ok(_) => match fs::File::open(path) {
            Err(e) => FileRead::Unreadable(e.to_string()),
            Ok(_) => match envfile::read(path) {
                Err(e) => FileRead::Malformed(format!("{e:#}")),
                Ok(pairs) => {
                    let file: BTreeMap<String, String> = pairs.into_iter().collect();
                    let read_here =
                        |name: &str| name.starts_with("PP_") || READ_VARIABLES.contains(&name);
                    let set = |value: Option<&String>| value.filter(|v| !v.is_empty()).cloned();
                    let names: BTreeSet<&String> = file
                        .keys()
                        .chain(env.keys())
                        .filter(|n| read_here(n))
                        .collect();
                    FileRead::Read {
                        count: file.keys().filter(|n| read_here(n)).count(),
                        differing: names
                            .into_iter()
                            .filter(|n| set(file.get(*n)) != set(env.get(*n)))
                            .cloned()
                            .collect(),
                    }
                }
            },
        },
    };
    SettingsFile {
        path: path.to_path_buf(),
        read,
    }
}

/// The compose CLI, and for each compose project in scope whether its files are readable here.
pub(super) fn compose(
    cli: &ComposeCli,
    setting: &ComposeSetting,
    containers: &[Discovered],
) -> ComposeFacts {
    if *setting == ComposeSetting::Off {
        return ComposeFacts::Off;
    }
    match cli.found_version() {
        Ok((command, version)) => {
            let mut seen = BTreeSet::new();
            let projects = containers
                .iter()
                .filter(|c| c.project.as_ref().is_some_and(|p| seen.insert(p.clone())))
                .map(|c| {
                    let name = c.project.clone().unwrap_or_default();
                    (
                        name,
                        ProjectFiles::from_labels(&c.labels)
                            .map(|_| ())
                            .map_err(|e| e.0),
                    )
                })
                .collect();
            ComposeFacts::Found {
                command,
                version,
                projects,
            }
        }
        Err(why) => ComposeFacts::Missing {
            explicit: matches!(setting, ComposeSetting::Command(_)),
            why,
        },
    }
}

/// `PP_DATA_DIR` on disk. Writing is tried with a probe file (created, synced, removed).
pub(super) fn data_dir(path: &Path, in_container: bool, mountinfo: Option<&str>) -> DataDirFacts {
    let kind = match fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => DirKind::NotADirectory,
        Ok(meta) => DirKind::Present {
            mode: meta.mode() & 0o7777,
            owner: meta.uid(),
            me: fs::metadata("/proc/self").ok().map(|m| m.uid()),
            writable: probe_write(path),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DirKind::Missing,
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => DirKind::NotADirectory,
        Err(e) => DirKind::Unreadable(e.to_string()),
    };
    DataDirFacts {
        path: path.to_path_buf(),
        kind,
        in_container,
        on_volume: mountinfo.and_then(|m| on_volume(path, m)),
    }
}

fn probe_write(dir: &Path) -> Result<(), String> {
    let probe = dir.join(format!(".doctor-probe-{}", std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&probe)
        .and_then(|mut f| {
            f.write_all(b"pullpilot doctor\n")?;
            f.sync_all()
        });
    let removed = fs::remove_file(&probe);
    match (written, removed) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), _) => Err(e.to_string()),
        (Ok(()), Err(e)) => Err(format!(
            "a probe file was written but could not be removed: {e}; delete {}",
            probe.display()
        )),
    }
}

// Shared with the engine's start-up warning about a data directory that is not a volume.
pub(super) use crate::engine::scope::{in_container, on_volume};

/// Each `PP_NOTIFY_URL` entry on its own (one bad URL does not hide the others); with
/// `send_test`, a test message to each valid one.
pub(super) fn notify(
    urls: &[String],
    zone: &jiff::tz::TimeZone,
    send_test: bool,
    host: &str,
) -> Vec<NotifyUrl> {
    urls.iter()
        .filter(|u| !u.trim().is_empty())
        .map(|url| {
            let redacted = crate::notify::redact(url);
            let notifier = Notifier::new(std::slice::from_ref(url), zone, NOTIFY_TIMEOUT);
            match notifier {
                Err(e) => NotifyUrl {
                    redacted,
                    parsed: Err(format!("{e:#}")),
                    sent: None,
                },
                Ok(notifier) => {
                    let sent = send_test.then(|| {
                        notifier
                            .send_each(&test_event(host))
                            .into_iter()
                            .next()
                            .map_or(Ok(()), |(_, result)| result)
                    });
                    NotifyUrl {
                        redacted,
                        parsed: Ok(()),
                        sent,
                    }
                }
            }
        })
        .collect()
}

fn test_event(host: &str) -> Event {
    Event {
        to_tag: None,
        from_tag: None,
        kind: EventKind::Test,
        container: host.to_string(),
        service: None,
        project: None,
        image: "-".into(),
        from_digest: None,
        to_digest: None,
        message: format!(
            "This is a test message from `pullpilot doctor --send-test` on {host}; no container \
             was changed."
        ),
        at: SystemTime::now(),
        rollout_at: None,
    }
}

/// The settings `listen` reads for the relay and the local receiver.
pub(super) fn webhook(settings: &Settings) -> WebhookFacts {
    let schedule = crate::time::Schedule::parse(&settings.schedule)
        .map(|_| ())
        .map_err(|e| (settings.schedule.clone(), e.clone()));
    let url = settings.webhook_url.as_deref();
    WebhookFacts {
        schedule,
        relay: settings.webhook,
        relay_url: url.map(crate::listen::identity::redact_userinfo),
        url_problem: url.and_then(|u| crate::listen::check_relay_url(u).err()),
        registered: url.is_some_and(|u| {
            crate::listen::identity::saved_registration(&settings.data_dir, u).is_some()
        }),
        secret: settings.webhook_secret.as_ref().map(|s| SecretShape {
            length: s.0.chars().count(),
            padded: s.0.trim() != s.0,
        }),
    }
}

/// The packaged units' states, where systemd runs (`running`: `/run/systemd/system` exists,
/// as `sd_booted` tells), asked of `systemctl`.
pub(super) fn systemd(running: bool, systemctl: &str) -> SystemdFacts {
    if !running {
        return SystemdFacts::NotRunning;
    }
    SystemdFacts::Units(
        [TIMER_UNIT, LISTEN_UNIT, PASS_UNIT]
            .iter()
            .map(|unit| ((*unit).to_string(), is_active(systemctl, unit)))
            .collect(),
    )
}

/// `systemctl is-active UNIT`'s word; it exits non-zero for anything but `active`, so only
/// an empty answer is an error.
fn is_active(systemctl: &str, unit: &str) -> Result<String, String> {
    let mut cmd = Command::new(systemctl);
    cmd.args(["is-active", unit]);
    let mut output = Vec::new();
    let limits = RunLimits {
        timeout: Duration::from_secs(10),
        max_output: 4096,
    };
    let finished = process::run(&mut cmd, None, limits, |stream, chunk| {
        if stream == process::Stream::Stdout {
            output.extend_from_slice(chunk);
        }
    });
    let word = String::from_utf8_lossy(&output).trim().to_string();
    match finished {
        Ok(_) if !word.is_empty() => Ok(word),
        Ok(f) => Err(format!(
            "`{systemctl} is-active` printed nothing and exited with {}",
            f.status
        )),
        Err(process::RunError::Start(e)) => Err(format!("`{systemctl}` could not be started: {e}")),
        Err(process::RunError::TimedOut { .. }) => {
            Err(format!("`{systemctl} is-active` did not answer within 10s"))
        }
        Err(process::RunError::Wait(e)) => Err(format!("waiting for `{systemctl}` failed: {e}")),
    }
}
