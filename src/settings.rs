//! `PP_*` variables and command-line flags → validated [`Settings`].
//!
//! A flag overrides its variable; an unset or empty variable takes the default. Every invalid
//! value is an error that names the flag or variable, the value and the accepted form — never a
//! silent default. Unknown `PP_*` names are warned about (a typo guard). Pure: the environment
//! is passed in.

pub mod envfile;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::cli::GlobalArgs;
use crate::error::Failure;
use crate::values::{BOOL_FORM, DURATION_FORM, NONZERO_DURATION_FORM, parse_bool, parse_duration};

/// Every variable pullpilot reads, with its default and meaning (for docs and the typo guard).
pub const VARIABLES: &[(&str, &str, &str)] = &[
    (
        "PP_SCOPE",
        "project",
        "which containers: `project`, `project:<name>` or `all`",
    ),
    (
        "PP_SOAK",
        "24h",
        "how long a new digest must stay current before rollout",
    ),
    (
        "PP_TRACK",
        "digest",
        "how containers follow their image: digest, patch, minor, major or regex:<pattern> \
         (the label io.pullpilot.track overrides it)",
    ),
    (
        "PP_WINDOW",
        "",
        "maintenance windows: updates start only inside them, e.g. `Sat 02:00-05:00, Sun \
         02:00-05:00` in PP_TIMEZONE (empty: any time)",
    ),
    (
        "PP_APPROVE",
        "auto",
        "`manual`: a soaked update waits for `pullpilot approve`; `auto`: it does not",
    ),
    (
        "PP_HEALTH_TIMEOUT",
        "90s",
        "how long the health gate waits for `healthy`",
    ),
    (
        "PP_HEALTH_STABLE",
        "10s",
        "how long a container without a healthcheck must keep running",
    ),
    (
        "PP_CLEANUP",
        "false",
        "remove the old image after a successful update",
    ),
    (
        "PP_SELF_UPDATE",
        "false",
        "check pullpilot's own container (notify only)",
    ),
    (
        "PP_DATA_DIR",
        "/var/lib/pullpilot",
        "state, lock and webhook identity",
    ),
    ("PP_NOTIFY_URL", "", "notification URLs, space-separated"),
    ("PP_DRY_RUN", "false", "plan and log only"),
    ("PP_LOG_LEVEL", "info", "error, warn, info, debug or trace"),
    ("PP_LOG_JSON", "false", "log JSON lines"),
    ("PP_TIMEZONE", "UTC", "IANA time zone for times in messages"),
    ("PP_JITTER", "0", "random delay before a scheduled pass"),
    (
        "PP_COMPAT_WATCHTOWER",
        "false",
        "honour Watchtower's enable and monitor-only labels",
    ),
    ("PP_WEBHOOK", "false", "listen: connect to the relay"),
    ("PP_WEBHOOK_URL", "", "listen: the relay's base URL"),
    (
        "PP_WEBHOOK_SECRET",
        "",
        "listen --http: the bearer secret callers must send",
    ),
    (
        "PP_SCHEDULE",
        "0 3 * * *",
        "listen: the schedule floor (cron)",
    ),
    (
        "PP_INSECURE_REGISTRIES",
        "",
        "registries reached over plain HTTP besides loopback",
    ),
    (
        "PP_REGISTRY_CONCURRENCY",
        "16",
        "at most this many requests in flight to one registry (serial after a 429 or 503)",
    ),
    (
        "PP_PREFETCH",
        "3",
        "apply: images pulled ahead of the recreates at a time (0: each update pulls its own)",
    ),
    (
        "PP_METRICS_FILE",
        "",
        "node_exporter textfile written after each pass",
    ),
    (
        "PP_PRE_UPDATE_HOOK",
        "",
        "shell command run before a container is replaced; non-zero cancels that update",
    ),
    (
        "PP_POST_UPDATE_HOOK",
        "",
        "shell command run after an update or rollback, with the outcome",
    ),
    (
        "PP_HOOK_TIMEOUT",
        "5m",
        "how long a hook may run before it is killed (and counts as failed)",
    ),
    (
        "PP_CONFIG_FILE",
        "/etc/default/pullpilot",
        "the settings file read before the environment (environment only)",
    ),
    (
        "PP_COMPOSE",
        "auto",
        "how compose services are recreated: auto (the compose CLI when safe), off, or a command",
    ),
];

/// Which containers a run manages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeSetting {
    /// The tool's own compose project (inside a container) or the working directory's.
    OwnProject,
    Project(String),
    All,
}

/// A value that must never reach a log: its `Debug` form is a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub scope: ScopeSetting,
    pub project_directory: Option<PathBuf>,
    pub soak: Duration,
    /// `PP_TRACK`: the default of `io.pullpilot.track`.
    pub track: crate::version::Track,
    /// `PP_WINDOW`: when updates may start (`None`: any time).
    pub window: Option<crate::time::Windows>,
    /// `PP_APPROVE=manual`.
    pub approve_manual: bool,
    pub health_timeout: Duration,
    pub health_stable: Duration,
    pub cleanup: bool,
    pub self_update: bool,
    pub data_dir: PathBuf,
    pub notify_urls: Vec<String>,
    pub dry_run: bool,
    pub log_level: log::LevelFilter,
    pub log_json: bool,
    /// `PP_TIMEZONE`, looked up in the system zone database.
    pub timezone: jiff::tz::TimeZone,
    pub jitter: Duration,
    pub compat_watchtower: bool,
    pub webhook: bool,
    pub webhook_url: Option<String>,
    /// `listen --http`'s bearer secret; never printed.
    pub webhook_secret: Option<Secret>,
    pub schedule: String,
    pub insecure_registries: Vec<String>,
    /// `PP_REGISTRY_CONCURRENCY`: requests in flight to one registry host (at least 1).
    pub registry_concurrency: usize,
    /// `PP_PREFETCH`: pulls made ahead of the recreates at once (0: none ahead).
    pub prefetch: usize,
    pub metrics_file: Option<PathBuf>,
    pub pre_update_hook: Option<String>,
    pub post_update_hook: Option<String>,
    pub hook_timeout: Duration,
    pub wait: bool,
    /// `PP_COMPOSE`: whether and how compose recreates compose services.
    pub compose: crate::compose::ComposeSetting,
    /// `DOCKER_HOST`, if set.
    pub docker_host: Option<String>,
    /// `DOCKER_CONFIG`, if set: the directory holding `config.json`.
    pub docker_config: Option<PathBuf>,
}

/// Reads one setting from its flag, else its variable, else nothing.
struct Source<'a> {
    args: &'a GlobalArgs,
    env: &'a BTreeMap<String, String>,
}

impl Source<'_> {
    /// (value, how to name it in an error)
    fn raw(&self, flag: Option<&String>, var: &str) -> Option<(String, String)> {
        if let Some(value) = flag {
            let name = format!(
                "--{}",
                var.trim_start_matches("PP_")
                    .to_lowercase()
                    .replace('_', "-")
            );
            return Some((value.clone(), name));
        }
        self.env
            .get(var)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (v.clone(), var.to_string()))
    }

    fn bool(&self, flag: Option<&String>, var: &str, default: bool) -> Result<bool> {
        match self.raw(flag, var) {
            None => Ok(default),
            Some((value, name)) => {
                parse_bool(&value).ok_or_else(|| invalid(&name, &value, BOOL_FORM))
            }
        }
    }

    fn duration(&self, flag: Option<&String>, var: &str, default: Duration) -> Result<Duration> {
        self.duration_at_least(flag, var, default, Duration::ZERO, DURATION_FORM)
    }

    fn duration_at_least(
        &self,
        flag: Option<&String>,
        var: &str,
        default: Duration,
        minimum: Duration,
        form: &str,
    ) -> Result<Duration> {
        match self.raw(flag, var) {
            None => Ok(default),
            Some((value, name)) => parse_duration(&value)
                .filter(|d| *d >= minimum)
                .ok_or_else(|| invalid(&name, &value, form)),
        }
    }
}

fn invalid(name: &str, value: &str, form: &str) -> anyhow::Error {
    let shown = if name.starts_with("--") {
        format!("{name} {value:?}")
    } else {
        format!("{name}={value:?}")
    };
    Failure::usage(format!("{shown} is not valid: expected {form}"))
}

impl Settings {
    /// Validates flags and environment. Returns the settings and warnings to log.
    pub fn resolve(
        args: &GlobalArgs,
        env: &BTreeMap<String, String>,
    ) -> Result<(Settings, Vec<String>)> {
        let src = Source { args, env };
        let a = src.args;
        let warnings = unknown_variables(env);

        let scope = match src.raw(a.scope.as_ref(), "PP_SCOPE") {
            None => ScopeSetting::OwnProject,
            Some((value, name)) => parse_scope(&value).ok_or_else(|| {
                invalid(
                    &name,
                    &value,
                    "`project`, `project:<name>` (a compose project name) or `all`",
                )
            })?,
        };
        let log_level = match src.raw(a.log_level.as_ref(), "PP_LOG_LEVEL") {
            None => log::LevelFilter::Info,
            Some((value, name)) => value
                .trim()
                .parse::<log::LevelFilter>()
                .ok()
                .filter(|l| *l != log::LevelFilter::Off)
                .ok_or_else(|| invalid(&name, &value, "error, warn, info, debug or trace"))?,
        };
        let timezone = match src.raw(a.timezone.as_ref(), "PP_TIMEZONE") {
            None => jiff::tz::TimeZone::UTC,
            Some((value, name)) => crate::time::zone::parse(&value).map_err(|_| {
                invalid(
                    &name,
                    &value,
                    "an IANA time zone such as UTC or Europe/Berlin",
                )
            })?,
        };
        let insecure_registries =
            match src.raw(a.insecure_registries.as_ref(), "PP_INSECURE_REGISTRIES") {
                None => Vec::new(),
                Some((value, name)) => parse_host_list(&value).ok_or_else(|| {
                    invalid(
                        &name,
                        &value,
                        "comma-separated registry hosts such as registry.lan:5000",
                    )
                })?,
            };
        let webhook_url = match src.raw(None, "PP_WEBHOOK_URL") {
            None => None,
            Some((value, _)) if value.starts_with("https://") || value.starts_with("http://") => {
                Some(value.trim_end_matches('/').to_string())
            }
            Some((value, name)) => {
                return Err(invalid(&name, &value, "an http:// or https:// URL"));
            }
        };
        let non_empty = |flag: Option<&PathBuf>, var: &str| -> Option<PathBuf> {
            flag.cloned().or_else(|| {
                env.get(var)
                    .filter(|v| !v.trim().is_empty())
                    .map(PathBuf::from)
            })
        };

        let settings = Settings {
            scope,
            project_directory: a.project_directory.clone(),
            soak: src.duration(a.soak.as_ref(), "PP_SOAK", Duration::from_secs(24 * 3600))?,
            track: match src.raw(None, "PP_TRACK") {
                None => crate::version::Track::Digest,
                Some((value, name)) => crate::version::Track::parse(&value)
                    .map_err(|_| invalid(&name, &value, crate::version::TRACK_FORM))?,
            },
            window: match src.raw(None, "PP_WINDOW") {
                None => None,
                Some((value, name)) => Some(crate::time::Windows::parse(&value).map_err(|e| {
                    invalid(
                        &name,
                        &value,
                        &format!("{} ({e})", crate::time::window::WINDOW_FORM),
                    )
                })?),
            },
            approve_manual: match src.raw(None, "PP_APPROVE") {
                None => false,
                Some((value, name)) => match value.trim().to_ascii_lowercase().as_str() {
                    "manual" => true,
                    "auto" => false,
                    _ => return Err(invalid(&name, &value, "manual or auto")),
                },
            },
            health_timeout: src.duration_at_least(
                a.health_timeout.as_ref(),
                "PP_HEALTH_TIMEOUT",
                Duration::from_secs(90),
                Duration::from_secs(1),
                NONZERO_DURATION_FORM,
            )?,
            health_stable: src.duration(
                a.health_stable.as_ref(),
                "PP_HEALTH_STABLE",
                Duration::from_secs(10),
            )?,
            cleanup: src.bool(a.cleanup.as_ref(), "PP_CLEANUP", false)?,
            self_update: src.bool(a.self_update.as_ref(), "PP_SELF_UPDATE", false)?,
            data_dir: non_empty(a.data_dir.as_ref(), "PP_DATA_DIR")
                .unwrap_or_else(|| PathBuf::from("/var/lib/pullpilot")),
            notify_urls: src
                .raw(a.notify_url.as_ref(), "PP_NOTIFY_URL")
                .map(|(v, _)| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            dry_run: src.bool(a.dry_run.as_ref(), "PP_DRY_RUN", false)?,
            log_level,
            log_json: src.bool(a.log_json.as_ref(), "PP_LOG_JSON", false)?,
            timezone,
            jitter: src.duration(a.jitter.as_ref(), "PP_JITTER", Duration::ZERO)?,
            compat_watchtower: src.bool(
                a.compat_watchtower.as_ref(),
                "PP_COMPAT_WATCHTOWER",
                false,
            )?,
            webhook: src.bool(None, "PP_WEBHOOK", false)?,
            webhook_url,
            webhook_secret: src.raw(None, "PP_WEBHOOK_SECRET").map(|(v, _)| Secret(v)),
            schedule: src
                .raw(None, "PP_SCHEDULE")
                .map_or_else(|| "0 3 * * *".to_string(), |(v, _)| v),
            insecure_registries,
            registry_concurrency: match src.raw(None, "PP_REGISTRY_CONCURRENCY") {
                None => crate::registry::RegistryOptions::default().per_host_concurrency,
                Some((value, name)) => value
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1024).contains(n))
                    .ok_or_else(|| invalid(&name, &value, "a whole number from 1 to 1024"))?,
            },
            prefetch: match src.raw(None, "PP_PREFETCH") {
                None => 3,
                Some((value, name)) => value
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n <= 16)
                    .ok_or_else(|| invalid(&name, &value, "a whole number from 0 to 16"))?,
            },
            metrics_file: non_empty(a.metrics_file.as_ref(), "PP_METRICS_FILE"),
            pre_update_hook: src.raw(None, "PP_PRE_UPDATE_HOOK").map(|(v, _)| v),
            post_update_hook: src.raw(None, "PP_POST_UPDATE_HOOK").map(|(v, _)| v),
            hook_timeout: src.duration_at_least(
                None,
                "PP_HOOK_TIMEOUT",
                Duration::from_secs(300),
                Duration::from_secs(1),
                NONZERO_DURATION_FORM,
            )?,
            wait: a.wait,
            compose: match src.raw(None, "PP_COMPOSE") {
                None => crate::compose::ComposeSetting::Auto,
                Some((v, _)) => crate::compose::ComposeSetting::parse(&v)
                    .map_err(|e| anyhow::anyhow!("PP_COMPOSE: {e}"))?,
            },
            docker_host: env.get("DOCKER_HOST").filter(|v| !v.is_empty()).cloned(),
            docker_config: env
                .get("DOCKER_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        };
        Ok((settings, warnings))
    }
}

fn parse_scope(value: &str) -> Option<ScopeSetting> {
    match value {
        "project" => Some(ScopeSetting::OwnProject),
        "all" => Some(ScopeSetting::All),
        _ => {
            let name = value.strip_prefix("project:")?;
            let valid = !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                })
                && name.as_bytes()[0].is_ascii_alphanumeric();
            valid.then(|| ScopeSetting::Project(name.to_string()))
        }
    }
}

fn parse_host_list(value: &str) -> Option<Vec<String>> {
    let hosts: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    let ok =
        |h: &String| !h.contains('/') && !h.contains("://") && !h.contains(char::is_whitespace);
    hosts.iter().all(ok).then_some(hosts)
}

fn unknown_variables(env: &BTreeMap<String, String>) -> Vec<String> {
    env.keys()
        .filter(|k| k.starts_with("PP_") && !VARIABLES.iter().any(|(name, _, _)| name == k))
        .map(|k| {
            let closest = VARIABLES
                .iter()
                .min_by_key(|(name, _, _)| strsim::levenshtein(name, k))
                .map_or("", |(name, _, _)| name);
            format!("{k} is not a pullpilot setting and is ignored; did you mean {closest}?")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{FailureKind, kind_of};

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn resolve(args: &GlobalArgs, pairs: &[(&str, &str)]) -> Result<Settings> {
        Settings::resolve(args, &env(pairs)).map(|(s, _)| s)
    }

    #[test]
    fn defaults() {
        let s = resolve(&GlobalArgs::default(), &[]).unwrap();
        assert_eq!(s.scope, ScopeSetting::OwnProject);
        assert_eq!(s.soak, Duration::from_secs(86_400));
        assert_eq!(s.health_timeout, Duration::from_secs(90));
        assert_eq!(s.health_stable, Duration::from_secs(10));
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/pullpilot"));
        assert!(!s.cleanup && !s.dry_run && !s.self_update);
        assert_eq!(s.log_level, log::LevelFilter::Info);
    }

    #[test]
    fn env_is_read_and_flags_override_it() {
        let s = resolve(
            &GlobalArgs::default(),
            &[
                ("PP_SOAK", "600"),
                ("PP_SCOPE", "project:shop"),
                ("PP_CLEANUP", "yes"),
            ],
        )
        .unwrap();
        assert_eq!(s.soak, Duration::from_secs(600));
        assert_eq!(s.scope, ScopeSetting::Project("shop".into()));
        assert!(s.cleanup);
        let args = GlobalArgs {
            soak: Some("0".into()),
            scope: Some("all".into()),
            ..GlobalArgs::default()
        };
        let s = resolve(&args, &[("PP_SOAK", "600"), ("PP_SCOPE", "project:shop")]).unwrap();
        assert_eq!(s.soak, Duration::ZERO);
        assert_eq!(s.scope, ScopeSetting::All);
    }

    #[test]
    fn empty_variable_means_default() {
        let s = resolve(
            &GlobalArgs::default(),
            &[("PP_SOAK", ""), ("PP_SCOPE", " ")],
        )
        .unwrap();
        assert_eq!(s.soak, Duration::from_secs(86_400));
    }

    /// The messages an operator meets most, so a change of wording is a reviewed diff of
    /// tests/snapshots/setting-errors.txt.
    #[test]
    fn setting_errors_are_snapshotted() {
        use std::fmt::Write as _;
        let cases = [
            ("PP_SOAK", "soon"),
            ("PP_SOAK", "18446744073709551615"),
            ("PP_SCOPE", "Project"),
            ("PP_CLEANUP", "sure"),
            ("PP_HEALTH_TIMEOUT", "0"),
            ("PP_LOG_LEVEL", "verbose"),
            ("PP_TIMEZONE", "Mars/Olympus"),
            ("PP_INSECURE_REGISTRIES", "http://reg:5000"),
            ("PP_WEBHOOK_URL", "relay.example"),
        ];
        let mut out = String::new();
        for (var, value) in cases {
            let err = resolve(&GlobalArgs::default(), &[(var, value)]).unwrap_err();
            let _ = write!(out, "{var}={value:?}\n  {err:#}\n");
        }
        crate::testsnap::assert_snapshot("setting-errors", &out);
    }

    #[test]
    fn invalid_values_name_the_variable_value_and_form() {
        let cases = [
            (
                "PP_SOAK",
                "soon",
                "PP_SOAK=\"soon\" is not valid: expected a duration",
            ),
            ("PP_SOAK", "-5", "PP_SOAK=\"-5\""),
            (
                "PP_SCOPE",
                "Project",
                "PP_SCOPE=\"Project\" is not valid: expected `project`",
            ),
            ("PP_SCOPE", "project:", "PP_SCOPE=\"project:\""),
            (
                "PP_CLEANUP",
                "sure",
                "PP_CLEANUP=\"sure\" is not valid: expected true or false",
            ),
            (
                "PP_HEALTH_TIMEOUT",
                "0",
                "PP_HEALTH_TIMEOUT=\"0\" is not valid: expected a duration of at least 1s",
            ),
            ("PP_LOG_LEVEL", "verbose", "PP_LOG_LEVEL=\"verbose\""),
            (
                "PP_TIMEZONE",
                "Mars/Olympus",
                "PP_TIMEZONE=\"Mars/Olympus\"",
            ),
            (
                "PP_INSECURE_REGISTRIES",
                "http://reg:5000",
                "PP_INSECURE_REGISTRIES",
            ),
            ("PP_WEBHOOK_URL", "relay.example", "PP_WEBHOOK_URL"),
        ];
        for (var, value, expected) in cases {
            let err = resolve(&GlobalArgs::default(), &[(var, value)]).unwrap_err();
            assert!(err.to_string().contains(expected), "{var}={value}: {err}");
            assert_eq!(kind_of(&err), Some(FailureKind::Usage), "{var}");
        }
        let args = GlobalArgs {
            soak: Some("x".into()),
            ..GlobalArgs::default()
        };
        let err = resolve(&args, &[]).unwrap_err().to_string();
        assert!(err.starts_with("--soak \"x\" is not valid"), "{err}");
    }

    #[test]
    fn durations_longer_than_ten_years_are_invalid_everywhere() {
        for var in [
            "PP_SOAK",
            "PP_HEALTH_TIMEOUT",
            "PP_HEALTH_STABLE",
            "PP_JITTER",
            "PP_HOOK_TIMEOUT",
        ] {
            assert!(
                resolve(&GlobalArgs::default(), &[(var, "10y")]).is_ok(),
                "{var}"
            );
            for value in ["18446744073709551615", "11y", "300000000000y"] {
                let err = resolve(&GlobalArgs::default(), &[(var, value)]).unwrap_err();
                let text = err.to_string();
                assert!(
                    text.starts_with(&format!("{var}={value:?} is not valid"))
                        && text.contains("10 years"),
                    "{var}={value}: {text}"
                );
                assert_eq!(kind_of(&err), Some(FailureKind::Usage), "{var}");
            }
        }
        let args = GlobalArgs {
            soak: Some("18446744073709551615".into()),
            ..GlobalArgs::default()
        };
        let err = resolve(&args, &[]).unwrap_err().to_string();
        assert!(
            err.starts_with("--soak \"18446744073709551615\" is not valid"),
            "{err}"
        );
    }

    #[test]
    fn unknown_pp_variables_are_warned_about_with_a_suggestion() {
        let (_, warnings) = Settings::resolve(
            &GlobalArgs::default(),
            &env(&[("PP_SOKA", "1h"), ("PATH", "/bin")]),
        )
        .unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("PP_SOKA") && warnings[0].contains("PP_SOAK"),
            "{warnings:?}"
        );
    }

    #[test]
    fn prefetch_is_a_whole_number_from_0_to_16_defaulting_to_3() {
        assert_eq!(resolve(&GlobalArgs::default(), &[]).unwrap().prefetch, 3);
        let s = resolve(&GlobalArgs::default(), &[("PP_PREFETCH", "0")]).unwrap();
        assert_eq!(s.prefetch, 0);
        for value in ["-1", "three", "17"] {
            let err = resolve(&GlobalArgs::default(), &[("PP_PREFETCH", value)]).unwrap_err();
            assert!(
                err.to_string().contains("a whole number from 0 to 16"),
                "{err}"
            );
        }
    }

    #[test]
    fn registry_concurrency_is_a_positive_whole_number_defaulting_to_16() {
        let s = resolve(&GlobalArgs::default(), &[]).unwrap();
        assert_eq!(s.registry_concurrency, 16);
        let documented = VARIABLES
            .iter()
            .find(|(name, _, _)| *name == "PP_REGISTRY_CONCURRENCY")
            .map(|(_, default, _)| *default);
        assert_eq!(documented, Some("16"));
        let s = resolve(
            &GlobalArgs::default(),
            &[("PP_REGISTRY_CONCURRENCY", " 32 ")],
        )
        .unwrap();
        assert_eq!(s.registry_concurrency, 32);
        for value in ["0", "-1", "four", "1.5", "1025"] {
            let err = resolve(
                &GlobalArgs::default(),
                &[("PP_REGISTRY_CONCURRENCY", value)],
            )
            .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "PP_REGISTRY_CONCURRENCY={value:?} is not valid: expected a whole number \
                     from 1 to 1024"
                )
            );
            assert_eq!(kind_of(&err), Some(FailureKind::Usage), "{value}");
        }
    }

    #[test]
    fn insecure_registries_list() {
        let s = resolve(
            &GlobalArgs::default(),
            &[("PP_INSECURE_REGISTRIES", "reg.lan:5000, other.lan")],
        )
        .unwrap();
        assert_eq!(s.insecure_registries, ["reg.lan:5000", "other.lan"]);
    }
}
