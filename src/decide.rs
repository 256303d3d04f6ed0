//! The decision, per container: observed facts + state + clock → what to do and why.
//!
//! Pure: no Docker, no HTTP, no clock, no environment. The order is the product's contract
//! (first match wins): excluded → invalid label → image is not a tag → digest-pinned reference →
//! pinned in state → a `track` label its tag cannot follow → no local repo digest → a newer
//! version tag (see below) → registry error → up to date (the same digest, or the same image
//! for the container's platform) → self → blocked → monitor-only → soak → update.
//!
//! A newer version tag (`io.pullpilot.track`, [`Newer`]) wins over a new digest of the current
//! tag, and goes through the same steps: its own registry error, blocked, monitor-only, then
//! "cannot edit" when the compose file cannot be moved to it, soak (the tag and digest must
//! stay the best candidate), then the same last gates as a digest (paused, approval, window).
//! The last three only hold an update back: the check, the soak clock and the notifications go
//! on, so a paused or waiting container's candidate is ready the moment it is let through. [`registry_target`] says which containers need a registry
//! check at all, so excluded, pinned and locally built containers cost no request.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::labels::{LabelError, Parsed};
use crate::reference::{Digest, ImageRef};
use crate::state::State;
use crate::time::Windows;
use crate::values::format_duration;
use crate::version::{self, Track};

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

/// The newest version tag the container's track allows, when it is newer than its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Newer {
    pub tag: String,
    /// What the registry said about that tag ([`Remote::Digest`] or [`Remote::Error`]).
    pub remote: Remote,
    /// Why the compose file cannot be moved to it; `None` when it can.
    pub cannot_edit: Option<String>,
}

/// Settings and state the decision reads.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub now: SystemTime,
    pub default_soak: Duration,
    /// `PP_TRACK`: the track of containers without an `io.pullpilot.track` label.
    pub default_track: &'a Track,
    /// `PP_WINDOW`: when updates may start, for containers without `io.pullpilot.window`.
    pub default_window: Option<&'a Windows>,
    /// `PP_APPROVE=manual`, for containers without `io.pullpilot.approve`.
    pub approve_manual: bool,
    /// `PP_TIMEZONE`: windows are wall-clock time there.
    pub timezone: &'a jiff::tz::TimeZone,
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
        /// The newer version tag this digest is, for a version move.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    MonitorOnly {
        digest: Digest,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    /// A newer version tag is available, but the compose file cannot be moved to it safely:
    /// notify only (a container compose would revert is never made).
    CannotEdit {
        digest: Digest,
        tag: String,
        reason: String,
    },
    Soaking {
        digest: Digest,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        #[serde(with = "rfc3339")]
        first_seen: SystemTime,
        #[serde(with = "rfc3339")]
        rollout_at: SystemTime,
        remaining_seconds: u64,
        /// No clock is running yet for this digest: `apply` would start it now.
        new_candidate: bool,
    },
    /// Soaked, but `pullpilot pause` holds updates (of this container, or all).
    Paused {
        digest: Digest,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        /// When the pause ends by itself.
        #[serde(default, with = "rfc3339_opt", skip_serializing_if = "Option::is_none")]
        until: Option<SystemTime>,
    },
    /// Soaked; waits for `pullpilot approve` (`io.pullpilot.approve=manual`).
    AwaitingApproval {
        digest: Digest,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        /// The command that approves it.
        command: String,
    },
    /// Soaked (and approved, if needed); waits for the maintenance window.
    WaitingForWindow {
        digest: Digest,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        #[serde(default, with = "rfc3339_opt", skip_serializing_if = "Option::is_none")]
        opens_at: Option<SystemTime>,
        /// `Sat 02:00`, in `PP_TIMEZONE`.
        opens: String,
    },
    Update {
        digest: Digest,
        /// The version tag to move to; `None` for a new digest of the current tag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
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
            Decision::MonitorOnly { .. } | Decision::CannotEdit { .. } => "update available",
            Decision::Soaking { .. } => "soaking",
            Decision::Paused { .. } => "paused",
            Decision::AwaitingApproval { .. } => "awaiting approval",
            Decision::WaitingForWindow { .. } => "waiting for window",
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
            Decision::Blocked {
                digest,
                reason,
                tag,
            } => format!(
                "{} failed the health gate before ({reason}); `pullpilot unblock` allows it again",
                shown(tag.as_deref(), digest)
            ),
            Decision::MonitorOnly { digest, tag } => {
                format!(
                    "{} is available; monitor-only, not applied",
                    shown(tag.as_deref(), digest)
                )
            }
            Decision::CannotEdit {
                digest,
                tag,
                reason,
            } => format!(
                "{} is available, but pullpilot cannot edit the compose file: {reason}; \
                 move the tag by hand",
                shown(Some(tag), digest)
            ),
            Decision::Soaking {
                rollout_at,
                new_candidate,
                tag,
                ..
            } => {
                let left = rollout_at.duration_since(now).unwrap_or_default();
                let at = format_time(*rollout_at);
                let what = tag
                    .as_ref()
                    .map_or_else(|| "new digest".to_string(), |t| format!("new version {t}"));
                if *new_candidate {
                    format!(
                        "{what}; the soak clock starts at the next apply ({} from then)",
                        format_duration(left)
                    )
                } else if tag.is_some() {
                    format!("{what}; {} left; rollout at {at}", format_duration(left))
                } else {
                    format!("{} left; rollout at {at}", format_duration(left))
                }
            }
            Decision::Paused { digest, tag, until } => {
                let until = until.map_or_else(
                    || "until `pullpilot resume`".to_string(),
                    |u| format!("until {}", format_time(u)),
                );
                format!(
                    "{} has soaked; updates are paused {until}",
                    shown(tag.as_deref(), digest)
                )
            }
            Decision::AwaitingApproval {
                digest,
                tag,
                command,
            } => format!(
                "{} has soaked and waits for approval: run `{command}`",
                shown(tag.as_deref(), digest)
            ),
            Decision::WaitingForWindow {
                opens_at, opens, ..
            } => match opens_at {
                Some(at) => format!(
                    "waiting for the window (opens {opens}, in {})",
                    format_duration(at.duration_since(now).unwrap_or_default())
                ),
                None => "waiting for the window (it never opens: check PP_WINDOW)".into(),
            },
            Decision::Update { digest, tag } => {
                format!("{} will be rolled out", shown(tag.as_deref(), digest))
            }
        }
    }

    /// The version tag a decision moves to, if it is a version move.
    pub fn to_tag(&self) -> Option<&str> {
        match self {
            Decision::Update { tag, .. }
            | Decision::Paused { tag, .. }
            | Decision::AwaitingApproval { tag, .. }
            | Decision::WaitingForWindow { tag, .. }
            | Decision::Soaking { tag, .. }
            | Decision::MonitorOnly { tag, .. }
            | Decision::Blocked { tag, .. } => tag.as_deref(),
            Decision::CannotEdit { tag, .. } => Some(tag),
            _ => None,
        }
    }

    /// The check failed, so the run as a whole reports a failure.
    pub fn is_failure(&self) -> bool {
        matches!(self, Decision::RegistryError { .. })
    }
}

/// `1.2.10 (sha256:abcd…)` for a version move, the short digest otherwise.
fn shown(tag: Option<&str>, digest: &Digest) -> String {
    match tag {
        Some(tag) => format!("{tag} ({})", digest.short()),
        None => digest.short().to_string(),
    }
}

/// The track a container follows, and whether its label set it (an unfit tag is then an
/// invalid label; under `PP_TRACK` alone it just follows its digest).
pub fn track_of<'a>(c: &'a Observed, ctx: &Context<'a>) -> (&'a Track, bool) {
    match &c.labels.policy.track {
        Some(track) => (track, true),
        None => (ctx.default_track, false),
    }
}

/// The version track to follow for `c` on `reference`'s tag: `None` when it follows digests
/// only (the `digest` track, or `PP_TRACK` on a tag that is not a version).
pub fn version_track<'a>(
    c: &'a Observed,
    reference: &ImageRef,
    ctx: &Context<'a>,
) -> Option<&'a Track> {
    let (track, _) = track_of(c, ctx);
    let tag = reference.tag().unwrap_or("latest");
    (track.follows_tags() && version::unfit(tag, track).is_none()).then_some(track)
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
    if let (track, true) = track_of(c, ctx)
        && version::unfit(reference.tag().unwrap_or("latest"), track).is_some()
    {
        return Err(Decision::InvalidLabel {
            errors: vec![LabelError {
                label: crate::labels::TRACK.into(),
                value: track.to_string(),
                expected: "a container whose image tag is a version (1.2.3, v2.1, 16.2-alpine) \
                           or matches the pattern; use track=digest for other tags",
            }],
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

/// Decides for one container that follows digests only. See [`decide_with`].
pub fn decide(c: &Observed, remote: Option<&Remote>, ctx: &Context<'_>) -> Decision {
    decide_with(c, remote, None, ctx)
}

/// Decides for one container. `remote` is the registry's answer for [`registry_target`]'s
/// reference; it is ignored when no check was needed. `newer` is the newest version tag the
/// container's track allows, when there is one.
pub fn decide_with(
    c: &Observed,
    remote: Option<&Remote>,
    newer: Option<&Newer>,
    ctx: &Context<'_>,
) -> Decision {
    let reference = match registry_target(c, ctx) {
        Ok(reference) => reference,
        Err(decision) => return decision,
    };
    if let Some(newer) = newer {
        return decide_version(c, &reference, newer, ctx);
    }
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
    held_or_soaked(c, &reference, digest, None, ctx)
}

/// Blocked, monitor-only, or on to the soak: the steps a digest and a version move share. A
/// version move (`newer`) that cannot edit the compose file stops after monitor-only.
fn held_or_soaked(
    c: &Observed,
    reference: &ImageRef,
    digest: &Digest,
    newer: Option<&Newer>,
    ctx: &Context<'_>,
) -> Decision {
    let tag = newer.map(|n| n.tag.clone());
    if let Some(blocked) = ctx
        .state
        .blocked
        .get(&reference.name())
        .and_then(|b| b.get(digest))
    {
        return Decision::Blocked {
            digest: digest.clone(),
            reason: blocked.reason.clone(),
            tag,
        };
    }
    if c.labels.policy.monitor_only {
        return Decision::MonitorOnly {
            digest: digest.clone(),
            tag,
        };
    }
    if let Some((newer, reason)) = newer.and_then(|n| Some((n, n.cannot_edit.as_ref()?))) {
        return Decision::CannotEdit {
            digest: digest.clone(),
            tag: newer.tag.clone(),
            reason: reason.clone(),
        };
    }
    soak_or_update(c, digest, tag, ctx)
}

/// The decision for a newer version tag: its check, blocked, monitor-only, the compose edit,
/// then soak and update as for a digest.
fn decide_version(
    c: &Observed,
    reference: &ImageRef,
    newer: &Newer,
    ctx: &Context<'_>,
) -> Decision {
    let digest = match &newer.remote {
        Remote::Digest(d) | Remote::PlatformUnchanged { index: d } => d,
        Remote::Error { kind, message } => {
            return Decision::RegistryError {
                kind: kind.clone(),
                message: message.clone(),
            };
        }
    };
    held_or_soaked(c, reference, digest, Some(newer), ctx)
}

/// Soaking until the candidate (digest, and tag for a version move) has been the one on offer
/// for the soak window; then the update.
fn soak_or_update(
    c: &Observed,
    digest: &Digest,
    tag: Option<String>,
    ctx: &Context<'_>,
) -> Decision {
    let soak = c.labels.policy.soak.unwrap_or(ctx.default_soak);
    if soak.is_zero() {
        return ready(c, digest, tag, ctx);
    }
    let candidate = ctx
        .state
        .containers
        .get(&c.key)
        .and_then(|s| s.candidate.as_ref())
        .filter(|cand| &cand.digest == digest && cand.tag == tag);
    let first_seen = candidate.map_or(ctx.now, |cand| cand.first_seen);
    let elapsed = ctx.now.duration_since(first_seen).unwrap_or_default();
    if elapsed >= soak {
        return ready(c, digest, tag, ctx);
    }
    Decision::Soaking {
        digest: digest.clone(),
        tag,
        first_seen,
        rollout_at: rollout_at(first_seen, soak),
        remaining_seconds: soak.saturating_sub(elapsed).as_secs(),
        new_candidate: candidate.is_none(),
    }
}

/// A soaked candidate: held by a pause, waiting for approval or for the window, or rolled
/// out now.
fn ready(c: &Observed, digest: &Digest, tag: Option<String>, ctx: &Context<'_>) -> Decision {
    let saved = ctx.state.containers.get(&c.key);
    let pause = saved
        .and_then(|s| s.pause.as_ref())
        .filter(|p| p.holds(ctx.now))
        .or_else(|| ctx.state.pause_all.as_ref().filter(|p| p.holds(ctx.now)));
    if let Some(pause) = pause {
        return Decision::Paused {
            digest: digest.clone(),
            tag,
            until: pause.until,
        };
    }
    if c.labels.policy.approve_manual.unwrap_or(ctx.approve_manual)
        && saved
            .and_then(|s| s.approval.as_ref())
            .is_none_or(|a| &a.digest != digest)
    {
        let service = c.key.rsplit('/').next().unwrap_or(&c.name);
        return Decision::AwaitingApproval {
            command: format!("pullpilot approve {service} {digest}"),
            digest: digest.clone(),
            tag,
        };
    }
    if let Some(window) = c.labels.policy.window.as_ref().or(ctx.default_window)
        && !window.is_open(ctx.now, ctx.timezone)
    {
        let opens_at = window.next_open(ctx.now, ctx.timezone);
        return Decision::WaitingForWindow {
            digest: digest.clone(),
            tag,
            opens: opens_at.map_or_else(String::new, |at| {
                jiff::Timestamp::try_from(at)
                    .map(|ts| {
                        ctx.timezone
                            .to_datetime(ts)
                            .strftime("%a %H:%M")
                            .to_string()
                    })
                    .unwrap_or_default()
            }),
            opens_at,
        };
    }
    Decision::Update {
        digest: digest.clone(),
        tag,
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

mod rfc3339_opt {
    use std::time::SystemTime;

    #[allow(clippy::ref_option, reason = "serde's `with` passes a reference")]
    pub(super) fn serialize<S: serde::Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::format_time(*t)),
            None => s.serialize_none(),
        }
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
            default_track: &crate::version::DIGEST,
            default_window: None,
            approve_manual: false,
            timezone: &crate::time::window::UTC,
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
                    tag: None,
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

    fn newer(tag: &str, d: char) -> Newer {
        Newer {
            tag: tag.into(),
            remote: remote(d),
            cannot_edit: None,
        }
    }

    #[test]
    fn a_newer_version_wins_over_a_rebuilt_tag_and_soaks_with_its_tag() {
        let state = State::default();
        let c = container(&[(labels::TRACK, "patch")]);
        let d = decide_with(
            &c,
            Some(&remote('b')),
            Some(&newer("1.2.10", 'c')),
            &ctx(&state),
        );
        match &d {
            Decision::Soaking {
                digest,
                tag,
                new_candidate: true,
                ..
            } => {
                assert_eq!(digest, &digest_of('c'));
                assert_eq!(tag.as_deref(), Some("1.2.10"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            d.reason(now()).contains("new version 1.2.10"),
            "{}",
            d.reason(now())
        );
        // The clock runs for that tag and digest only.
        let mut soaked = with_candidate(digest_of('c'), 25 * HOUR);
        soaked
            .containers
            .get_mut("shop/web")
            .unwrap()
            .candidate
            .as_mut()
            .unwrap()
            .tag = Some("1.2.10".into());
        assert_eq!(
            decide_with(
                &c,
                Some(&remote('b')),
                Some(&newer("1.2.10", 'c')),
                &ctx(&soaked)
            ),
            Decision::Update {
                digest: digest_of('c'),
                tag: Some("1.2.10".into())
            }
        );
        // A newer tag (even with the same digest) restarts the clock.
        assert!(matches!(
            decide_with(&c, None, Some(&newer("1.2.11", 'c')), &ctx(&soaked)),
            Decision::Soaking {
                new_candidate: true,
                ..
            }
        ));
        // A digest clock without a tag is not a version clock.
        let digest_clock = with_candidate(digest_of('c'), 25 * HOUR);
        assert!(matches!(
            decide_with(&c, None, Some(&newer("1.2.10", 'c')), &ctx(&digest_clock)),
            Decision::Soaking {
                new_candidate: true,
                ..
            }
        ));
    }

    fn digest_of(c: char) -> Digest {
        digest(c)
    }

    #[test]
    fn version_moves_are_blocked_monitored_or_refused_like_digests() {
        let c = container(&[(labels::TRACK, "minor")]);
        let mut state = State::default();
        state.blocked.insert(
            "ghcr.io/acme/web".into(),
            BTreeMap::from([(
                digest('c'),
                Blocked {
                    at: now(),
                    reason: "unhealthy".into(),
                    container: "shop-web-1".into(),
                },
            )]),
        );
        let d = decide_with(&c, None, Some(&newer("1.3.0", 'c')), &ctx(&state));
        assert!(
            matches!(&d, Decision::Blocked { tag: Some(t), .. } if t == "1.3.0"),
            "{d:?}"
        );
        let monitor = container(&[(labels::TRACK, "minor"), (labels::MONITOR_ONLY, "true")]);
        let d = decide_with(
            &monitor,
            None,
            Some(&newer("1.3.0", 'd')),
            &ctx(&State::default()),
        );
        assert!(
            matches!(d, Decision::MonitorOnly { tag: Some(_), .. }),
            "{d:?}"
        );
        let mut refused = newer("1.3.0", 'd');
        refused.cannot_edit = Some("/srv/compose.yaml is read-only".into());
        let d = decide_with(&c, None, Some(&refused), &ctx(&State::default()));
        assert_eq!(d.word(), "update available");
        assert!(
            d.reason(now()).contains("cannot edit the compose file"),
            "{}",
            d.reason(now())
        );
        let failed = Newer {
            tag: String::new(),
            remote: Remote::Error {
                kind: "unreachable".into(),
                message: "listing the tags failed".into(),
            },
            cannot_edit: None,
        };
        assert!(decide_with(&c, None, Some(&failed), &ctx(&State::default())).is_failure());
    }

    #[test]
    fn a_track_label_on_a_tag_that_is_not_a_version_is_invalid_but_pp_track_is_lenient() {
        let state = State::default();
        let mut c = container(&[(labels::TRACK, "minor")]);
        c.config_image = "ghcr.io/acme/web:latest".into();
        let d = decide(&c, Some(&remote('b')), &ctx(&state));
        assert!(matches!(d, Decision::InvalidLabel { .. }), "{d:?}");
        // Under PP_TRACK=minor alone, `latest` follows its digest.
        let mut plain = container(&[]);
        plain.config_image = "ghcr.io/acme/web:latest".into();
        let minor = Track::Minor;
        let context = Context {
            default_track: &minor,
            ..ctx(&state)
        };
        assert!(matches!(
            decide(&plain, Some(&remote('b')), &context),
            Decision::Soaking { tag: None, .. }
        ));
        let reference = ImageRef::parse(&plain.config_image).unwrap();
        assert!(version_track(&plain, &reference, &context).is_none());
        let versioned = container(&[]);
        let reference = ImageRef::parse(&versioned.config_image).unwrap();
        assert_eq!(
            version_track(&versioned, &reference, &context),
            Some(&Track::Minor)
        );
    }

    #[test]
    fn pause_approval_and_window_hold_a_soaked_update_in_that_order() {
        use crate::state::{Approval, Pause};
        let soaked = |state: &mut State| {
            state
                .containers
                .entry("shop/web".into())
                .or_default()
                .candidate = Some(Candidate {
                digest: digest('b'),
                tag: None,
                first_seen: now() - 25 * HOUR,
            });
        };
        let mut state = State::default();
        soaked(&mut state);
        let c = container(&[
            (labels::APPROVE, "manual"),
            (labels::WINDOW, "Mon 01:00-02:00"),
        ]);
        // A pause of all, ending in an hour.
        state.pause_all = Some(Pause {
            since: now(),
            until: Some(now() + HOUR),
        });
        let d = decide(&c, Some(&remote('b')), &ctx(&state));
        assert!(
            matches!(d, Decision::Paused { until: Some(_), .. }),
            "{d:?}"
        );
        assert!(
            d.reason(now()).contains("paused until"),
            "{}",
            d.reason(now())
        );
        // An expired pause holds nothing: approval is next, naming the command.
        state.pause_all.as_mut().unwrap().until = Some(now() - HOUR);
        let d = decide(&c, Some(&remote('b')), &ctx(&state));
        match &d {
            Decision::AwaitingApproval { command, .. } => {
                assert_eq!(command, &format!("pullpilot approve web {}", digest('b')));
            }
            other => panic!("{other:?}"),
        }
        // Approved for another digest: still waiting (digest-exact).
        state.containers.get_mut("shop/web").unwrap().approval = Some(Approval {
            digest: digest('c'),
            at: now(),
        });
        assert!(matches!(
            decide(&c, Some(&remote('b')), &ctx(&state)),
            Decision::AwaitingApproval { .. }
        ));
        state.containers.get_mut("shop/web").unwrap().approval = Some(Approval {
            digest: digest('b'),
            at: now(),
        });
        // now() is 2027-01-15 08:00 UTC, a Friday: the Monday window is closed.
        let d = decide(&c, Some(&remote('b')), &ctx(&state));
        match &d {
            Decision::WaitingForWindow {
                opens, opens_at, ..
            } => {
                assert_eq!(opens, "Mon 01:00");
                assert!(opens_at.is_some());
            }
            other => panic!("{other:?}"),
        }
        assert!(
            d.reason(now())
                .starts_with("waiting for the window (opens Mon 01:00, in 2d 17h"),
            "{}",
            d.reason(now())
        );
        let open = container(&[
            (labels::APPROVE, "manual"),
            (labels::WINDOW, "daily 00:00-24:00"),
        ]);
        assert_eq!(
            decide(&open, Some(&remote('b')), &ctx(&state)),
            Decision::Update {
                digest: digest('b'),
                tag: None
            }
        );
        // Invalid window and approve labels are invalid labels.
        let bad = container(&[(labels::WINDOW, "weekends"), (labels::APPROVE, "maybe")]);
        match decide(&bad, Some(&remote('b')), &ctx(&state)) {
            Decision::InvalidLabel { errors } => assert_eq!(errors.len(), 2),
            other => panic!("{other:?}"),
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
                tag: None,
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
                tag: None,
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
                tag: None,
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
                tag: None,
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
                tag: None,
                digest: digest('b')
            }
        );
        let c = container(&[(labels::SOAK, "0")]);
        assert_eq!(
            decide(&c, Some(&remote('d')), &ctx(&State::default())),
            Decision::Update {
                tag: None,
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
