//! Running the pullpilot binary against the test bed, the way an operator would: from a
//! directory, with `DOCKER_HOST`, `DOCKER_CONFIG` and `PP_DATA_DIR` set, nothing else inherited.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::Bed;

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
    let out = cmd.output().expect("running the pullpilot binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
