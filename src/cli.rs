//! The command line, as clap types only. Values stay raw strings here; `settings` validates them
//! together with the `PP_*` environment so both get the same checks and messages.
// Doc comments here are the --help text, which is read as plain text, not Markdown.
#![allow(clippy::doc_markdown)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `--version`: the crate version, the commit it was built from and the build date (UTC), as
/// build.rs found them; `unknown` when it could not (or did not run: a build from a copy of
/// `src/` without build.rs).
pub fn long_version() -> String {
    format!(
        "{} (commit {}, built {})",
        env!("CARGO_PKG_VERSION"),
        option_env!("PULLPILOT_COMMIT").unwrap_or("unknown"),
        option_env!("PULLPILOT_BUILD_DATE").unwrap_or("unknown"),
    )
}

/// A secure, compose-aware container auto-updater for Docker hosts.
///
/// Each run makes one pass: find the containers in scope, ask their registries for the tag's
/// current digest, let a new digest soak (24h by default), pull exactly that digest, recreate the
/// container with all its configuration, wait for it to be healthy, and roll back what fails.
#[derive(Debug, Parser)]
#[command(
    name = "pullpilot",
    version,
    long_version = long_version(),
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what `apply` would do now, and why, for every container in scope. Changes nothing.
    Plan(PlanArgs),
    /// Make one pass: heal interrupted updates, start soak clocks, roll out soaked digests
    /// with a health gate, roll back what fails.
    Apply(ApplyArgs),
    /// Show what pullpilot knows, without asking any registry: running digest, soak clock,
    /// pin, blocked digests, last update, history and any interrupted update.
    Status(StatusArgs),
    /// Check the setup and say what to fix: the units' settings file, Docker, compose, the
    /// scope, the data directory, registry credentials, notification URLs, webhook settings
    /// and the systemd units. Each line is ok, warn, fail or skip; the exit status is 1 when
    /// any line is fail. Changes nothing (the data directory gets a probe file, removed at
    /// once).
    Doctor(DoctorArgs),
    /// Put a service back on the image it ran before its last update (health-gated), block
    /// the abandoned digest and pin the service there.
    Rollback(RollbackArgs),
    /// Hold a service at a digest (its current one by default) until `unpin`.
    Pin(PinArgs),
    /// Let a pinned service be updated again.
    Unpin(UnpinArgs),
    /// Forget "failed the health gate" marks, for a service or a digest.
    Unblock(UnblockArgs),
    /// Hold updates back (of these services, or all): passes still check, soak and notify,
    /// but start no update until `resume` or the end of --for / --until.
    Pause(PauseArgs),
    /// Lift a pause (of these services, or the one of all).
    Resume(ResumeArgs),
    /// Let a soaked update that waits for approval (io.pullpilot.approve=manual) roll out;
    /// digest-exact: a newer digest needs a new approval.
    Approve(ApproveArgs),
    /// Stay running: apply on relay pokes and local webhook calls (debounced), and on the
    /// PP_SCHEDULE floor whatever the relay does.
    Listen(ListenArgs),
    /// Run a relay server (the relay protocol v1) for `listen` clients; put it behind a TLS
    /// reverse proxy.
    Relay(RelayArgs),
    /// Write man pages or shell completions (for packaging).
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only these compose services or container names.
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also send a test message to every notification URL (PP_NOTIFY_URL) and report each
    /// answer.
    #[arg(long)]
    pub send_test: bool,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The compose service or container name.
    pub service: String,
    /// Roll back to this digest from the service's history instead of the previous one.
    #[arg(long, value_name = "DIGEST")]
    pub to: Option<String>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PinArgs {
    /// The compose service or container name.
    pub service: String,
    /// The digest to hold (default: the one it runs now).
    pub digest: Option<String>,
    /// Also write `image: repo:tag@sha256:…` into the compose file (or the `.env` variable the
    /// image line uses), changing nothing else in the file.
    #[arg(long)]
    pub compose: bool,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UnpinArgs {
    /// The compose service or container name.
    pub service: String,
    /// Also remove the digest from the compose file's image line (or its `.env` variable).
    #[arg(long)]
    pub compose: bool,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UnblockArgs {
    /// A compose service or container name (all its repository's blocked digests), or a digest.
    #[arg(value_name = "SERVICE|DIGEST")]
    pub target: String,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Compose services or container names; none pauses every update in scope.
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// End the pause by itself after this long (e.g. 2d, 12h).
    #[arg(long = "for", value_name = "DURATION", conflicts_with = "until")]
    pub duration: Option<String>,
    /// End the pause by itself at this time: RFC 3339, or `YYYY-MM-DD HH:MM` in PP_TIMEZONE.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Compose services or container names; none lifts the pause of all.
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The compose service or container name.
    pub service: String,
    /// The digest (or, for a version move, the tag) to approve; default: the one waiting.
    #[arg(value_name = "DIGEST|TAG")]
    pub what: Option<String>,
    /// Run that service's pass at once (locked, pulled by digest, health-gated).
    #[arg(long)]
    pub now: bool,
    /// Print one JSON document on stdout instead of text (with --now: the pass's).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to write.
    #[arg(value_enum)]
    pub kind: GenerateKind,
    /// The directory to write into.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GenerateKind {
    /// man pages (section 1), from these definitions
    Man,
    /// bash, zsh and fish completions
    Completions,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Also accept `POST /notify[/SERVICE]` on this address, with the bearer secret from
    /// PP_WEBHOOK_SECRET (required). `GET /health` answers without it.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,
    /// Print the relay poke URL (a secret: anyone holding it can trigger passes) and exit.
    #[arg(long)]
    pub show_url: bool,
    /// Wait this long after the last poke before a pass (pokes in between join it).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub debounce: std::time::Duration,
    /// Least time between two poke-triggered passes (scheduled passes are not held back).
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub min_interval: std::time::Duration,
    /// How often to send the relay a heartbeat (tests shorten it).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, hide = true)]
    pub ping_interval: std::time::Duration,
    /// Reconnect when the relay sends nothing for this long (tests shorten it).
    #[arg(long, value_name = "DURATION", default_value = "90s", value_parser = parse_duration, hide = true)]
    pub read_deadline: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Address to serve plain HTTP and WebSocket on (put a TLS reverse proxy in front).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Where registrations are kept (created 0700; the file inside is 0600).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/pullpilot-relay")]
    pub state_dir: std::path::PathBuf,
    /// The public origin clients reach this relay at, such as https://relay.example.org; used
    /// in the poke and listen URLs it hands out. Without it, the request's Host header is used
    /// (and X-Forwarded-Proto from a proxy on loopback).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Forget a webhook after this long without a connection or poke (at least 1d; a copy of
    /// the registrations is kept in registrations.before-prune.json first).
    #[arg(long, value_name = "DURATION", default_value = "180d", value_parser = parse_duration)]
    pub prune_after: std::time::Duration,
    /// Most registrations kept; provisions beyond it get 503 relay_full.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_registrations: usize,
    /// Most registrations from one client network (IPv4 address or IPv6 /64); more get 429
    /// too_many_registrations.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_registrations_per_network: usize,
    /// How long a challenge stays valid (tests shorten it).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, hide = true)]
    pub challenge_ttl: std::time::Duration,
    /// How long a socket may stay unauthenticated before it is closed (tests shorten it).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, hide = true)]
    pub auth_timeout: std::time::Duration,
}

/// Flags take the same durations as `PP_*` variables and labels, bound included.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::values::parse_duration(text).ok_or_else(|| {
        format!("{text:?} is not a duration of at most 10 years; use one such as 10s, 5m or 180d")
    })
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Only these compose services or container names.
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Print one JSON document on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Only these compose services or container names.
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Print one JSON document on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Settings shared by every command. Each overrides the `PP_*` variable named in its help.
#[derive(Debug, Default, Args)]
pub struct GlobalArgs {
    /// Which containers to manage: `project`, `project:<name>` or `all` [env: PP_SCOPE]
    #[arg(long, global = true, value_name = "SCOPE")]
    pub scope: Option<String>,
    /// The compose project directory for scope `project` (default: the working directory)
    #[arg(long, global = true, value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// How long a new digest must stay current before rollout; bare numbers are seconds [env: PP_SOAK]
    #[arg(long, global = true, value_name = "DURATION")]
    pub soak: Option<String>,
    /// How long the health gate waits for `healthy` [env: PP_HEALTH_TIMEOUT]
    #[arg(long, global = true, value_name = "DURATION")]
    pub health_timeout: Option<String>,
    /// How long a container without a healthcheck must keep running [env: PP_HEALTH_STABLE]
    #[arg(long, global = true, value_name = "DURATION")]
    pub health_stable: Option<String>,
    /// Remove the old image after a successful update [env: PP_CLEANUP]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub cleanup: Option<String>,
    /// Check pullpilot's own container too (notify only, never recreated) [env: PP_SELF_UPDATE]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub self_update: Option<String>,
    /// Where state, the lock and the webhook identity live [env: PP_DATA_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Notification URLs, space-separated [env: PP_NOTIFY_URL]
    #[arg(long, global = true, value_name = "URLS")]
    pub notify_url: Option<String>,
    /// Plan and log only; change nothing [env: PP_DRY_RUN]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub dry_run: Option<String>,
    /// error, warn, info, debug or trace [env: PP_LOG_LEVEL]
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log JSON lines instead of text [env: PP_LOG_JSON]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub log_json: Option<String>,
    /// IANA time zone for times in messages, e.g. Europe/Berlin [env: PP_TIMEZONE]
    #[arg(long, global = true, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Random delay before a scheduled pass [env: PP_JITTER]
    #[arg(long, global = true, value_name = "DURATION")]
    pub jitter: Option<String>,
    /// Honour Watchtower's enable and monitor-only labels [env: PP_COMPAT_WATCHTOWER]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub compat_watchtower: Option<String>,
    /// Registries reached over plain HTTP besides loopback, comma-separated host[:port] [env: PP_INSECURE_REGISTRIES]
    #[arg(long, global = true, value_name = "HOSTS")]
    pub insecure_registries: Option<String>,
    /// Write a node_exporter textfile here after each pass [env: PP_METRICS_FILE]
    #[arg(long, global = true, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Wait for another run's lock instead of exiting with status 75
    #[arg(long, global = true)]
    pub wait: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every `--help` text, so a change of wording is a reviewed diff of
    /// tests/snapshots/help.txt.
    #[test]
    fn help_texts_are_snapshotted() {
        use std::fmt::Write as _;
        // Values of PP_* variables set where the test runs are not part of the text.
        let quiet = |c: clap::Command| c.mut_args(|a| a.hide_env_values(true));
        let mut root = quiet(Cli::command().term_width(100)).mut_subcommands(quiet);
        root.build();
        let mut out = format!("$ pullpilot --help\n{}", root.render_long_help());
        for sub in root.get_subcommands() {
            if sub.is_hide_set() {
                continue;
            }
            let name = sub.get_name().to_string();
            let help = sub.clone().term_width(100).render_long_help();
            let _ = write!(out, "\n$ pullpilot {name} --help\n{help}");
        }
        crate::testsnap::assert_snapshot("help", &out);
    }

    #[test]
    fn long_version_names_the_commit_and_the_build_date() {
        let text = Cli::command().render_long_version();
        let rest = text
            .strip_prefix(&format!("pullpilot {} (commit ", env!("CARGO_PKG_VERSION")))
            .unwrap_or_else(|| panic!("{text}"));
        let (commit, rest) = rest.split_once(", built ").expect(&text);
        let date = rest.trim_end().strip_suffix(')').expect(&text);
        assert!(
            commit == "unknown"
                || commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "{text}"
        );
        let is_date = date.len() == 10
            && date.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        assert!(date == "unknown" || is_date, "{text}");
        // -V stays the bare version.
        assert_eq!(
            Cli::command().render_version(),
            format!("pullpilot {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}
