//! Build script: the commit and build date shown by `pullpilot --version`.
//!
//! - `PULLPILOT_COMMIT`: `git rev-parse --short HEAD` in a git checkout; from a crate tarball,
//!   the first 7 digits of the sha1 in `.cargo_vcs_info.json`; else `unknown`.
//! - `PULLPILOT_BUILD_DATE`: `YYYY-MM-DD` (UTC) of `SOURCE_DATE_EPOCH` when set (reproducible
//!   builds), else of now.
//!
//! Nothing here fails the build: whatever cannot be found is `unknown`.

// `cargo:` instructions are how a build script talks to cargo.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let dir = Path::new(&dir);
    let commit = git_commit(dir)
        .or_else(|| vcs_info_commit(dir))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=PULLPILOT_COMMIT={commit}");
    println!("cargo:rustc-env=PULLPILOT_BUILD_DATE={}", build_date());

    // Rerun when the sources change (a new build date) or HEAD moves (a new commit).
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // Only paths that exist: cargo treats a missing one as changed on every build, and a git
    // checkout has no `.cargo_vcs_info.json`.
    for path in ["Cargo.toml", "src", ".cargo_vcs_info.json"] {
        if dir.join(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    for path in git_paths(dir) {
        println!("cargo:rerun-if-changed={path}");
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

/// The short commit, only when this package is the top of its own checkout (a crate unpacked
/// inside some other repository must not report that repository's commit).
fn git_commit(dir: &Path) -> Option<String> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    let same = Path::new(&top).canonicalize().ok()? == dir.canonicalize().ok()?;
    if !same {
        return None;
    }
    let commit = git(dir, &["rev-parse", "--short", "HEAD"])?;
    commit
        .bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then_some(commit)
}

/// The files whose change means HEAD moved: HEAD itself, the branch it points to, packed refs.
fn git_paths(dir: &Path) -> Vec<String> {
    let mut paths = Vec::new();
    if git_commit(dir).is_none() {
        return paths;
    }
    let mut names = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        names.push(branch);
    }
    for name in names {
        if let Some(path) = git(dir, &["rev-parse", "--git-path", &name]) {
            let path = dir.join(path);
            if path.exists() {
                paths.push(path.display().to_string());
            }
        }
    }
    paths
}

/// `{"git": {"sha1": "…"}}`, written by `cargo package` into the crate tarball.
fn vcs_info_commit(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(".cargo_vcs_info.json")).ok()?;
    let rest = &text[text.find("\"sha1\"")? + 6..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let sha: String = rest
        .strip_prefix('"')?
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (sha.len() >= 7).then(|| sha[..7].to_owned())
}

fn build_date() -> String {
    let at = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(epoch) if !epoch.trim().is_empty() => {
            // Up to 9999-12-31T23:59:59Z, the last instant RFC 3339 can write.
            let secs = epoch
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|&s| s <= 253_402_300_799);
            let Some(secs) = secs else {
                println!(
                    "cargo:warning=SOURCE_DATE_EPOCH={epoch:?} is not a number of seconds since 1970 \
                     (up to the year 9999); the build date is unknown"
                );
                return "unknown".to_owned();
            };
            UNIX_EPOCH + Duration::from_secs(secs)
        }
        _ => SystemTime::now(),
    };
    // `YYYY-MM-DDTHH:MM:SSZ`; the date is the first ten characters.
    humantime::format_rfc3339_seconds(at).to_string()[..10].to_owned()
}
