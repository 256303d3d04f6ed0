//! Notifications: shoutrrr-style URLs (as `PP_NOTIFY_URL` takes them) are parsed once by
//! [`Notifier::new`]; [`Notifier::send`] delivers one [`Event`] to every target synchronously.
//! Targets are sent to in parallel, each bounded by the one timeout (connect plus the whole
//! exchange), so a target that never answers costs at most the timeout. An HTTP request that
//! fails transiently is tried again within that timeout ([`RETRY_WAITS`]). Sending never fails
//! a pass: failures are logged at WARN and counted, never returned.
//!
//! Secrets never reach a log line, an error or a `Debug` output: URLs are shown through
//! [`redact`] (scheme and host only), and any text quoted from a server is scrubbed of the
//! target's tokens and passwords. Redirects are not followed, so a token header cannot reach
//! another host. SMTP passwords are sent only over TLS, or in the clear to a loopback address.
//!
//! # URL forms
//!
//! | service | URL | sends |
//! | --- | --- | --- |
//! | generic webhook | `generic://host[:port]/path[?disabletls=yes]`, `generic+https://host/path`, `generic+http://host/path` | `POST` (or `method=PUT/PATCH`) of the JSON below |
//! | Slack | `slack://[botname@]T…/B…/X…`, `slack://hook:T…-B…-X…@webhook`, `slack://xoxb:…@CHANNEL` | incoming webhook `{"text"}`, or `chat.postMessage` with the bot token |
//! | Discord | `discord://token@webhookid` | webhook execute with one embed |
//! | ntfy | `ntfy://[user:password@]host[:port]/topic[?scheme=http]` | `POST /topic`, body = text, `Title`/`Priority` headers |
//! | Gotify | `gotify://host[:port][/subpath]/token[?disabletls=yes]` | `POST /message` `{"title","message","priority"}`, `X-Gotify-Key` |
//! | Telegram | `telegram://token@telegram?chats=@channel,chatid[:thread]` | `sendMessage` per chat, HTML parse mode |
//! | e-mail | `smtp://[user:password@]host[:port]/?from=…&to=a,b[&subject=…][&encryption=auto\|none\|explicittls\|implicittls]` | one plain-text mail over SMTP |
//!
//! Query keys are case-insensitive, as in shoutrrr. Unknown keys are errors, except for the
//! generic webhook, which forwards them to its target (`_key` forwards a key pullpilot would
//! otherwise read; `@Name=value` adds a header; `$field=value` adds a JSON field).
//!
//! The generic webhook's JSON body (`title` and `message` keys renamable with `titlekey` and
//! `messagekey`): `{"title", "message", "kind", "container", "service", "project", "image",
//! "from_digest", "to_digest", "from_tag", "to_tag", "time", "rollout_at"}`, where `message` is
//! the same plain-text body the other services show, `kind` is one of `soak_entered`, `update_available`,
//! `updated`, `rolled_back`, `failed`, `action_needed` (or `test`, from
//! `doctor --send-test`), digests are full (`sha256:…`) or `null`, tags are set for a version
//! move (`io.pullpilot.track`) and `null` otherwise, and times are RFC 3339 in the configured
//! zone (`rollout_at` is `null` except when entering soak).
//!
//! # Test seam
//!
//! Slack, Discord and Telegram have fixed public HTTPS bases. Built with the `fault-injection`
//! feature, the environment variable `PULLPILOT_TEST_NOTIFY_BASE` (e.g.
//! `http://127.0.0.1:8080`) replaces those bases (`https://hooks.slack.com`,
//! `https://slack.com`, `https://discord.com`, `https://api.telegram.org`), keeping the path,
//! so end-to-end tests can point them at a loopback server. In normal builds the variable is
//! ignored. The other services name their host in the URL and reach loopback servers with
//! `disabletls=yes` or `scheme=http`.

pub(crate) mod http;
mod message;
mod requests;
mod services;
mod smtp;
mod url;

#[cfg(test)]
mod services_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testserver;

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use jiff::tz::TimeZone;

pub use url::redact;

/// The variable that redirects Slack, Discord and Telegram in `fault-injection` builds.
pub const TEST_BASE_VAR: &str = "PULLPILOT_TEST_NOTIFY_BASE";

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    SoakEntered,
    UpdateAvailable,
    Updated,
    RolledBack,
    Failed,
    ActionNeeded,
    /// `pullpilot doctor --send-test`: no container changed.
    Test,
}

/// One notification. `message` is one plain sentence written by the caller; the rest is
/// rendered around it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub container: String,
    pub service: Option<String>,
    pub project: Option<String>,
    /// e.g. `ghcr.io/acme/web:1.4`
    pub image: String,
    /// `sha256:…`
    pub from_digest: Option<String>,
    /// `sha256:…`
    pub to_digest: Option<String>,
    /// The tag before and after a version move (`1.2.3` → `1.2.10`); `None` otherwise.
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    pub message: String,
    pub at: SystemTime,
    /// When a soaking image will be rolled out (for [`EventKind::SoakEntered`]).
    pub rollout_at: Option<SystemTime>,
}

/// The accepted forms, per scheme, for error messages.
const FORMS: [(&str, &str); 7] = [
    (
        "generic",
        "generic://host[:port]/path[?disabletls=yes] or generic+https://host/path",
    ),
    (
        "slack",
        "slack://[botname@]T…/B…/X…, slack://hook:T…-B…-X…@webhook or slack://xoxb:…@CHANNEL",
    ),
    ("discord", "discord://token@webhookid"),
    (
        "ntfy",
        "ntfy://[user:password@]host[:port]/topic[?scheme=http]",
    ),
    (
        "gotify",
        "gotify://host[:port][/subpath]/token[?disabletls=yes]",
    ),
    (
        "telegram",
        "telegram://token@telegram?chats=@channel,chatid",
    ),
    (
        "smtp",
        "smtp://[user:password@]host[:port]/?from=sender@example.com&to=a@example.com,b@example.com",
    ),
];

fn accepted_forms(scheme: Option<&str>) -> String {
    let service = scheme.map(|s| s.split('+').next().unwrap_or(s));
    if let Some((_, form)) = FORMS.iter().find(|(name, _)| Some(*name) == service) {
        format!("the accepted form is {form}")
    } else {
        let all: Vec<&str> = FORMS.iter().map(|(_, form)| *form).collect();
        format!("accepted forms: {}", all.join("; "))
    }
}

enum Delivery {
    Http(services::Service),
    Smtp(smtp::Smtp),
}

/// One parsed URL and what must never be logged about it.
struct Target {
    redacted: String,
    secrets: Vec<String>,
    delivery: Delivery,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// Test-only replacements for what the outside world fixes.
#[derive(Default)]
pub(crate) struct Overrides {
    /// Replaces the fixed public HTTPS bases (see the module header).
    pub(crate) http_base: Option<String>,
    /// Extra DER trust roots for SMTP TLS.
    pub(crate) extra_roots: Vec<Vec<u8>>,
    /// Replaces [`RETRY_WAITS`] (tests shorten them).
    pub(crate) retry_waits: Option<Vec<Duration>>,
}

/// Waits before the second and third attempt of an HTTP notification that failed transiently
/// (refused or reset connection, 429, 5xx). A retry is made only if its wait ends before the
/// target's deadline, so a target still costs at most the timeout.
const RETRY_WAITS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(3)];

/// Parsed targets, one HTTP agent, the timeout and the zone for times.
pub struct Notifier {
    targets: Vec<Target>,
    agent: ureq::Agent,
    timeout: Duration,
    zone: TimeZone,
    smtp_tls: Option<smtp::Trust>,
    http_base: Option<String>,
    retry_waits: Vec<Duration>,
    /// Every warning `send` logged, so tests need not own the process's logger.
    #[cfg(test)]
    warnings: std::sync::Mutex<Vec<String>>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("targets", &self.targets)
            .field("timeout", &self.timeout)
            .field("timezone", &crate::time::zone::name(&self.zone))
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Parses every URL. An invalid URL is an error naming it (redacted) and the accepted
    /// forms. Times are shown in `timezone`.
    pub fn new(
        urls: &[String],
        timezone: &TimeZone,
        timeout: Duration,
    ) -> anyhow::Result<Notifier> {
        #[cfg(feature = "fault-injection")]
        let http_base = std::env::var(TEST_BASE_VAR).ok().filter(|b| !b.is_empty());
        #[cfg(not(feature = "fault-injection"))]
        let http_base = None;
        let overrides = Overrides {
            http_base,
            ..Overrides::default()
        };
        Notifier::with_overrides(urls, timezone, timeout, overrides)
    }

    pub(crate) fn with_overrides(
        urls: &[String],
        timezone: &TimeZone,
        timeout: Duration,
        overrides: Overrides,
    ) -> anyhow::Result<Notifier> {
        let targets = urls
            .iter()
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
            .map(parse_target)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let zone = timezone.clone();
        let needs_tls = targets
            .iter()
            .any(|t| matches!(&t.delivery, Delivery::Smtp(s) if s.may_use_tls()));
        let smtp_tls = if needs_tls {
            match smtp::Trust::new(&overrides.extra_roots) {
                Ok(config) => Some(config),
                Err(e) => {
                    log::warn!("E-mail notifications cannot use TLS: {e}.");
                    None
                }
            }
        } else {
            None
        };
        if overrides.http_base.is_some() {
            log::warn!(
                "Test seam: Slack, Discord and Telegram notifications go to {TEST_BASE_VAR}."
            );
        }
        Ok(Notifier {
            targets,
            agent: http::agent(timeout),
            timeout,
            zone,
            smtp_tls,
            http_base: overrides.http_base,
            retry_waits: overrides
                .retry_waits
                .unwrap_or_else(|| RETRY_WAITS.to_vec()),
            #[cfg(test)]
            warnings: std::sync::Mutex::default(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Sends to every target, in parallel, each bounded by the timeout. Failures are logged at
    /// WARN with the URL redacted. Returns how many targets accepted the event.
    pub fn send(&self, event: &Event) -> usize {
        let msg = message::render(event, &self.zone);
        let deliver = |target: &Target| -> bool {
            let deadline = Instant::now() + self.timeout;
            match self.deliver(target, &msg, deadline) {
                Ok(()) => {
                    log::debug!(
                        "Sent the {} notification to {}.",
                        event.kind.as_str(),
                        target.redacted
                    );
                    true
                }
                Err(e) => {
                    let line = format!(
                        "Notification to {} failed: {}.",
                        target.redacted,
                        scrub(&e, &target.secrets)
                    );
                    log::warn!("{line}");
                    #[cfg(test)]
                    self.warnings.lock().expect("not poisoned").push(line);
                    false
                }
            }
        };
        match self.targets.as_slice() {
            [] => 0,
            [only] => usize::from(deliver(only)),
            many => std::thread::scope(|scope| {
                let handles: Vec<_> = many
                    .iter()
                    .map(|target| scope.spawn(|| deliver(target)))
                    .collect();
                handles
                    .into_iter()
                    .map(std::thread::ScopedJoinHandle::join)
                    .filter(|r| matches!(r, Ok(true)))
                    .count()
            }),
        }
    }

    /// Sends `event` to each target in turn, each bounded by the timeout, and returns per
    /// target its redacted URL and, when it failed, why (scrubbed of its secrets). Logs no
    /// warning: the caller reports (`doctor --send-test`).
    pub fn send_each(&self, event: &Event) -> Vec<(String, Result<(), String>)> {
        let msg = message::render(event, &self.zone);
        self.targets
            .iter()
            .map(|target| {
                let deadline = Instant::now() + self.timeout;
                let result = self
                    .deliver(target, &msg, deadline)
                    .map_err(|e| scrub(&e, &target.secrets));
                (target.redacted.clone(), result)
            })
            .collect()
    }

    fn deliver(
        &self,
        target: &Target,
        msg: &message::Rendered<'_>,
        deadline: Instant,
    ) -> Result<(), String> {
        match &target.delivery {
            Delivery::Http(service) => {
                for req in service.requests(msg, self.http_base.as_deref()) {
                    self.send_with_retries(target, &req, deadline)?;
                }
                Ok(())
            }
            Delivery::Smtp(smtp) => smtp.send(msg, self.smtp_tls.as_ref(), deadline),
        }
    }

    /// Sends `req`, trying again after [`RETRY_WAITS`] while the failure is transient and the
    /// wait ends before `deadline`. The error says how many attempts were made.
    fn send_with_retries(
        &self,
        target: &Target,
        req: &services::HttpRequest,
        deadline: Instant,
    ) -> Result<(), String> {
        let mut attempts = 1;
        loop {
            let Err(e) = http::send(&self.agent, req, deadline) else {
                return Ok(());
            };
            let wait = self.retry_waits.get(attempts - 1).copied();
            match wait {
                Some(wait) if e.transient && Instant::now() + wait < deadline => {
                    log::debug!(
                        "Notification to {} failed ({}); trying again in {}.",
                        target.redacted,
                        scrub(&e.text, &target.secrets),
                        humantime::format_duration(wait)
                    );
                    std::thread::sleep(wait);
                    attempts += 1;
                }
                _ if attempts > 1 => return Err(format!("{} ({attempts} attempts)", e.text)),
                _ => return Err(e.text),
            }
        }
    }
}

fn parse_target(text: &str) -> anyhow::Result<Target> {
    let redacted = redact(text);
    let fail = |reason: &str, scheme: Option<&str>| {
        anyhow::anyhow!(
            "notification URL {redacted} is not valid: {reason}; {}",
            accepted_forms(scheme)
        )
    };
    let parsed = url::parse(text).map_err(|e| fail(&e, None))?;
    let scheme = Some(parsed.scheme.as_str());
    let (delivery, mut secrets) = match parsed.scheme.as_str() {
        "smtp" => smtp::parse(&parsed).map(|(s, secrets)| (Delivery::Smtp(s), secrets)),
        _ => services::parse(&parsed).map(|(s, secrets)| (Delivery::Http(s), secrets)),
    }
    .map_err(|e| fail(&e, scheme))?;
    // Whatever the service, userinfo and encoded forms are secret too.
    secrets.extend(parsed.password.iter().cloned());
    let base64 = base64_forms(&secrets, parsed.user.as_deref(), parsed.password.as_deref());
    secrets.extend(base64);
    let encoded: Vec<String> = secrets.iter().map(|s| url::percent_encode(s)).collect();
    secrets.extend(encoded);
    secrets.retain(|s| s.len() >= 3);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    Ok(Target {
        redacted,
        secrets,
        delivery,
    })
}

/// The base64 forms in which secrets go over the wire, so that a server quoting them back in
/// an error is scrubbed too: each secret alone (AUTH LOGIN), HTTP Basic `user:password`, SMTP
/// AUTH PLAIN `\0user\0password` and XOAUTH2; each with and without its `=` padding.
fn base64_forms(secrets: &[String], user: Option<&str>, password: Option<&str>) -> Vec<String> {
    use base64::Engine as _;
    let mut raw: Vec<String> = secrets.to_vec();
    if let Some(password) = password {
        let user = user.unwrap_or_default();
        raw.push(format!("{user}:{password}"));
        raw.push(format!("\0{user}\0{password}"));
        raw.push(format!("user={user}\x01auth=Bearer {password}\x01\x01"));
    }
    raw.iter()
        .map(|r| base64::engine::general_purpose::STANDARD.encode(r))
        .flat_map(|b| [b.trim_end_matches('=').to_string(), b])
        .collect()
}

/// Replaces every secret in `text` with `***`, longest first.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        out = out.replace(secret.as_str(), "***");
    }
    out
}
