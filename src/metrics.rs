//! The `node_exporter` textfile (`PP_METRICS_FILE`), written atomically after each `apply` pass:
//! when the last pass ran, how long it took and whether it succeeded, containers by decision,
//! and update / rollback / failure totals kept across runs in state.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use crate::state::schema::Counters;

/// What one pass did.
#[derive(Clone, Debug, Default)]
pub struct PassMetrics {
    pub finished: Option<SystemTime>,
    pub duration: Duration,
    pub success: bool,
    /// Decision (or outcome) word → number of containers.
    pub containers: BTreeMap<String, usize>,
    pub totals: Counters,
}

/// The textfile's content.
pub fn render(report: &PassMetrics) -> String {
    let finished = report.finished.unwrap_or(SystemTime::UNIX_EPOCH);
    let epoch = finished
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in lines {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let one = |v: String| vec![(String::new(), v)];
    metric(
        "pullpilot_last_run_timestamp_seconds",
        "gauge",
        "When the last apply pass finished (Unix time).",
        &one(format!("{epoch:.3}")),
    );
    metric(
        "pullpilot_last_run_duration_seconds",
        "gauge",
        "How long the last apply pass took.",
        &one(format!("{:.3}", report.duration.as_secs_f64())),
    );
    metric(
        "pullpilot_last_run_success",
        "gauge",
        "1 if the last pass had no failure, else 0.",
        &one(u8::from(report.success).to_string()),
    );
    let by_decision: Vec<(String, String)> = report
        .containers
        .iter()
        .map(|(decision, n)| {
            (
                format!("{{decision=\"{}\"}}", decision.replace('"', "'")),
                n.to_string(),
            )
        })
        .collect();
    metric(
        "pullpilot_containers",
        "gauge",
        "Containers in scope in the last pass, by decision or outcome.",
        &by_decision,
    );
    metric(
        "pullpilot_updates_total",
        "counter",
        "Updates applied since the state file was created.",
        &one(report.totals.updates.to_string()),
    );
    metric(
        "pullpilot_rollbacks_total",
        "counter",
        "Updates rolled back after failing the health gate.",
        &one(report.totals.rollbacks.to_string()),
    );
    metric(
        "pullpilot_failures_total",
        "counter",
        "Updates that failed for another reason, or needed a person.",
        &one(report.totals.failures.to_string()),
    );
    out
}

/// Writes the file atomically (temporary file + rename) with mode 0644, set explicitly so that
/// `node_exporter`, which runs as another user, can read it whatever the umask (the unit's
/// `UMask=0077` would otherwise make it 0600).
pub fn write(path: &Path, report: &PassMetrics) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .with_context(|| {
            format!(
                "writing the metrics file {} (PP_METRICS_FILE)",
                tmp.display()
            )
        })?;
    file.set_permissions(fs::Permissions::from_mode(0o644))
        .and_then(|()| file.write_all(render(report).as_bytes()))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing the metrics file {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("replacing the metrics file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let report = PassMetrics {
            finished: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
            duration: Duration::from_millis(2500),
            success: false,
            containers: [
                ("up to date".to_string(), 3),
                ("rolled back".to_string(), 1),
            ]
            .into(),
            totals: Counters {
                updates: 7,
                rollbacks: 2,
                failures: 1,
            },
        };
        let text = render(&report);
        for line in [
            "pullpilot_last_run_timestamp_seconds 1800000000.000",
            "pullpilot_last_run_duration_seconds 2.500",
            "pullpilot_last_run_success 0",
            "pullpilot_containers{decision=\"up to date\"} 3",
            "pullpilot_containers{decision=\"rolled back\"} 1",
            "pullpilot_updates_total 7",
            "pullpilot_rollbacks_total 2",
            "pullpilot_failures_total 1",
            "# TYPE pullpilot_updates_total counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn writes_atomically() {
        let tmp = tempfile::Builder::new()
            .prefix("pp-metrics-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let path = dir.join("pullpilot.prom");
        write(&path, &PassMetrics::default()).unwrap();
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains("pullpilot_last_run_success 0")
        );
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    /// Set by [`issue_12_the_file_is_0644_under_umask_0077`] for the child it starts.
    const UMASK_CHILD_DIR: &str = "PULLPILOT_TEST_METRICS_DIR";

    #[test]
    fn issue_12_the_file_is_0644_under_umask_0077() {
        // The umask is per process and std cannot set it, so run the write in a child test
        // process started by a shell with `umask 077`, as the systemd unit does.
        let tmp = tempfile::Builder::new()
            .prefix("pp-metrics-umask-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(
                r#"umask 077 && exec "$0" --exact metrics::tests::write_under_umask_child --quiet"#,
            )
            .arg(std::env::current_exe().unwrap())
            .env(UMASK_CHILD_DIR, &dir)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let path = dir.join("pullpilot.prom");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    /// Writes the file when started by the test above; does nothing otherwise.
    #[test]
    fn write_under_umask_child() {
        if let Some(dir) = std::env::var_os(UMASK_CHILD_DIR) {
            write(
                &Path::new(&dir).join("pullpilot.prom"),
                &PassMetrics::default(),
            )
            .unwrap();
        }
    }
}
