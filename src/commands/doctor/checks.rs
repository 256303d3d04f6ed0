//! The pure half of `doctor`: the gathered facts → one finding per line (ok, warn, fail or
//! skip, with what to do), and their text and JSON forms. No I/O, so every rule is tested
//! with plain values.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::docker::{DockerError, EngineInfo};
use crate::registry::CheckError;

/// The JSON document's version; bumped when a field changes meaning or goes away.
pub(super) const SCHEMA_VERSION: u32 = 1;

/// How one line came out. Only `Fail` changes the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Level {
    Ok,
    /// Not checked, because what it needs failed first.
    Skip,
    Warn,
    Fail,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Skip => "skip",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

/// One line of the report: which check, how it came out, what was found and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(super) struct Finding {
    pub(super) check: &'static str,
    pub(super) level: Level,
    pub(super) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) fix: Option<String>,
}

fn finding(check: &'static str, level: Level, message: String, fix: Option<String>) -> Finding {
    Finding {
        check,
        level,
        message,
        fix,
    }
}

/// Everything `doctor` looked at.
pub(super) struct Facts {
    pub(super) settings_file: SettingsFile,
    pub(super) engine: EngineFacts,
    pub(super) compose: ComposeFacts,
    pub(super) scope: ScopeFacts,
    pub(super) data_dir: DataDirFacts,
    pub(super) registries: RegistryFacts,
    pub(super) notify: Vec<NotifyUrl>,
    pub(super) webhook: WebhookFacts,
    pub(super) systemd: SystemdFacts,
}

/// The settings file the packaged units read (`EnvironmentFile=`), compared with what this run
/// sees.
pub(super) struct SettingsFile {
    pub(super) path: PathBuf,
    pub(super) read: FileRead,
}

pub(super) enum FileRead {
    Missing,
    /// It exists but cannot be read (not root?).
    Unreadable(String),
    /// A line systemd would read differently; the message names the file and line.
    Malformed(String),
    Read {
        count: usize,
        /// Variables pullpilot reads whose value here differs from the file's (names only:
        /// values may be secrets).
        differing: Vec<String>,
    },
}

/// The Docker daemon: its answer, or why there was none.
pub(super) enum EngineFacts {
    Reached { endpoint: String, info: EngineInfo },
    Failed(DockerError),
}

/// The compose CLI (`PP_COMPOSE`).
pub(super) enum ComposeFacts {
    Off,
    Found {
        command: String,
        version: String,
        /// Each compose project in scope, and why compose cannot be handed its files here.
        projects: Vec<(String, Result<(), String>)>,
    },
    Missing {
        /// `PP_COMPOSE` names a command (rather than `auto`).
        explicit: bool,
        why: String,
    },
}

/// What the scope resolved to.
pub(super) enum ScopeFacts {
    /// Docker could not be asked.
    Skipped,
    Failed(String),
    Resolved {
        label: String,
        /// Compose service or container names.
        containers: Vec<String>,
        own_container: Option<String>,
    },
}

/// `PP_DATA_DIR` as found on disk.
pub(super) struct DataDirFacts {
    pub(super) path: PathBuf,
    pub(super) kind: DirKind,
    pub(super) in_container: bool,
    /// Whether it is on a mount of its own (a volume) rather than the container's root file
    /// system; `None` when that could not be told.
    pub(super) on_volume: Option<bool>,
}

pub(super) enum DirKind {
    Missing,
    NotADirectory,
    Unreadable(String),
    Present {
        mode: u32,
        owner: u32,
        /// The user running pullpilot, when known.
        me: Option<u32>,
        /// A probe file could be written, synced and removed; else why not.
        writable: Result<(), String>,
    },
}

/// One manifest `HEAD` per registry host in scope.
pub(super) enum RegistryFacts {
    Skipped(String),
    /// The registry client could not be built (a malformed `config.json`).
    Unusable(String),
    Checked(Vec<RegistryAnswer>),
}

pub(super) struct RegistryAnswer {
    pub(super) host: String,
    /// `repository:tag`, the one asked about.
    pub(super) item: String,
    pub(super) result: Result<(), CheckError>,
}

/// One `PP_NOTIFY_URL` entry, shown redacted.
pub(super) struct NotifyUrl {
    pub(super) redacted: String,
    /// Parsing it; the error names the URL redacted.
    pub(super) parsed: Result<(), String>,
    /// The test message (`--send-test`), when one was sent.
    pub(super) sent: Option<Result<(), String>>,
}

/// The settings `listen` reads for the relay and the local receiver.
pub(super) struct WebhookFacts {
    /// `PP_SCHEDULE` (its value and why it does not parse).
    pub(super) schedule: Result<(), (String, String)>,
    /// `PP_WEBHOOK`.
    pub(super) relay: bool,
    /// `PP_WEBHOOK_URL`, userinfo hidden.
    pub(super) relay_url: Option<String>,
    /// Why `listen` would refuse `PP_WEBHOOK_URL`.
    pub(super) url_problem: Option<String>,
    /// A registration with that relay is saved in the data directory.
    pub(super) registered: bool,
    /// `PP_WEBHOOK_SECRET`, by its shape only.
    pub(super) secret: Option<SecretShape>,
}

pub(super) struct SecretShape {
    pub(super) length: usize,
    /// It starts or ends with whitespace.
    pub(super) padded: bool,
}

/// The packaged units, where systemd runs.
pub(super) enum SystemdFacts {
    NotRunning,
    /// `systemctl is-active UNIT` per unit: its word (`active`, `inactive`, `failed`, …), or
    /// why systemctl could not say.
    Units(Vec<(String, Result<String, String>)>),
}

pub(super) const TIMER_UNIT: &str = "pullpilot.timer";
pub(super) const PASS_UNIT: &str = "pullpilot.service";
pub(super) const LISTEN_UNIT: &str = "pullpilot-listen.service";

/// Every line, in the order the checks depend on each other.
pub(super) fn findings(facts: &Facts) -> Vec<Finding> {
    let mut out = vec![settings_file(&facts.settings_file), engine(&facts.engine)];
    out.extend(compose(&facts.compose));
    out.push(scope(&facts.scope));
    out.extend(data_dir(&facts.data_dir));
    out.extend(registries(&facts.registries));
    out.extend(notify(&facts.notify));
    out.extend(webhook(&facts.webhook));
    out.extend(systemd(&facts.systemd));
    out
}

pub(super) fn any_fail(list: &[Finding]) -> bool {
    list.iter().any(|f| f.level == Level::Fail)
}

fn settings_file(facts: &SettingsFile) -> Finding {
    let shown = facts.path.display();
    match &facts.read {
        FileRead::Missing => finding(
            "settings",
            Level::Ok,
            format!("no settings file {shown} (the packaged units read it when it exists)"),
            None,
        ),
        FileRead::Unreadable(why) => finding(
            "settings",
            Level::Warn,
            format!(
                "the settings file {shown} cannot be read ({why}), so this run cannot tell \
                 whether it sees the units' settings"
            ),
            Some("run doctor as root (sudo pullpilot doctor)".into()),
        ),
        FileRead::Malformed(message) => finding("settings", Level::Fail, message.clone(), None),
        FileRead::Read { count, differing } if differing.is_empty() => finding(
            "settings",
            Level::Ok,
            format!(
                "{shown}: this run sees the same {count} setting{} as the units",
                if *count == 1 { "" } else { "s" }
            ),
            None,
        ),
        FileRead::Read { differing, .. } => finding(
            "settings",
            Level::Warn,
            format!(
                "this run's settings differ from {shown}, which the units read, in {}",
                differing.join(", ")
            ),
            Some(
                "make them agree (change the file, or unset them in this shell), so that a \
                 command run by hand does what the timer does"
                    .into(),
            ),
        ),
    }
}

fn engine(facts: &EngineFacts) -> Finding {
    match facts {
        EngineFacts::Reached { endpoint, info } => finding(
            "docker",
            Level::Ok,
            format!(
                "Docker {} at {endpoint} ({}/{}, {}{}): API {}, pullpilot uses {}",
                info.server_version,
                info.os,
                info.arch,
                info.driver,
                if info.containerd_image_store {
                    ", containerd image store"
                } else {
                    ""
                },
                info.api_version,
                info.client_api_version
            ),
            None,
        ),
        EngineFacts::Failed(DockerError::Unreachable {
            endpoint,
            reason,
            hint,
        }) => finding(
            "docker",
            Level::Fail,
            format!("Docker is not reachable at {endpoint} ({reason})"),
            Some(hint.clone()),
        ),
        EngineFacts::Failed(e) => finding("docker", Level::Fail, e.to_string(), None),
    }
}

fn compose(facts: &ComposeFacts) -> Vec<Finding> {
    match facts {
        ComposeFacts::Off => vec![finding(
            "compose",
            Level::Ok,
            "PP_COMPOSE=off: compose services are recreated through the Docker API".into(),
            None,
        )],
        ComposeFacts::Found {
            command,
            version,
            projects,
        } => {
            let mut out = vec![finding(
                "compose",
                Level::Ok,
                format!("compose {version} (`{command}`)"),
                None,
            )];
            for (project, files) in projects {
                out.push(match files {
                    Ok(()) => finding(
                        "compose",
                        Level::Ok,
                        format!("compose project {project}: its files are readable here"),
                        None,
                    ),
                    Err(why) => finding(
                        "compose",
                        Level::Warn,
                        format!(
                            "compose project {project} cannot be handed to compose ({why}), so \
                             its services are recreated through the Docker API instead"
                        ),
                        Some(
                            "make its compose files readable here at the same path (in a \
                             container: mount the project directory read-only at that path)"
                                .into(),
                        ),
                    ),
                });
            }
            out
        }
        ComposeFacts::Missing {
            explicit: true,
            why,
        } => vec![finding(
            "compose",
            Level::Fail,
            format!("the compose command in PP_COMPOSE does not work ({why})"),
            Some("set PP_COMPOSE to a working compose v2 command, to auto, or to off".into()),
        )],
        ComposeFacts::Missing {
            explicit: false,
            why,
        } => vec![finding(
            "compose",
            Level::Warn,
            format!(
                "compose cannot be used, so compose services are recreated through the Docker \
                 API instead: {why}"
            ),
            None,
        )],
    }
}

fn scope(facts: &ScopeFacts) -> Finding {
    match facts {
        ScopeFacts::Skipped => finding(
            "scope",
            Level::Skip,
            "not checked: Docker is not reachable".into(),
            None,
        ),
        ScopeFacts::Failed(e) => finding(
            "scope",
            Level::Fail,
            format!("the scope does not resolve: {e}"),
            None,
        ),
        ScopeFacts::Resolved {
            label,
            containers,
            own_container,
        } => {
            let own = own_container.as_ref().map_or_else(String::new, |id| {
                format!("; pullpilot runs in container {}", &id[..id.len().min(12)])
            });
            if containers.is_empty() {
                return finding(
                    "scope",
                    Level::Warn,
                    format!("scope {label} has no containers, so nothing is updated{own}"),
                    Some(
                        "check PP_SCOPE (or --scope, or the compose project of the working \
                         directory): `docker ps -a` lists the containers and their projects"
                            .into(),
                    ),
                );
            }
            let shown: Vec<&str> = containers.iter().take(5).map(String::as_str).collect();
            let more = if containers.len() > shown.len() {
                format!(", and {} more", containers.len() - shown.len())
            } else {
                String::new()
            };
            finding(
                "scope",
                Level::Ok,
                format!(
                    "scope {label}: {} container{} ({}{more}){own}",
                    containers.len(),
                    if containers.len() == 1 { "" } else { "s" },
                    shown.join(", ")
                ),
                None,
            )
        }
    }
}

fn data_dir(facts: &DataDirFacts) -> Vec<Finding> {
    let shown = facts.path.display();
    let named = format!("the data directory {shown} (PP_DATA_DIR)");
    let mut out = Vec::new();
    let mut mode_ok = None;
    match &facts.kind {
        DirKind::Missing => out.push(finding(
            "data dir",
            Level::Warn,
            format!("{named} does not exist yet"),
            Some(format!(
                "the first apply creates it with mode 0700; to be sure it can, create it now: \
                 install -d -m 0700 {shown}"
            )),
        )),
        DirKind::NotADirectory => out.push(finding(
            "data dir",
            Level::Fail,
            format!("{named} is not a directory (it, or a path above it, is a file)"),
            Some("point PP_DATA_DIR at a directory, or move the file out of the way".into()),
        )),
        DirKind::Unreadable(e) => out.push(finding(
            "data dir",
            Level::Fail,
            format!("{named} cannot be read ({e})"),
            Some(
                "make it readable by the user running pullpilot, or point PP_DATA_DIR elsewhere"
                    .into(),
            ),
        )),
        DirKind::Present {
            mode,
            owner,
            me,
            writable,
        } => {
            let mode = mode & 0o7777;
            if mode & 0o022 != 0 {
                let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
                    (true, true) => "group and others",
                    (false, true) => "others",
                    _ => "its group",
                };
                out.push(finding(
                    "data dir",
                    Level::Fail,
                    format!(
                        "{named} can be written by {who} (mode {mode:04o}), so pullpilot \
                         refuses to use it"
                    ),
                    Some(format!("chmod 700 {shown}")),
                ));
            }
            if let Some(me) = me
                && owner != me
                && *owner != 0
            {
                out.push(finding(
                    "data dir",
                    Level::Fail,
                    format!(
                        "{named} belongs to user id {owner}, not to the user running pullpilot \
                         (id {me}) or root, so pullpilot refuses to use it"
                    ),
                    Some(format!("chown {me} {shown}")),
                ));
            }
            if let Err(e) = writable {
                out.push(finding(
                    "data dir",
                    Level::Fail,
                    format!("{named} cannot be written ({e})"),
                    Some(
                        "make it writable by the user running pullpilot (a read-only mount? a \
                         full disk?), or point PP_DATA_DIR elsewhere"
                            .into(),
                    ),
                ));
            }
            if mode & 0o077 != 0 && mode & 0o022 == 0 {
                out.push(finding(
                    "data dir",
                    Level::Warn,
                    format!("{named} is mode {mode:04o}: other users can see what is in it"),
                    Some(format!("chmod 700 {shown}")),
                ));
            }
            mode_ok = Some(mode);
        }
    }
    if facts.in_container && facts.on_volume == Some(false) {
        out.push(finding(
            "data dir",
            Level::Warn,
            format!(
                "{named} is not on a volume: soak clocks, pins, blocked digests and the webhook \
                 identity are lost when this container is recreated"
            ),
            Some(format!(
                "mount a named volume there (compose: `volumes: [\"pullpilot-data:{shown}\"]`)"
            )),
        ));
    }
    if out.is_empty() {
        let volume = match (facts.in_container, facts.on_volume) {
            (true, Some(true)) => ", on a volume",
            _ => "",
        };
        out.push(finding(
            "data dir",
            Level::Ok,
            format!(
                "{shown}: writable, mode {:04o}{volume}",
                mode_ok.unwrap_or(0o700)
            ),
            None,
        ));
    }
    out
}

fn registries(facts: &RegistryFacts) -> Vec<Finding> {
    match facts {
        RegistryFacts::Skipped(why) => vec![finding(
            "registry",
            Level::Skip,
            format!("not checked: {why}"),
            None,
        )],
        RegistryFacts::Unusable(e) => vec![finding(
            "registry",
            Level::Fail,
            format!("the registry credentials cannot be read: {e}"),
            Some("fix or remove that file (DOCKER_CONFIG names its directory)".into()),
        )],
        RegistryFacts::Checked(answers) if answers.is_empty() => vec![finding(
            "registry",
            Level::Ok,
            "no container in scope is checked at a registry (none, or all pinned by digest or \
             excluded)"
                .into(),
            None,
        )],
        RegistryFacts::Checked(answers) => answers
            .iter()
            .map(|a| match &a.result {
                Ok(()) => finding(
                    "registry",
                    Level::Ok,
                    format!("{}: {} answered", a.host, a.item),
                    None,
                ),
                Err(e @ CheckError::RateLimited { .. }) => {
                    finding("registry", Level::Warn, e.to_string(), None)
                }
                Err(e) => finding("registry", Level::Fail, e.to_string(), None),
            })
            .collect(),
    }
}

fn notify(urls: &[NotifyUrl]) -> Vec<Finding> {
    if urls.is_empty() {
        return vec![finding(
            "notify",
            Level::Ok,
            "no notification URL is set (PP_NOTIFY_URL): updates and failures are only logged"
                .into(),
            None,
        )];
    }
    urls.iter()
        .map(|u| match (&u.parsed, &u.sent) {
            (Err(e), _) => finding(
                "notify",
                Level::Fail,
                e.clone(),
                Some("fix or remove it in PP_NOTIFY_URL".into()),
            ),
            (Ok(()), None) => finding(
                "notify",
                Level::Ok,
                format!(
                    "{}: valid (nothing sent; --send-test sends a test message)",
                    u.redacted
                ),
                None,
            ),
            (Ok(()), Some(Ok(()))) => finding(
                "notify",
                Level::Ok,
                format!("{}: the test message was accepted", u.redacted),
                None,
            ),
            (Ok(()), Some(Err(e))) => finding(
                "notify",
                Level::Fail,
                format!("{}: the test message failed ({e})", u.redacted),
                Some(
                    "check the URL's host, token and path, and that this host can reach the \
                     service"
                        .into(),
                ),
            ),
        })
        .collect()
}

fn webhook(facts: &WebhookFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Err((value, why)) = &facts.schedule {
        out.push(finding(
            "webhook",
            Level::Fail,
            format!("PP_SCHEDULE={value:?} is not a schedule ({why}), so listen refuses to start"),
            Some(
                "use five cron fields such as \"0 3 * * *\" or a descriptor such as @daily".into(),
            ),
        ));
    }
    match (facts.relay, &facts.relay_url, &facts.url_problem) {
        (true, None, _) => out.push(finding(
            "webhook",
            Level::Fail,
            "PP_WEBHOOK=true but PP_WEBHOOK_URL is not set, so listen refuses to start".into(),
            Some(
                "set PP_WEBHOOK_URL to the relay's base URL (such as https://relay.example.org), \
                 or PP_WEBHOOK=false"
                    .into(),
            ),
        )),
        (_, Some(url), Some(why)) => out.push(finding(
            "webhook",
            if facts.relay {
                Level::Fail
            } else {
                Level::Warn
            },
            format!("PP_WEBHOOK_URL={url:?} {why}"),
            Some("set the relay's base URL, such as https://relay.example.org".into()),
        )),
        (true, Some(url), None) => out.push(finding(
            "webhook",
            Level::Ok,
            if facts.registered {
                format!(
                    "relay {url}: registered (`pullpilot listen --show-url` prints the poke URL)"
                )
            } else {
                format!("relay {url}: not registered yet; the first `pullpilot listen` registers")
            },
            None,
        )),
        (false, Some(url), None) => out.push(finding(
            "webhook",
            Level::Warn,
            format!(
                "PP_WEBHOOK_URL is {url} but PP_WEBHOOK is false, so listen does not connect to \
                 the relay"
            ),
            Some("set PP_WEBHOOK=true, or remove PP_WEBHOOK_URL".into()),
        )),
        (false, None, _) => out.push(finding(
            "webhook",
            Level::Ok,
            "relay: off (PP_WEBHOOK is false)".into(),
            None,
        )),
    }
    out.push(match &facts.secret {
        None => finding(
            "webhook",
            Level::Ok,
            "listen --http: not usable, PP_WEBHOOK_SECRET is not set".into(),
            None,
        ),
        Some(s) if s.padded => finding(
            "webhook",
            Level::Fail,
            "PP_WEBHOOK_SECRET starts or ends with whitespace (often a newline from the file it \
             was copied from), so listen --http refuses to start"
                .into(),
            Some("remove the whitespace".into()),
        ),
        Some(s) if s.length < 16 => finding(
            "webhook",
            Level::Warn,
            format!(
                "PP_WEBHOOK_SECRET is short ({} characters), so it can be guessed",
                s.length
            ),
            Some(
                "use at least 32 random characters, for example from `openssl rand -hex 32`".into(),
            ),
        ),
        Some(_) => finding(
            "webhook",
            Level::Ok,
            "listen --http: PP_WEBHOOK_SECRET is set".into(),
            None,
        ),
    });
    out
}

fn systemd(facts: &SystemdFacts) -> Vec<Finding> {
    let units = match facts {
        SystemdFacts::NotRunning => {
            return vec![finding(
                "systemd",
                Level::Ok,
                "systemd is not running here, so there are no units to check".into(),
                None,
            )];
        }
        SystemdFacts::Units(units) => units,
    };
    let mut out = Vec::new();
    let state = |unit: &str| -> Option<&str> {
        units
            .iter()
            .find(|(u, _)| u == unit)
            .and_then(|(_, s)| s.as_ref().ok())
            .map(String::as_str)
    };
    for (unit, answer) in units {
        if let Err(e) = answer {
            out.push(finding(
                "systemd",
                Level::Warn,
                format!("systemd could not be asked about {unit} ({e})"),
                Some(format!("run `systemctl status {unit}` to see it")),
            ));
        }
    }
    let timer = state(TIMER_UNIT);
    let listen = state(LISTEN_UNIT);
    if listen == Some("failed") {
        out.push(finding(
            "systemd",
            Level::Fail,
            format!("{LISTEN_UNIT} has failed"),
            Some(format!(
                "see `journalctl -u {LISTEN_UNIT}`, fix the cause, then `systemctl restart \
                 {LISTEN_UNIT}`"
            )),
        ));
    }
    if state(PASS_UNIT) == Some("failed") {
        out.push(finding(
            "systemd",
            Level::Warn,
            format!("the last pass of {PASS_UNIT} failed"),
            Some(format!("see `journalctl -u {PASS_UNIT}`")),
        ));
    }
    let active = |s: Option<&str>| matches!(s, Some("active" | "activating" | "reloading"));
    match (active(timer), active(listen)) {
        (true, true) => out.push(finding(
            "systemd",
            Level::Warn,
            format!("both {TIMER_UNIT} and {LISTEN_UNIT} are active; one is enough"),
            Some(format!(
                "systemctl disable --now {TIMER_UNIT} (listen runs the PP_SCHEDULE floor itself)"
            )),
        )),
        (false, false) if listen != Some("failed") => out.push(finding(
            "systemd",
            Level::Warn,
            format!("neither {TIMER_UNIT} nor {LISTEN_UNIT} is active, so no pass runs by itself"),
            Some(format!(
                "systemctl enable --now {TIMER_UNIT} (or {LISTEN_UNIT})"
            )),
        )),
        _ => {}
    }
    if out.is_empty() {
        out.push(finding(
            "systemd",
            Level::Ok,
            format!(
                "{TIMER_UNIT} is {}, {LISTEN_UNIT} is {}",
                timer.unwrap_or("unknown"),
                listen.unwrap_or("unknown")
            ),
            None,
        ));
    }
    out
}

/// The report as text: one line per finding, `level  check  message: fix`, then a count.
pub(super) fn render(list: &[Finding]) -> String {
    let mut out = String::new();
    let width = list.iter().map(|f| f.check.len()).max().unwrap_or(0);
    for f in list {
        let _ = write!(
            out,
            "{:<4}  {:<width$}  {}",
            f.level.word(),
            f.check,
            f.message
        );
        if let Some(fix) = &f.fix {
            let _ = write!(out, ": {fix}");
        }
        out.push('\n');
    }
    let count = |level: Level| list.iter().filter(|f| f.level == level).count();
    let _ = writeln!(
        out,
        "\n{} ok, {} warn, {} fail, {} skip",
        count(Level::Ok),
        count(Level::Warn),
        count(Level::Fail),
        count(Level::Skip)
    );
    out
}

/// The report as one JSON document.
pub(super) fn document(list: &[Finding]) -> serde_json::Value {
    serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "ok": !any_fail(list),
        "checks": list,
    })
}
