//! Logging setup: `env_logger` on stderr, journald-friendly (no timestamps when `JOURNAL_STREAM`
//! is set), JSON lines with `PP_LOG_JSON`. `RUST_LOG` still works for debugging one module.
//!
//! When stderr is the journal stream named by `JOURNAL_STREAM`, every line starts with an
//! sd-daemon priority prefix (`<3>` error … `<7>` debug), which journald strips and stores as the
//! entry's priority, so `journalctl -p warning -u pullpilot` shows warnings and errors only.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

/// Starts logging at `level`; `json` switches to one JSON object per line.
pub fn init(level: log::LevelFilter, json: bool) {
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(log::LevelFilter::Warn)
        .filter_module("pullpilot", level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    let under_journald = journal_stream.is_some();
    let prefixed = journal_stream.is_some_and(|value| stderr_is(&value));
    if json {
        builder.format(move |buf, record| {
            let line = serde_json::json!({
                "time": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
                "level": record.level().as_str().to_lowercase(),
                "target": record.target(),
                "message": record.args().to_string(),
            });
            let line = line.to_string();
            if prefixed {
                writeln!(buf, "{}", with_priority(record.level(), &line))
            } else {
                writeln!(buf, "{line}")
            }
        });
    } else if under_journald {
        builder.format(move |buf, record| {
            let line = format!("{}: {}", record.level(), record.args());
            if prefixed {
                writeln!(buf, "{}", with_priority(record.level(), &line))
            } else {
                writeln!(buf, "{line}")
            }
        });
    } else {
        builder.format_timestamp_secs().format_target(false);
    }
    // A second init (tests calling `run` twice) keeps the first logger.
    let _ = builder.try_init();
}

/// The syslog priority journald stores for `level` (sd-daemon.h: `SD_ERR` … `SD_DEBUG`).
fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// `text` with the `<N>` prefix on every line: journald reads each line as its own entry.
fn with_priority(level: log::Level, text: &str) -> String {
    let prefix = format!("<{}>", priority(level));
    text.split('\n')
        .map(|line| format!("{prefix}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether stderr is the stream `JOURNAL_STREAM` names (`device:inode`, in decimal). systemd
/// sets it for a service whose output goes to the journal; a child whose stderr was redirected
/// elsewhere inherits the variable but not the stream, and must not print prefixes.
fn stderr_is(journal_stream: &str) -> bool {
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|meta| names_stream(journal_stream, meta.dev(), meta.ino()))
}

/// Whether `journal_stream` (`device:inode`) is the file with `dev` and `ino`.
fn names_stream(journal_stream: &str, dev: u64, ino: u64) -> bool {
    journal_stream
        .trim()
        .split_once(':')
        .is_some_and(|(d, i)| d.parse() == Ok(dev) && i.parse() == Ok(ino))
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Level;

    #[test]
    fn every_line_carries_the_priority_of_its_level() {
        let cases = [
            (Level::Error, "<3>"),
            (Level::Warn, "<4>"),
            (Level::Info, "<6>"),
            (Level::Debug, "<7>"),
            (Level::Trace, "<7>"),
        ];
        for (level, prefix) in cases {
            assert_eq!(
                with_priority(level, "WARN: disk full"),
                format!("{prefix}WARN: disk full")
            );
        }
        assert_eq!(
            with_priority(Level::Warn, "WARN: first\nsecond"),
            "<4>WARN: first\n<4>second"
        );
    }

    #[test]
    fn journal_stream_must_name_this_very_stream() {
        assert!(names_stream("64769:12345", 64769, 12345));
        assert!(names_stream("64769:12345\n", 64769, 12345));
        assert!(!names_stream("64769:12346", 64769, 12345));
        assert!(!names_stream("1:12345", 64769, 12345));
        for bad in ["", "64769", ":", "x:y", "64769:12345:1", "-1:12345"] {
            assert!(!names_stream(bad, 64769, 12345), "{bad:?}");
        }
    }

    #[test]
    fn stderr_is_compared_by_device_and_inode() {
        let meta = std::fs::File::from(std::io::stderr().as_fd().try_clone_to_owned().unwrap())
            .metadata()
            .unwrap();
        assert!(stderr_is(&format!("{}:{}", meta.dev(), meta.ino())));
        assert!(!stderr_is(&format!("{}:{}", meta.dev(), meta.ino() + 1)));
        assert!(!stderr_is("not-a-stream"));
    }
}
