//! Pre- and post-update hooks: a host shell command run with the update's facts in its
//! environment. The pre-update hook runs after the pull and before anything is touched; a
//! non-zero exit or a timeout cancels that update (a failure, not a bad digest). The
//! post-update hook runs after the gate, rollback or failure, with the outcome; its result is
//! only logged. Each hook runs in its own process group, killed whole on timeout.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

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
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .env("PULLPILOT_HOOK", which)
        .env("PULLPILOT_SERVICE", facts.service)
        .env("PULLPILOT_PROJECT", facts.project)
        .env("PULLPILOT_CONTAINER", facts.container)
        .env("PULLPILOT_IMAGE", facts.image)
        .env("PULLPILOT_OLD_DIGEST", facts.old_digest)
        .env("PULLPILOT_NEW_DIGEST", facts.new_digest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(outcome) = facts.outcome {
        cmd.env("PULLPILOT_OUTCOME", outcome);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("it could not be started ({e})"))?;
    let pumps: Vec<_> = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let which = which.to_string();
        let container = facts.container.to_string();
        thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                log::info!("{which} hook ({container}): {line}");
            }
        })
    })
    .collect();
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.wait();
                break Err(format!(
                    "it did not finish within {} and was killed",
                    crate::values::format_duration(timeout)
                ));
            }
            Ok(None) => thread::sleep(Duration::from_millis(50)),
            Err(e) => break Err(format!("waiting for it failed ({e})")),
        }
    };
    for pump in pumps {
        let _ = pump.join();
    }
    match status? {
        s if s.success() => Ok(()),
        s => Err(match s.code() {
            Some(code) => format!("it exited with status {code}"),
            None => "it was killed by a signal".to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
