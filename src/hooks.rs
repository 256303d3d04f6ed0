//! Pre- and post-update hooks: a host shell command run with the update's facts in its
//! environment. The pre-update hook runs after the pull and before anything is touched; a
//! non-zero exit or a timeout cancels that update (a failure, not a bad digest). The
//! post-update hook runs after the gate, rollback or failure, with the outcome; its result is
//! only logged.
//!
//! A hook sees only the `PULLPILOT_*` facts and `PATH`, `HOME`, `LANG`, `LC_*` and `TZ` from
//! pullpilot's environment: never `PP_WEBHOOK_SECRET`, `PP_NOTIFY_URL` or any other variable
//! that may hold a secret. [`crate::process`] runs it in its own process group: when its main
//! process exits, or when it times out, the whole group is killed, so a background job cannot
//! keep the run (and its lock) waiting; output still held by a process that left the group is
//! read for at most [`crate::process::PIPE_GRACE`] more.

use std::ffi::OsString;
use std::process::Command;
use std::time::Duration;

use crate::process::{self, DEFAULT_PATH, RunError, RunLimits};

/// Variables a hook inherits from pullpilot's environment (plus every `LC_*`).
const INHERITED: [&str; 4] = ["PATH", "HOME", "LANG", "TZ"];

/// What a hook is told, as `PULLPILOT_*` environment variables.
#[derive(Clone, Debug, Default)]
pub struct HookFacts<'a> {
    pub service: &'a str,
    pub project: &'a str,
    pub container: &'a str,
    pub image: &'a str,
    pub old_digest: &'a str,
    pub new_digest: &'a str,
    /// Post-update only: `updated`, `unchanged`, `rolled-back`, `failed` or `action-needed`.
    pub outcome: Option<&'a str>,
}

/// Runs `command` with `sh -c`; `Err` says why it counts as failed.
pub fn run(
    which: &str,
    command: &str,
    facts: &HookFacts<'_>,
    timeout: Duration,
) -> Result<(), String> {
    run_with_env(which, command, facts, timeout, std::env::vars_os())
}

/// The part of `vars` a hook may see: [`INHERITED`] and `LC_*`, with a default `PATH`.
fn curated_env(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    let mut kept: Vec<(OsString, OsString)> = vars
        .into_iter()
        .filter(|(name, _)| {
            name.to_str()
                .is_some_and(|n| INHERITED.contains(&n) || n.starts_with("LC_") && n.len() > 3)
        })
        .collect();
    if !kept.iter().any(|(name, _)| name == "PATH") {
        kept.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    kept
}

fn run_with_env(
    which: &str,
    command: &str,
    facts: &HookFacts<'_>,
    timeout: Duration,
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<(), String> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .env_clear()
        .envs(curated_env(vars))
        .env("PULLPILOT_HOOK", which)
        .env("PULLPILOT_SERVICE", facts.service)
        .env("PULLPILOT_PROJECT", facts.project)
        .env("PULLPILOT_CONTAINER", facts.container)
        .env("PULLPILOT_IMAGE", facts.image)
        .env("PULLPILOT_OLD_DIGEST", facts.old_digest)
        .env("PULLPILOT_NEW_DIGEST", facts.new_digest);
    if let Some(outcome) = facts.outcome {
        cmd.env("PULLPILOT_OUTCOME", outcome);
    }
    let limits = RunLimits {
        timeout,
        // Everything it prints is logged.
        max_output: usize::MAX,
    };
    let log_line = |_, line: &[u8]| {
        let line = String::from_utf8_lossy(line);
        let line = line
            .strip_suffix('\n')
            .map_or(&*line, |l| l.strip_suffix('\r').unwrap_or(l));
        log::info!("{which} hook ({}): {line}", facts.container);
    };
    let abandoned = || {
        log::warn!(
            "The {which} hook for {} left a process that still holds its output; pullpilot \
             stopped reading it. Redirect the output of anything the hook starts in the \
             background (`… >/dev/null 2>&1 &`).",
            facts.container
        );
    };
    match process::run(&mut cmd, None, limits, log_line) {
        Ok(finished) => {
            if finished.output_abandoned {
                abandoned();
            }
            match finished.status {
                s if s.success() => Ok(()),
                s => Err(match s.code() {
                    Some(code) => format!("it exited with status {code}"),
                    None => "it was killed by a signal".to_string(),
                }),
            }
        }
        Err(RunError::Start(e)) => Err(format!("it could not be started ({e})")),
        Err(RunError::TimedOut { output_abandoned }) => {
            if output_abandoned {
                abandoned();
            }
            Err(format!(
                "it did not finish within {} and was killed",
                crate::values::format_duration(timeout)
            ))
        }
        Err(RunError::Wait(e)) => Err(format!("waiting for it failed ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::PIPE_GRACE;
    use std::thread;
    use std::time::Instant;

    fn facts() -> HookFacts<'static> {
        HookFacts {
            service: "web",
            project: "shop",
            container: "shop-web-1",
            image: "ghcr.io/acme/web:1",
            old_digest: "sha256:old",
            new_digest: "sha256:new",
            outcome: None,
        }
    }

    #[test]
    fn success_and_failure_and_environment() {
        let t = Duration::from_secs(5);
        assert_eq!(run("pre-update", "true", &facts(), t), Ok(()));
        assert_eq!(
            run("pre-update", "exit 3", &facts(), t),
            Err("it exited with status 3".into())
        );
        let check = r#"[ "$PULLPILOT_SERVICE/$PULLPILOT_PROJECT/$PULLPILOT_CONTAINER/$PULLPILOT_IMAGE/$PULLPILOT_OLD_DIGEST/$PULLPILOT_NEW_DIGEST" = "web/shop/shop-web-1/ghcr.io/acme/web:1/sha256:old/sha256:new" ]"#;
        assert_eq!(run("pre-update", check, &facts(), t), Ok(()));
        let post = HookFacts {
            outcome: Some("rolled-back"),
            ..facts()
        };
        assert_eq!(
            run(
                "post-update",
                r#"[ "$PULLPILOT_OUTCOME" = rolled-back ]"#,
                &post,
                t
            ),
            Ok(())
        );
    }

    #[test]
    fn issue_12_hooks_see_only_the_curated_environment() {
        let vars = [
            ("PATH", "/opt/bin:/usr/bin:/bin"),
            ("HOME", "/root"),
            ("LANG", "C.UTF-8"),
            ("LC_TIME", "C"),
            ("TZ", "UTC"),
            ("PP_WEBHOOK_SECRET", "s3cret"),
            ("PP_NOTIFY_URL", "ntfy://u:pw@h/t"),
            ("PULLPILOT_TEST_NOTIFY_BASE", "http://127.0.0.1:1"),
            ("AWS_SECRET_ACCESS_KEY", "k"),
            ("LC_", "odd"),
        ]
        .map(|(n, v)| (OsString::from(n), OsString::from(v)));
        let names: Vec<_> = curated_env(vars.clone())
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["PATH", "HOME", "LANG", "LC_TIME", "TZ"]);
        let check = r#"[ -z "${PP_WEBHOOK_SECRET+x}${PP_NOTIFY_URL+x}${AWS_SECRET_ACCESS_KEY+x}${PULLPILOT_TEST_NOTIFY_BASE+x}" ] && [ "$PATH/$HOME/$LANG/$LC_TIME/$TZ" = "/opt/bin:/usr/bin:/bin//root/C.UTF-8/C/UTC" ]"#;
        let t = Duration::from_secs(5);
        assert_eq!(run_with_env("pre-update", check, &facts(), t, vars), Ok(()));
        // Without PATH, a hook still gets the usual one.
        let default_path = format!(r#"[ "$PATH" = "{DEFAULT_PATH}" ]"#);
        assert_eq!(
            run_with_env("pre-update", &default_path, &facts(), t, []),
            Ok(())
        );
        // And for real: nothing of this test process's own environment (cargo sets CARGO_*)
        // reaches the hook beyond the allowed names and what `sh` sets itself.
        let only_allowed = r#"[ -z "$(env | cut -d= -f1 | grep -v -E '^(PULLPILOT_[A-Z_]+|PATH|HOME|LANG|TZ|LC_[A-Z_]+|PWD|OLDPWD|SHLVL|_)$')" ]"#;
        assert_eq!(run("pre-update", only_allowed, &facts(), t), Ok(()));
    }

    #[test]
    fn issue_12_a_background_job_holding_stdout_does_not_outlast_the_hook() {
        let tmp = tempfile::Builder::new()
            .prefix("pp-hook-bg-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let pid_file = dir.join("pid");
        let started = Instant::now();
        let result = run(
            "pre-update",
            &format!("sleep 15 & echo $! > {}; echo started", pid_file.display()),
            &facts(),
            Duration::from_secs(2),
        );
        let elapsed = started.elapsed();
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        assert_eq!(result, Ok(()));
        assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
        // Killed: gone, or a zombie waiting for init, within a moment.
        let stat = format!("/proc/{}/stat", pid.trim());
        let dead = || {
            std::fs::read_to_string(&stat).map_or(true, |s| {
                s.rsplit(") ").next().is_some_and(|r| r.starts_with('Z'))
            })
        };
        let waited = Instant::now();
        while !dead() && waited.elapsed() < Duration::from_secs(2) {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(dead(), "the background job was left running");
    }

    #[test]
    fn a_process_that_left_the_group_is_not_waited_for() {
        let started = Instant::now();
        // `setsid` puts the sleep in a session of its own, out of reach of the group kill; it
        // still holds stdout. It is killed by the test afterwards through its pid file.
        let tmp = tempfile::Builder::new()
            .prefix("pp-hook-setsid-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let pid_file = dir.join("pid");
        let command = format!(
            "setsid sh -c 'echo $$ > {}; exec sleep 15' & sleep 0.3; echo started",
            pid_file.display()
        );
        let result = run("pre-update", &command, &facts(), Duration::from_secs(10));
        let elapsed = started.elapsed();
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
        assert_eq!(result, Ok(()));
        assert!(
            elapsed < Duration::from_millis(300) + PIPE_GRACE + Duration::from_secs(1),
            "{elapsed:?}"
        );
    }

    #[test]
    fn a_hook_that_hangs_is_killed_with_its_children() {
        let started = Instant::now();
        let result = run(
            "pre-update",
            "sleep 30 & sleep 30",
            &facts(),
            Duration::from_millis(300),
        );
        assert!(result.unwrap_err().contains("killed"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
