//! The settings file (`/etc/default/pullpilot`, or `PP_CONFIG_FILE`) read by the real binary, and
//! the `--json` document of a state-changing command, without Docker: `unblock DIGEST` needs
//! only the data directory.

use std::path::Path;
use std::process::{Command, Output};

mod support;
use support::TempDir;

const DIGEST: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// A state file with `DIGEST` blocked for one repository.
fn blocked_state() -> String {
    format!(
        r#"{{"version":1,"blocked":{{"ghcr.io/acme/web":{{"{DIGEST}":{{"at":"2026-01-01T00:00:00Z","reason":"unhealthy","container":"shop-web-1"}}}}}}}}"#
    )
}

/// `pullpilot unblock DIGEST --json` in an empty environment plus `env`, with a data directory
/// holding [`blocked_state`], and a settings file only where `env` names one.
fn unblock(env: &[(&str, &str)]) -> Output {
    let data = TempDir::new("pp-settings", "data");
    std::fs::write(data.path.join("state.json"), blocked_state()).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pullpilot"));
    cmd.args(["unblock", DIGEST, "--json"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PP_DATA_DIR", &data.path)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unblock_json_is_one_document_with_the_schema_version() {
    let out = unblock(&[("PP_CONFIG_FILE", "")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema_version"], 1, "{doc}");
    assert_eq!(
        doc["unblocked"][0]["repository"], "ghcr.io/acme/web",
        "{doc}"
    );
    assert_eq!(doc["unblocked"][0]["digest"], DIGEST, "{doc}");
    assert!(
        doc["message"]
            .as_str()
            .unwrap()
            .starts_with("Unblocked bbbbbbbbbbbb for ghcr.io/acme/web"),
        "{doc}"
    );
}

#[test]
fn the_settings_file_is_read_and_the_environment_wins() {
    let dir = TempDir::new("pp-settings", "file");
    // An invalid value read from the file is refused, naming the variable: the file was read.
    let file = write(&dir.path, "pullpilot", "# from the .deb\nPP_SOAK=soon\n");
    let out = unblock(&[("PP_CONFIG_FILE", &file)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("PP_SOAK"), "{}", stderr(&out));
    // The same variable in the environment takes precedence over the file.
    let out = unblock(&[("PP_CONFIG_FILE", &file), ("PP_SOAK", "1h")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_named_file_must_exist_and_a_malformed_line_is_named() {
    let dir = TempDir::new("pp-settings", "bad");
    let gone = dir.path.join("gone");
    let out = unblock(&[("PP_CONFIG_FILE", gone.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "PP_CONFIG_FILE names the settings file {}, which does not exist",
            gone.display()
        )),
        "{}",
        stderr(&out)
    );
    let file = write(
        &dir.path,
        "pullpilot",
        "PP_SOAK=1h\nexport PP_TRACK=minor\n",
    );
    let out = unblock(&[("PP_CONFIG_FILE", &file)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("the settings file {file}, line 2: `export`")),
        "{}",
        stderr(&out)
    );
}
