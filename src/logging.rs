//! Logging setup: `env_logger` on stderr, journald-friendly (no timestamps when `JOURNAL_STREAM`
//! is set), JSON lines with `PP_LOG_JSON`. `RUST_LOG` still works for debugging one module.

use std::io::Write;

/// Starts logging at `level`; `json` switches to one JSON object per line.
pub fn init(level: log::LevelFilter, json: bool) {
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(log::LevelFilter::Warn)
        .filter_module("pullpilot", level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    if json {
        builder.format(|buf, record| {
            let line = serde_json::json!({
                "time": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
                "level": record.level().as_str().to_lowercase(),
                "target": record.target(),
                "message": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    } else if under_journald {
        builder.format(|buf, record| writeln!(buf, "{}: {}", record.level(), record.args()));
    } else {
        builder.format_timestamp_secs().format_target(false);
    }
    // A second init (tests calling `run` twice) keeps the first logger.
    let _ = builder.try_init();
}
