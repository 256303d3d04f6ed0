//! The decision, per container: observed facts + state + clock → what to do and why.
//!
//! Pure: no Docker, no HTTP, no clock, no environment. The order is the product's contract
//! (first match wins): excluded → invalid label → image is not a tag → digest-pinned reference →
//! pinned in state → no local repo digest → registry error → up to date (the same digest, or
//! the same image for the container's platform) → self → blocked →
//! monitor-only → soak → update. [`registry_target`] says which containers need a registry
//! check at all, so excluded, pinned and locally built containers cost no request.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::labels::{LabelError, Parsed};
use crate::reference::{Digest, ImageRef};
use crate::state::State;
use crate::values::format_duration;

/// What was observed about one container.
#[derive(Clone, Debug)]
pub struct Observed {
    /// Its key in state (see `state::schema::container_key`).
    pub key: String,
    pub name: String,
    /// The image reference the container was created with (`Config.Image`).
    pub config_image: String,
    /// Digests of the container's image for the same repository (and, on the containerd image
    /// store, the image ID).
    pub local_digests: Vec<Digest>,
    /// What the container runs, per platform: the platform check compares it when the tag's
    /// index changed. `None` when the engine did not say (then only whole digests compare).
    pub running: Option<RunningImage>,
    /// The image has no name left (`RepoTags` is empty): a newer image took its tag.
    pub dangling: bool,
    pub labels: Parsed,
    /// This is pullpilot's own container.
    pub is_self: bool,
}

/// The image a container runs, as the platform check compares it with a tag's index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningImage {
    /// `os/arch[/variant]`, e.g. `linux/amd64`.
    pub platform: String,
    /// The platform manifest digest the engine reports (containerd image store, API 1.48+).
    pub manifest: Option<Digest>,
    /// The image's config digest: its ID on the classic image store.
    pub config: Option<Digest>,
}

/// What the registry said about the tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Remote {
    Digest(Digest),
    /// The tag's index is new, but its image for the container's platform is the one the
    /// container runs: nothing to do.
    PlatformUnchanged {
        index: Digest,
    },
    Error {
        kind: String,
        message: String,
    },
}

/// Settings and state the decision reads.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub now: SystemTime,
    pub default_soak: Duration,
    pub self_update: bool,
    pub state: &'a State,
}

/// Why a container is left alone because of its configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExcludedBy {
    ExcludeLabel,
    EnableLabel,
    OwnContainer,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    Excluded {
        by: ExcludedBy,
    },
    InvalidLabel {
        errors: Vec<LabelError>,
    },
    NotATag {
        problem: String,
    },
    DigestPinned {
        digest: Digest,
    },
    PinnedInState {
        digest: Digest,
        reason: String,
    },
    LocallyBuilt,
    /// The image lost its name and has no registry digest left: a newer image was pulled or
    /// built under its tag. Nothing to compare, so nothing is done.
    Dangling,
    RegistryError {
        kind: String,
        message: String,
    },
    UpToDate,
    SelfUpdateAvailable {
        digest: Digest,
    },
    Blocked {
        digest: Digest,
        reason: String,
    },
    MonitorOnly {
        digest: Digest,
    },
    Soaking {
        digest: Digest,
        #[serde(with = "rfc3339")]
        first_seen: SystemTime,
        #[serde(with = "rfc3339")]
        rollout_at: SystemTime,
        remaining_seconds: u64,
        /// No clock is running yet for this digest: `apply` would start it now.
        new_candidate: bool,
    },
    Update {
        digest: Digest,
    },
}

impl Decision {
    /// A short, stable word for tables and metrics.
    pub fn word(&self) -> &'static str {
        match self {
            Decision::Excluded { .. } => "excluded",
            Decision::InvalidLabel { .. } => "invalid label",
            Decision::NotATag { .. } => "not a tag",
            Decision::DigestPinned { .. } => "pinned (digest)",
            Decision::PinnedInState { .. } => "pinned",
            Decision::LocallyBuilt => "locally built",
            Decision::Dangling => "no registry digest",
            Decision::RegistryError { .. } => "check failed",
            Decision::UpToDate => "up to date",
            Decision::SelfUpdateAvailable { .. } => "update available (self)",
            Decision::Blocked { .. } => "blocked",
            Decision::MonitorOnly { .. } => "update available",
            Decision::Soaking { .. } => "soaking",
            Decision::Update { .. } => "update",
        }
    }

    /// Why, in a sentence fragment a person reads after the word.
    pub fn reason(&self, now: SystemTime) -> String {
        match self {
            Decision::Excluded {
                by: ExcludedBy::ExcludeLabel,
            } => "label io.pullpilot.exclude=true".into(),
            Decision::Excluded {
                by: ExcludedBy::EnableLabel,
            } => "label io.pullpilot.enable=false".into(),
            Decision::Excluded {
                by: ExcludedBy::OwnContainer,
            } => "pullpilot's own container (set PP_SELF_UPDATE=true to be told of updates)".into(),
            Decision::InvalidLabel { errors } => {
                let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
                format!(
                    "{}; fix the label and recreate the container",
                    list.join("; ")
                )
            }
            Decision::NotATag { problem } => {
                format!("{problem}; there is no tag to follow")
            }
            Decision::DigestPinned { .. } => {
                "the image reference names a digest, so it never changes".into()
            }
            Decision::PinnedInState { reason, .. } => {
                if reason.is_empty() {
                    "held by `pullpilot pin`; `pullpilot unpin` resumes updates".into()
                } else {
                    format!("{reason}; `pullpilot unpin` resumes updates")
                }
            }
            Decision::LocallyBuilt => {
                "the image has no registry digest (built or loaded locally), so there is \
                 nothing to compare with"
                    .into()
            }
            Decision::Dangling => {
                "the image this container runs has lost its name and has no registry digest (a \
                 newer image was pulled or built under its tag), so there is nothing exact to \
                 compare; recreate the container (`docker compose up -d`) to run the image its \
                 tag names now"
                    .into()
            }
            Decision::RegistryError { message, .. } => message.clone(),
            Decision::UpToDate => "the registry has the digest this container runs".into(),
            Decision::SelfUpdateAvailable { digest } => {
                format!(
                    "{} is available; pullpilot never recreates itself",
                    digest.short()
                )
            }
            Decision::Blocked { digest, reason } => format!(
                "{} failed the health gate before ({reason}); `pullpilot unblock` allows it again",
                digest.short()
            ),
            Decision::MonitorOnly { digest } => {
                format!("{} is available; monitor-only, not applied", digest.short())
            }
            Decision::Soaking {
                rollout_at,
                new_candidate,
                ..
            } => {
                let left = rollout_at.duration_since(now).unwrap_or_default();
                let at = format_time(*rollout_at);
                if *new_candidate {
                    format!(
                        "new digest; the soak clock starts at the next apply ({} from then)",
                        format_duration(left)
                    )
                } else {
                    format!("{} left; rollout at {at}", format_duration(left))
                }
            }
            Decision::Update { digest } => format!("{} will be rolled out", digest.short()),
        }
    }

    /// The check failed, so the run as a whole reports a failure.
    pub fn is_failure(&self) -> bool {
        matches!(self, Decision::RegistryError { .. })
    }
}

/// The reference to check at the registry, or the decision that makes a check unnecessary.
pub fn registry_target(c: &Observed, ctx: &Context<'_>) -> Result<ImageRef, Decision> {
    let policy = &c.labels.policy;
    if policy.exclude {
        return Err(Decision::Excluded {
            by: ExcludedBy::ExcludeLabel,
        });
    }
    if policy.enable == Some(false) {
        return Err(Decision::Excluded {
            by: ExcludedBy::EnableLabel,
        });
    }
    if c.is_self && !ctx.self_update {
        return Err(Decision::Excluded {
            by: ExcludedBy::OwnContainer,
        });
    }
    if !c.labels.errors.is_empty() {
        return Err(Decision::InvalidLabel {
            errors: c.labels.errors.clone(),
        });
    }
    let reference = ImageRef::parse(&c.config_image).map_err(|e| Decision::NotATag {
        problem: e.to_string(),
    })?;
    if let Some(digest) = reference.pinned_digest() {
        return Err(Decision::DigestPinned {
            digest: digest.clone(),
        });
    }
    if let Some(pin) = ctx
        .state
        .containers
        .get(&c.key)
        .and_then(|s| s.pin.as_ref())
    {
        return Err(Decision::PinnedInState {
            digest: pin.digest.clone(),
            reason: pin.reason.clone(),
        });
    }
    if c.local_digests.is_empty() {
        return Err(if c.dangling {
            Decision::Dangling
        } else {
            Decision::LocallyBuilt
        });
    }
    Ok(reference)
}

/// Decides for one container. `remote` is the registry's answer for [`registry_target`]'s
/// reference; it is ignored when no check was needed.
pub fn decide(c: &Observed, remote: Option<&Remote>, ctx: &Context<'_>) -> Decision {
    let reference = match registry_target(c, ctx) {
        Ok(reference) => reference,
        Err(decision) => return decision,
    };
    let digest = match remote {
        Some(Remote::Digest(digest)) => digest,
        Some(Remote::PlatformUnchanged { .. }) => return Decision::UpToDate,
        Some(Remote::Error { kind, message }) => {
            return Decision::RegistryError {
                kind: kind.clone(),
                message: message.clone(),
            };
        }
        None => {
            return Decision::RegistryError {
                kind: "not-checked".into(),
                message: "the registry was not asked (internal error; please report it)".into(),
            };
        }
    };
    if c.local_digests.contains(digest) {
        return Decision::UpToDate;
    }
    if c.is_self {
        return Decision::SelfUpdateAvailable {
            digest: digest.clone(),
        };
    }
    if let Some(blocked) = ctx
        .state
        .blocked
        .get(&reference.name())
        .and_then(|b| b.get(digest))
    {
        return Decision::Blocked {
            digest: digest.clone(),
            reason: blocked.reason.clone(),
        };
    }
    if c.labels.policy.monitor_only {
        return Decision::MonitorOnly {
            digest: digest.clone(),
        };
    }
    let soak = c.labels.policy.soak.unwrap_or(ctx.default_soak);
    if soak.is_zero() {
        return Decision::Update {
            digest: digest.clone(),
        };
    }
    let candidate = ctx
        .state
        .containers
        .get(&c.key)
        .and_then(|s| s.candidate.as_ref())
        .filter(|cand| &cand.digest == digest);
    let first_seen = candidate.map_or(ctx.now, |cand| cand.first_seen);
    let elapsed = ctx.now.duration_since(first_seen).unwrap_or_default();
    if elapsed >= soak {
        return Decision::Update {
            digest: digest.clone(),
        };
    }
    Decision::Soaking {
        digest: digest.clone(),
        first_seen,
        rollout_at: rollout_at(first_seen, soak),
        remaining_seconds: soak.saturating_sub(elapsed).as_secs(),
        new_candidate: candidate.is_none(),
    }
}

/// When a digest first seen at `first_seen` has soaked for `soak`. Checked arithmetic: never
/// an overflow, and never later than [`latest_printable`] (a far-future `first_seen` in a
/// hand-edited state file would otherwise give a time that cannot be printed).
pub fn rollout_at(first_seen: SystemTime, soak: Duration) -> SystemTime {
    first_seen
        .checked_add(soak)
        .map_or_else(latest_printable, |t| t.min(latest_printable()))
}

/// The last second an RFC 3339 timestamp can show, 9999-12-31T23:59:59Z; humantime panics
/// on anything later.
pub fn latest_printable() -> SystemTime {
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(253_402_300_799))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// `t` as RFC 3339 seconds, clamped into what RFC 3339 can show (1970 to 9999).
pub fn format_time(t: SystemTime) -> String {
    let t = t.clamp(SystemTime::UNIX_EPOCH, latest_printable());
    humantime::format_rfc3339_seconds(t).to_string()
}

mod rfc3339 {
    use std::time::SystemTime;

    pub(super) fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(*t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;
    use crate::state::{Blocked, Candidate, ContainerState, Pin};
    use std::collections::BTreeMap;

    const HOUR: Duration = Duration::from_secs(3600);

    fn digest(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn container(label_pairs: &[(&str, &str)]) -> Observed {
        let map: BTreeMap<String, String> = label_pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Observed {
            key: "shop/web".into(),
            name: "shop-web-1".into(),
            config_image: "ghcr.io/acme/web:1".into(),
            local_digests: vec![digest('a')],
            running: None,
            dangling: false,
            labels: labels::parse(&map, false),
            is_self: false,
        }
    }

    fn ctx(state: &State) -> Context<'_> {
        Context {
            now: now(),
            default_soak: 24 * HOUR,
            self_update: false,
            state,
        }
    }

    fn with_candidate(d: Digest, age: Duration) -> State {
        let mut state = State::default();
        state.containers.insert(
            "shop/web".into(),
            ContainerState {
                candidate: Some(Candidate {
                    digest: d,
                    first_seen: now() - age,
                }),
                ..ContainerState::default()
            },
        );
        state
    }

    fn remote(c: char) -> Remote {
        Remote::Digest(digest(c))
    }

    #[test]
    fn excluded_by_labels_and_own_container() {
        let state = State::default();
        let d = decide(&container(&[(labels::EXCLUDE, "true")]), None, &ctx(&state));
        assert_eq!(
            d,
            Decision::Excluded {
                by: ExcludedBy::ExcludeLabel
            }
        );
        let d = decide(&container(&[(labels::ENABLE, "false")]), None, &ctx(&state));
        assert_eq!(
            d,
            Decision::Excluded {
                by: ExcludedBy::EnableLabel
            }
        );
        let mut own = container(&[]);
        own.is_self = true;
        assert_eq!(
            decide(&own, None, &ctx(&state)),
            Decision::Excluded {
                by: ExcludedBy::OwnContainer
            }
        );
    }

    #[test]
    fn exclusion_wins_over_invalid_labels() {
        let state = State::default();
        let c = container(&[(labels::EXCLUDE, "true"), (labels::SOAK, "soon")]);
        assert!(matches!(
            decide(&c, None, &ctx(&state)),
            Decision::Excluded { .. }
        ));
    }

    #[test]
    fn invalid_label_is_never_updated() {
        let state = State::default();
        let c = container(&[(labels::SOAK, "soon")]);
        assert!(
            registry_target(&c, &ctx(&state)).is_err(),
            "no registry call for invalid labels"
        );
        match decide(&c, Some(&remote('b')), &ctx(&state)) {
            Decision::InvalidLabel { errors } => assert_eq!(errors[0].label, labels::SOAK),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn image_ids_and_bad_references_are_not_tags() {
        let state = State::default();
        let mut c = container(&[]);
        c.config_image = format!("sha256:{}", "f".repeat(64));
        assert!(matches!(
            decide(&c, None, &ctx(&state)),
            Decision::NotATag { .. }
        ));
        c.config_image = "Example.com/App:1".into();
        let d = decide(&c, None, &ctx(&state));
        assert!(d.reason(now()).contains("lowercase"), "{d:?}");
    }

    #[test]
    fn digest_pinned_references_need_no_registry() {
        let state = State::default();
        for image in [
            format!("nginx@{}", digest('c')),
            format!("nginx:1.27@{}", digest('c')),
        ] {
            let mut c = container(&[]);
            c.config_image = image;
            assert!(registry_target(&c, &ctx(&state)).is_err());
            assert_eq!(
                decide(&c, None, &ctx(&state)),
                Decision::DigestPinned {
                    digest: digest('c')
                }
            );
        }
    }

    #[test]
    fn state_pin_holds_the_container() {
        let mut state = State::default();
        state.containers.insert(
            "shop/web".into(),
            ContainerState {
                pin: Some(Pin {
                    digest: digest('a'),
                    since: now(),
                    reason: String::new(),
                }),
                ..ContainerState::default()
            },
        );
        let d = decide(&container(&[]), Some(&remote('b')), &ctx(&state));
        assert!(matches!(d, Decision::PinnedInState { .. }), "{d:?}");
        assert!(d.reason(now()).contains("unpin"));
    }

    #[test]
    fn locally_built_images_are_not_checked() {
        let state = State::default();
        let mut c = container(&[]);
        c.local_digests.clear();
        assert_eq!(
            registry_target(&c, &ctx(&state)),
            Err(Decision::LocallyBuilt)
        );
    }

    #[test]
    fn a_dangling_image_without_digests_is_explained_not_updated() {
        let state = State::default();
        let mut c = container(&[(labels::SOAK, "0")]);
        c.local_digests.clear();
        c.dangling = true;
        assert_eq!(registry_target(&c, &ctx(&state)), Err(Decision::Dangling));
        let d = decide(&c, Some(&remote('b')), &ctx(&state));
        assert_eq!(d, Decision::Dangling);
        assert!(!d.is_failure());
        assert!(d.reason(now()).contains("lost its name"), "{d:?}");
    }

    #[test]
    fn an_index_changed_only_for_other_platforms_is_up_to_date() {
        let state = with_candidate(digest('b'), 48 * HOUR);
        let c = container(&[(labels::SOAK, "0")]);
        let unchanged = Remote::PlatformUnchanged { index: digest('b') };
        assert_eq!(
            decide(&c, Some(&unchanged), &ctx(&state)),
            Decision::UpToDate
        );
        // The exclusions still come first.
        let mut pinned = container(&[(labels::EXCLUDE, "true")]);
        pinned.local_digests.clear();
        assert!(matches!(
            decide(&pinned, Some(&unchanged), &ctx(&state)),
            Decision::Excluded { .. }
        ));
    }

    #[test]
    fn registry_errors_are_failures_never_updates() {
        let state = State::default();
        let err = Remote::Error {
            kind: "unreachable".into(),
            message: "registry down".into(),
        };
        let d = decide(&container(&[(labels::SOAK, "0")]), Some(&err), &ctx(&state));
        assert!(d.is_failure());
        assert_eq!(d.reason(now()), "registry down");
        assert!(decide(&container(&[]), None, &ctx(&state)).is_failure());
    }

    #[test]
    fn up_to_date_when_remote_is_any_local_digest() {
        let state = State::default();
        let mut c = container(&[]);
        c.local_digests = vec![digest('e'), digest('a')];
        assert_eq!(
            decide(&c, Some(&remote('a')), &ctx(&state)),
            Decision::UpToDate
        );
    }

    #[test]
    fn self_is_notify_only_and_comes_before_blocked_and_soak() {
        let mut state = with_candidate(digest('b'), 48 * HOUR);
        state
            .blocked
            .entry("ghcr.io/acme/web".into())
            .or_default()
            .insert(
                digest('b'),
                Blocked {
                    at: now(),
                    reason: "unhealthy".into(),
                    container: "shop-web-1".into(),
                },
            );
        let mut c = container(&[]);
        c.is_self = true;
        let context = Context {
            self_update: true,
            ..ctx(&state)
        };
        assert_eq!(
            decide(&c, Some(&remote('b')), &context),
            Decision::SelfUpdateAvailable {
                digest: digest('b')
            }
        );
    }

    #[test]
    fn blocked_digest_is_not_retried_but_a_newer_one_is() {
        let mut state = with_candidate(digest('b'), 48 * HOUR);
        state
            .blocked
            .entry("ghcr.io/acme/web".into())
            .or_default()
            .insert(
                digest('b'),
                Blocked {
                    at: now(),
                    reason: "unhealthy".into(),
                    container: "shop-web-1".into(),
                },
            );
        let c = container(&[(labels::MONITOR_ONLY, "true")]);
        assert!(matches!(
            decide(&c, Some(&remote('b')), &ctx(&state)),
            Decision::Blocked { .. }
        ));
        let fresh = container(&[(labels::SOAK, "0")]);
        assert_eq!(
            decide(&fresh, Some(&remote('c')), &ctx(&state)),
            Decision::Update {
                digest: digest('c')
            }
        );
    }

    #[test]
    fn blocked_is_per_repository() {
        let mut state = State::default();
        state
            .blocked
            .entry("ghcr.io/acme/other".into())
            .or_default()
            .insert(
                digest('b'),
                Blocked {
                    at: now(),
                    reason: "unhealthy".into(),
                    container: "x".into(),
                },
            );
        let c = container(&[(labels::SOAK, "0")]);
        assert_eq!(
            decide(&c, Some(&remote('b')), &ctx(&state)),
            Decision::Update {
                digest: digest('b')
            }
        );
    }

    #[test]
    fn monitor_only_reports_without_updating() {
        let state = with_candidate(digest('b'), 48 * HOUR);
        let c = container(&[(labels::MONITOR_ONLY, "yes")]);
        assert_eq!(
            decide(&c, Some(&remote('b')), &ctx(&state)),
            Decision::MonitorOnly {
                digest: digest('b')
            }
        );
    }

    #[test]
    fn a_new_digest_soaks_and_read_only_preview_starts_no_clock() {
        let state = State::default();
        match decide(&container(&[]), Some(&remote('b')), &ctx(&state)) {
            Decision::Soaking {
                first_seen,
                rollout_at,
                remaining_seconds,
                new_candidate,
                ..
            } => {
                assert_eq!(first_seen, now());
                assert_eq!(rollout_at, now() + 24 * HOUR);
                assert_eq!(remaining_seconds, 86_400);
                assert!(new_candidate);
            }
            other => panic!("{other:?}"),
        }
        assert!(state.containers.is_empty());
    }

    #[test]
    fn soak_counts_from_first_seen_in_state() {
        let state = with_candidate(digest('b'), 20 * HOUR);
        match decide(&container(&[]), Some(&remote('b')), &ctx(&state)) {
            Decision::Soaking {
                remaining_seconds,
                new_candidate,
                ..
            } => {
                assert_eq!(remaining_seconds, 4 * 3600);
                assert!(!new_candidate);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_different_digest_restarts_the_clock() {
        let state = with_candidate(digest('b'), 30 * HOUR);
        let d = decide(&container(&[]), Some(&remote('c')), &ctx(&state));
        assert!(
            matches!(
                d,
                Decision::Soaking {
                    new_candidate: true,
                    remaining_seconds: 86_400,
                    ..
                }
            ),
            "{d:?}"
        );
    }

    #[test]
    fn soaked_digest_updates() {
        let state = with_candidate(digest('b'), 24 * HOUR);
        assert_eq!(
            decide(&container(&[]), Some(&remote('b')), &ctx(&state)),
            Decision::Update {
                digest: digest('b')
            }
        );
    }

    #[test]
    fn soak_label_overrides_default_and_zero_is_immediate() {
        let state = with_candidate(digest('b'), 2 * HOUR);
        let c = container(&[(labels::SOAK, "1h")]);
        assert_eq!(
            decide(&c, Some(&remote('b')), &ctx(&state)),
            Decision::Update {
                digest: digest('b')
            }
        );
        let c = container(&[(labels::SOAK, "0")]);
        assert_eq!(
            decide(&c, Some(&remote('d')), &ctx(&State::default())),
            Decision::Update {
                digest: digest('d')
            }
        );
    }

    #[test]
    fn clock_going_backwards_does_not_update_early() {
        let state = with_candidate(digest('b'), Duration::ZERO);
        let context = Context {
            now: now() - HOUR,
            ..ctx(&state)
        };
        assert!(matches!(
            decide(&container(&[]), Some(&remote('b')), &context),
            Decision::Soaking { .. }
        ));
    }

    #[test]
    fn a_soak_label_over_ten_years_is_an_invalid_label() {
        let c = container(&[(labels::SOAK, "300000000000y")]);
        let d = decide(&c, Some(&remote('b')), &ctx(&State::default()));
        let Decision::InvalidLabel { errors } = &d else {
            panic!("{d:?}");
        };
        assert_eq!(errors[0].label, labels::SOAK);
        assert!(
            d.reason(now()).contains("up to 10 years"),
            "{}",
            d.reason(now())
        );
        let c = container(&[(labels::HEALTH_TIMEOUT, "18446744073709551615")]);
        let d = decide(&c, Some(&remote('b')), &ctx(&State::default()));
        assert!(d.reason(now()).contains("at most 10 years"), "{d:?}");
    }

    #[test]
    fn rollout_time_is_checked_and_printable() {
        // Whatever reaches `decide` (a soak the parser would refuse, a first_seen a state file
        // put in year 9999), the rollout time neither overflows nor breaks the printing.
        let mut c = container(&[]);
        c.labels.policy.soak = Some(Duration::MAX);
        let d = decide(&c, Some(&remote('b')), &ctx(&State::default()));
        let Decision::Soaking { rollout_at, .. } = &d else {
            panic!("{d:?}");
        };
        assert_eq!(*rollout_at, latest_printable());
        assert!(
            d.reason(now()).contains("next apply"),
            "{}",
            d.reason(now())
        );
        serde_json::to_value(&d).unwrap();

        let mut state = with_candidate(digest('b'), Duration::ZERO);
        let far = humantime::parse_rfc3339("9999-12-31T00:00:00Z").unwrap();
        state
            .containers
            .get_mut("shop/web")
            .unwrap()
            .candidate
            .as_mut()
            .unwrap()
            .first_seen = far;
        let d = decide(&container(&[]), Some(&remote('b')), &ctx(&state));
        let Decision::Soaking { rollout_at, .. } = &d else {
            panic!("{d:?}");
        };
        assert_eq!(*rollout_at, latest_printable());
        assert!(
            d.reason(now()).ends_with("rollout at 9999-12-31T23:59:59Z"),
            "{}",
            d.reason(now())
        );
        assert_eq!(
            serde_json::to_value(&d).unwrap()["rollout_at"],
            "9999-12-31T23:59:59Z"
        );

        assert_eq!(super::rollout_at(now(), HOUR), now() + HOUR);
        assert_eq!(
            format_time(SystemTime::UNIX_EPOCH - HOUR),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn every_decision_has_a_word_and_a_reason() {
        let state = with_candidate(digest('b'), HOUR);
        let d = decide(&container(&[]), Some(&remote('b')), &ctx(&state));
        assert_eq!(d.word(), "soaking");
        assert!(d.reason(now()).contains("23h"), "{}", d.reason(now()));
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["decision"], "soaking");
        assert_eq!(json["remaining_seconds"], 23 * 3600);
    }
}
