//! Running the pullpilot binary against the test bed, the way an operator would: from a
//! directory, with `DOCKER_HOST`, `DOCKER_CONFIG` and `PP_DATA_DIR` set, nothing else inherited.
#![allow(dead_code)]

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Bed, TempDir};

/// One finished pullpilot invocation.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// stdout parsed as the one JSON document `--json` prints.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("pullpilot printed no JSON ({e})\n{self}"))
    }

    /// The `containers` entry whose compose service is `service`.
    pub(crate) fn container(&self, service: &str) -> Value {
        let doc = self.json();
        doc["containers"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["service"] == service).cloned())
            .unwrap_or_else(|| panic!("no container for service {service} in the output\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The command [`pullpilot`] runs: the binary in `cwd` with the bed's daemon, registry
/// credentials from `config` (a `DOCKER_CONFIG` dir), state in `data_dir`, and `env` added.
fn command(
    bed: &Bed,
    cwd: &Path,
    config: &Path,
    data_dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pullpilot"));
    cmd.env_clear()
        .current_dir(cwd)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "HOME",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
        )
        .env("DOCKER_HOST", &bed.docker_host)
        .env("DOCKER_CONFIG", config)
        .env("PP_DATA_DIR", data_dir)
        .env("PP_LOG_LEVEL", "debug")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `pullpilot ARGS` in `cwd` with the bed's daemon, registry credentials from `config`
/// (a `DOCKER_CONFIG` dir) and state in `data_dir`; `env` adds or overrides variables.
pub(crate) fn pullpilot(
    bed: &Bed,
    cwd: &Path,
    config: &Path,
    data_dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let out = command(bed, cwd, config, data_dir, args, env)
        .output()
        .expect("running the pullpilot binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A pullpilot started in the background (see [`spawn_pullpilot`]), so a test can act while
/// it runs, e.g. while it pauses at a fault-injection step. Killed on drop if still running.
pub(crate) struct Running {
    child: Child,
    out: TempDir,
}

/// Starts `pullpilot ARGS` like [`pullpilot`] does, without waiting for it.
pub(crate) fn spawn_pullpilot(
    bed: &Bed,
    cwd: &Path,
    config: &Path,
    data_dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Running {
    let out = TempDir::new("pullpilot-out");
    let file = |name: &str| File::create(out.path().join(name)).expect("creating an output file");
    let child = command(bed, cwd, config, data_dir, args, env)
        .stdout(file("stdout"))
        .stderr(file("stderr"))
        .spawn()
        .expect("starting the pullpilot binary");
    Running { child, out }
}

impl Running {
    /// What it printed on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        fs::read_to_string(self.out.path().join("stderr")).unwrap_or_default()
    }

    /// Waits until stderr contains `needle`; panics after `timeout` or if it exits first.
    pub(crate) fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr().contains(needle) {
                return;
            }
            let exited = self.child.try_wait().expect("polling pullpilot").is_some();
            assert!(
                !exited && Instant::now() < deadline,
                "pullpilot {} before printing {needle:?} (was the e2e binary built with \
                 --features fault-injection?)\n--- stderr ---\n{}",
                if exited { "exited" } else { "ran too long" },
                self.stderr()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends it SIGTERM, as `systemctl stop` does.
    pub(crate) fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `within` for it to end by itself; panics (and kills it) after that.
    pub(crate) fn wait_within(mut self, within: Duration) -> Run {
        let deadline = Instant::now() + within;
        while self.child.try_wait().expect("polling pullpilot").is_none() {
            assert!(
                Instant::now() < deadline,
                "pullpilot did not exit within {within:?}\n--- stderr ---\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(100));
        }
        self.wait()
    }

    /// Waits for it to end.
    pub(crate) fn wait(mut self) -> Run {
        let status = self.child.wait().expect("waiting for pullpilot");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: fs::read_to_string(self.out.path().join("stdout")).unwrap_or_default(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
