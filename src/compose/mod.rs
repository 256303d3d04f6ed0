//! The compose CLI, driven for one compose project: which services move with a service
//! ([`Compose::dependents`]), compose's own verdict on whether the running containers match the
//! project's files ([`Compose::changes`], a dry run), and the recreate itself ([`Compose::up`]:
//! `up -d --no-deps --no-build --pull never SERVICES`), so a compose service's replacement is
//! exactly what `docker compose up -d` would make.
//!
//! Owns: finding the CLI (`PP_COMPOSE`), the project's files from its containers' labels, the
//! command lines, the child's environment (curated: no pullpilot setting or secret reaches it)
//! and reading compose's output. Must not: decide whether or when to update, or touch
//! containers through the API.

#[cfg(test)]
pub mod fake;
mod project;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::fault;
use crate::process::{self, RunError, RunLimits, Stream};

pub use project::{NotUsable, ProjectFiles};

/// How long one compose command may run: stopping containers honours each service's
/// `stop_grace_period`, so this is generous.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The recreate both the dry run and the real step ask for: exactly the named services, from
/// images already here.
const UP: &[&str] = &["up", "-d", "--no-deps", "--no-build", "--pull", "never"];

/// Bytes of compose's output kept for an error message.
const MAX_OUTPUT: usize = 256 * 1024;

/// One container a compose command would change (or did), as compose names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub container: String,
    /// Compose's word: `Recreate`, `Create`, `Starting`, …
    pub status: String,
}

/// What pullpilot asks of compose. The real one is [`ComposeCli`]; unit tests use `fake`.
pub trait Compose {
    /// Whether compose can run here; the error says why not and what to do.
    fn available(&self) -> Result<(), String>;
    /// The services of the project that depend on `service`, directly or through others
    /// (`depends_on`, including what compose adds for `network_mode`/`pid`/`ipc: service:` and
    /// `volumes_from`), sorted, without `service` itself.
    fn dependents(&self, project: &ProjectFiles, service: &str) -> Result<Vec<String>>;
    /// What `up -d --no-deps SERVICES` would change now: compose's dry run, with containers
    /// that would merely stay running left out.
    fn changes(&self, project: &ProjectFiles, services: &[String]) -> Result<Vec<Change>>;
    /// `up -d --no-deps --no-build --pull never SERVICES` (with `--no-start` unless `start`).
    fn up(&self, project: &ProjectFiles, services: &[String], start: bool) -> Result<()>;
}

/// `PP_COMPOSE`: how to run compose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ComposeSetting {
    /// `docker compose` if the plugin answers, else a standalone `docker-compose` v2.
    Auto,
    /// Never: every container is recreated through the API.
    Off,
    /// This command line (`docker compose`, `/usr/local/bin/docker-compose`).
    Command(Vec<String>),
}

impl ComposeSetting {
    /// Parses `PP_COMPOSE`.
    pub fn parse(value: &str) -> Result<ComposeSetting, String> {
        match value.trim() {
            "" | "auto" => Ok(ComposeSetting::Auto),
            "off" => Ok(ComposeSetting::Off),
            other => {
                let words: Vec<String> = other.split_whitespace().map(str::to_string).collect();
                if words[0].starts_with('-') {
                    return Err(format!(
                        "{other:?} is not a command; set PP_COMPOSE to `auto`, `off` or a command \
                         such as `docker compose` or `/usr/local/bin/docker-compose`"
                    ));
                }
                Ok(ComposeSetting::Command(words))
            }
        }
    }
}

/// The compose CLI, found on first use.
pub struct ComposeCli {
    setting: ComposeSetting,
    env: Vec<(String, String)>,
    found: OnceLock<Result<Vec<String>, String>>,
    /// Each project's model (`config --format json`), read once per run: pullpilot never edits
    /// a compose file between two questions of one command (`pin --compose` asks only after).
    models: std::sync::Mutex<Vec<(ProjectFiles, serde_json::Value)>>,
}

/// Variables the compose child gets from pullpilot's environment: what it needs to find its
/// plugin, the engine and TLS material. Nothing else (no `PP_*`, no credentials) reaches it,
/// and compose's own `COMPOSE_*` variables cannot redirect it to other files.
const PASSED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CONTEXT",
    "XDG_RUNTIME_DIR",
    "TMPDIR",
];

impl ComposeCli {
    /// `docker_host` is the engine pullpilot talks to; compose is pointed at the same one.
    pub fn new(
        setting: ComposeSetting,
        docker_host: Option<&str>,
        env: &BTreeMap<String, String>,
    ) -> ComposeCli {
        let mut passed: Vec<(String, String)> = PASSED_ENV
            .iter()
            .filter_map(|k| env.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        if !passed.iter().any(|(k, _)| k == "PATH") {
            passed.push(("PATH".into(), process::DEFAULT_PATH.into()));
        }
        if let Some(host) = docker_host {
            passed.push(("DOCKER_HOST".into(), host.to_string()));
        }
        ComposeCli {
            setting,
            env: passed,
            found: OnceLock::new(),
            models: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Whether compose may be used at all (`PP_COMPOSE` is not `off`).
    pub fn enabled(&self) -> bool {
        self.setting != ComposeSetting::Off
    }

    /// The command line that runs compose, or why there is none.
    pub fn program(&self) -> Result<&[String], String> {
        self.found
            .get_or_init(|| self.detect())
            .as_deref()
            .map_err(Clone::clone)
    }

    /// The command line that runs compose and the version it reports (`2.40.3`), or why there
    /// is none; asks the CLI once more (for `doctor`).
    pub fn found_version(&self) -> Result<(String, String), String> {
        let words = self.program()?;
        let version = self.version(words).map_err(|e| format!("{e:#}"))?;
        Ok((words.join(" "), version))
    }

    fn detect(&self) -> Result<Vec<String>, String> {
        let candidates: Vec<Vec<String>> = match &self.setting {
            ComposeSetting::Off => return Err("PP_COMPOSE is off".into()),
            ComposeSetting::Command(words) => vec![words.clone()],
            ComposeSetting::Auto => vec![
                vec!["docker".into(), "compose".into()],
                vec!["docker-compose".into()],
            ],
        };
        let mut tried = Vec::new();
        for words in candidates {
            match self.version(&words) {
                Ok(v) if major(&v) >= Some(2) => {
                    log::debug!("Using compose {v} ({}).", words.join(" "));
                    return Ok(words);
                }
                Ok(v) => tried.push(format!("`{}` is compose {v}", words.join(" "))),
                Err(e) => tried.push(format!("`{}`: {e:#}", words.join(" "))),
            }
        }
        Err(format!(
            "no compose v2 CLI was found ({}); install the docker compose plugin or set \
             PP_COMPOSE to its command",
            tried.join("; ")
        ))
    }

    fn version(&self, words: &[String]) -> Result<String> {
        let out = self.run(words, &["version", "--short"], Duration::from_secs(20))?;
        let v = out.trim().trim_start_matches('v').to_string();
        if v.is_empty() {
            bail!("it printed no version");
        }
        Ok(v)
    }

    /// Runs compose with `args`, returning stdout and stderr together; a non-zero exit is an
    /// error carrying the last lines compose printed.
    fn run(&self, words: &[String], args: &[&str], timeout: Duration) -> Result<String> {
        self.run_watching(words, args, timeout, false)
    }

    /// [`ComposeCli::run`]; with `recreating`, the crash-safety tests can kill pullpilot once
    /// compose reports a container recreated (fault point `during-compose`).
    fn run_watching(
        &self,
        words: &[String],
        args: &[&str],
        timeout: Duration,
        recreating: bool,
    ) -> Result<String> {
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..]).args(args).env_clear();
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut output = Vec::new();
        let limits = RunLimits {
            timeout,
            max_output: MAX_OUTPUT,
        };
        let finished = process::run(&mut cmd, None, limits, |_: Stream, chunk: &[u8]| {
            output.extend_from_slice(chunk);
            if recreating && String::from_utf8_lossy(chunk).contains("Recreated") {
                fault::point("during-compose");
            }
        });
        let text = String::from_utf8_lossy(&output).into_owned();
        match finished {
            Ok(f) if f.status.success() => Ok(text),
            Ok(f) => bail!("it exited with {}: {}", f.status, tail(&text)),
            Err(RunError::Start(e)) => Err(e).context("it could not be started"),
            Err(RunError::TimedOut { .. }) => bail!(
                "it was still running after {} and was stopped: {}",
                humantime::format_duration(timeout),
                tail(&text)
            ),
            Err(RunError::Wait(e)) => Err(e).context("waiting for it failed"),
        }
    }

    fn run_in(&self, project: &ProjectFiles, args: &[&str], timeout: Duration) -> Result<String> {
        self.run_in_watching(project, args, timeout, false)
    }

    fn run_in_watching(
        &self,
        project: &ProjectFiles,
        args: &[&str],
        timeout: Duration,
        recreating: bool,
    ) -> Result<String> {
        let words = self.program().map_err(anyhow::Error::msg)?;
        let mut full: Vec<String> = project.global_args();
        full.extend(args.iter().map(ToString::to_string));
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        self.run_watching(words, &full, timeout, recreating)
            .with_context(|| {
                format!(
                    "`{} {}` for compose project {}",
                    words.join(" "),
                    args.join(" "),
                    project.name
                )
            })
    }
}

impl Compose for ComposeCli {
    fn available(&self) -> Result<(), String> {
        self.program().map(|_| ())
    }

    fn dependents(&self, project: &ProjectFiles, service: &str) -> Result<Vec<String>> {
        let models = || {
            self.models
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((_, model)) = models().iter().find(|(p, _)| p == project) {
            return Ok(dependents_in(model, service));
        }
        let json = self.run_in(
            project,
            &["config", "--format", "json"],
            Duration::from_secs(60),
        )?;
        let model: serde_json::Value = serde_json::from_str(json_part(&json))
            .context("compose printed a project model that is not JSON")?;
        let found = dependents_in(&model, service);
        models().push((project.clone(), model));
        Ok(found)
    }

    fn changes(&self, project: &ProjectFiles, services: &[String]) -> Result<Vec<Change>> {
        let mut args = vec!["--dry-run", "--progress", "json"];
        args.extend(UP);
        args.extend(services.iter().map(String::as_str));
        let out = self.run_in(project, &args, Duration::from_secs(120))?;
        Ok(parse_changes(&out))
    }

    fn up(&self, project: &ProjectFiles, services: &[String], start: bool) -> Result<()> {
        let mut args = vec!["--progress", "json"];
        args.extend(UP);
        if !start {
            args.push("--no-start");
        }
        args.extend(services.iter().map(String::as_str));
        let out = self.run_in_watching(project, &args, STEP_TIMEOUT, true)?;
        log::debug!("compose up {}: {}", services.join(" "), tail(&out));
        Ok(())
    }
}

/// `2.40.3` → 2.
fn major(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

/// The JSON object in compose's output (warnings may come before it).
fn json_part(out: &str) -> &str {
    out.find('{').map_or(out, |i| &out[i..])
}

/// The services that depend on `service` in a `config --format json` model, transitively.
pub fn dependents_in(model: &serde_json::Value, service: &str) -> Vec<String> {
    let services = model.get("services").and_then(serde_json::Value::as_object);
    let Some(services) = services else {
        return Vec::new();
    };
    let depends = |s: &serde_json::Value| -> BTreeSet<String> {
        let mut on = BTreeSet::new();
        match s.get("depends_on") {
            Some(serde_json::Value::Object(map)) => on.extend(map.keys().cloned()),
            Some(serde_json::Value::Array(list)) => {
                on.extend(list.iter().filter_map(|v| v.as_str().map(str::to_string)));
            }
            _ => {}
        }
        for key in ["network_mode", "pid", "ipc"] {
            if let Some(target) = s
                .get(key)
                .and_then(serde_json::Value::as_str)
                .and_then(|m| m.strip_prefix("service:"))
            {
                on.insert(target.to_string());
            }
        }
        for from in s
            .get("volumes_from")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str)
        {
            if !from.starts_with("container:") {
                on.insert(from.split(':').next().unwrap_or(from).to_string());
            }
        }
        on
    };
    let edges: BTreeMap<&String, BTreeSet<String>> =
        services.iter().map(|(n, s)| (n, depends(s))).collect();
    let mut moved: BTreeSet<String> = BTreeSet::from([service.to_string()]);
    loop {
        let before = moved.len();
        for (name, on) in &edges {
            if !moved.contains(*name) && on.iter().any(|d| moved.contains(d)) {
                moved.insert((*name).clone());
            }
        }
        if moved.len() == before {
            break;
        }
    }
    moved.remove(service);
    moved.into_iter().collect()
}

/// Compose's progress output (JSON lines, or the plain text of older versions) as the
/// containers it would change; containers that stay running are left out.
pub fn parse_changes(out: &str) -> Vec<Change> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut order = Vec::new();
    for line in out.lines() {
        let (id, status) = if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            let id = v.get("id").and_then(|x| x.as_str()).unwrap_or_default();
            let status = v.get("status").and_then(|x| x.as_str()).unwrap_or_default();
            (id.to_string(), status.to_string())
        } else {
            let text = line.trim().trim_start_matches("DRY-RUN MODE -").trim();
            let mut words = text.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(kind), Some(name), Some(status)) => {
                    (format!("{kind} {name}"), status.to_string())
                }
                _ => continue,
            }
        };
        let Some(container) = id.strip_prefix("Container ") else {
            continue;
        };
        // Waiting for a dependency's condition is not an action on the container.
        if status.is_empty() || ["Waiting", "Healthy", "Exited"].contains(&status.as_str()) {
            continue;
        }
        // The first word per container says what compose decided (`Recreate`, `Running`, …).
        if !seen.contains_key(container) {
            order.push(container.to_string());
            seen.insert(container.to_string(), status);
        }
    }
    order
        .into_iter()
        .filter_map(|container| {
            let status = seen.remove(&container)?;
            (status != "Running").then_some(Change { container, status })
        })
        .collect()
}

/// The last lines of compose's output, for an error message.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(5);
    let joined = lines[start..].join(" | ");
    if joined.is_empty() {
        "(no output)".into()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_accepts_auto_off_and_a_command() {
        assert_eq!(ComposeSetting::parse(""), Ok(ComposeSetting::Auto));
        assert_eq!(ComposeSetting::parse("auto"), Ok(ComposeSetting::Auto));
        assert_eq!(ComposeSetting::parse("off"), Ok(ComposeSetting::Off));
        assert_eq!(
            ComposeSetting::parse("docker compose"),
            Ok(ComposeSetting::Command(vec![
                "docker".into(),
                "compose".into()
            ]))
        );
        let err = ComposeSetting::parse("--file x").unwrap_err();
        assert!(err.contains("PP_COMPOSE"), "{err}");
    }

    #[test]
    fn dependents_follow_every_kind_of_link_transitively() {
        let model = serde_json::json!({"services": {
            "web": {},
            "side": {"network_mode": "service:web",
                     "depends_on": {"web": {"condition": "service_started", "restart": true}}},
            "pidf": {"pid": "service:web"},
            "ipcf": {"ipc": "service:web"},
            "volf": {"volumes_from": ["web:ro"]},
            "dep": {"depends_on": {"web": {"condition": "service_healthy"}}},
            "deep": {"depends_on": ["dep"]},
            "other": {"depends_on": {"db": {}}},
            "db": {},
            "ext": {"volumes_from": ["container:web"]}
        }});
        assert_eq!(
            dependents_in(&model, "web"),
            ["deep", "dep", "ipcf", "pidf", "side", "volf"]
        );
        assert_eq!(dependents_in(&model, "db"), ["other"]);
        assert!(dependents_in(&model, "deep").is_empty());
        assert!(dependents_in(&serde_json::json!({}), "web").is_empty());
    }

    #[test]
    fn changes_are_read_from_json_progress_and_from_plain_text() {
        let json = r#"{"dry-run":true,"id":"Container cx-db-1","status":"Waiting"}
{"dry-run":true,"id":"Container cx-db-1","status":"Healthy"}
{"dry-run":true,"id":"Container cx-web-1","status":"Running"}
{"dry-run":true,"id":"Container cx-side-1","status":"Recreate"}
{"dry-run":true,"id":"Container cx-side-1","status":"Recreated"}
{"id":"web","text":"IPv4 forwarding is disabled."}
{"dry-run":true,"id":"Container 1bc0b6407f45_cx-side-1","status":"Starting"}
not json at all"#;
        assert_eq!(
            parse_changes(json),
            [
                Change {
                    container: "cx-side-1".into(),
                    status: "Recreate".into()
                },
                Change {
                    container: "1bc0b6407f45_cx-side-1".into(),
                    status: "Starting".into()
                }
            ]
        );
        let text = " DRY-RUN MODE -  Container cx-web-1  Running\n DRY-RUN MODE -  Container cx-db-1  Recreate\n";
        assert_eq!(
            parse_changes(text),
            [Change {
                container: "cx-db-1".into(),
                status: "Recreate".into()
            }]
        );
        assert!(parse_changes("").is_empty());
    }

    #[test]
    fn the_child_gets_a_curated_environment() {
        let env: BTreeMap<String, String> = [
            ("PATH", "/bin"),
            ("DOCKER_CONFIG", "/cfg"),
            ("PP_WEBHOOK_SECRET", "s3cret"),
            ("COMPOSE_FILE", "/elsewhere.yaml"),
            ("DOCKER_HOST", "unix:///wrong.sock"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let cli = ComposeCli::new(ComposeSetting::Auto, Some("unix:///run/d.sock"), &env);
        let names: Vec<&str> = cli.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["PATH", "DOCKER_CONFIG", "DOCKER_HOST"]);
        assert_eq!(cli.env[2].1, "unix:///run/d.sock");
    }

    #[test]
    fn a_missing_cli_says_what_to_install() {
        let cli = ComposeCli::new(
            ComposeSetting::Command(vec!["/nonexistent/docker-compose".into()]),
            None,
            &BTreeMap::new(),
        );
        let err = cli.program().unwrap_err();
        assert!(err.contains("/nonexistent/docker-compose"), "{err}");
        assert!(err.contains("PP_COMPOSE"), "{err}");
        let off = ComposeCli::new(ComposeSetting::Off, None, &BTreeMap::new());
        assert!(!off.enabled());
    }
}
