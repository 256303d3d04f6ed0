//! Everything pullpilot prints: results on stdout (a table or one JSON document), errors on
//! stderr. Logs go through `log`, not here.
//!
//! Nothing here panics on a closed stream. When the reader of stdout has gone away
//! (`pullpilot plan | head -1`: EPIPE), the rest of the output is dropped without a word and
//! the command finishes with the exit status it would have had anyway, as ripgrep and the
//! coreutils do. Any other failure to write stdout (a full disk) is remembered and turns a
//! successful run into exit status 1 with a message (see [`write_failure`]).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::Mutex;

use serde::Serialize;

/// The first failure to write stdout other than a closed pipe, for `error::exit_code`.
static WRITE_FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// Prints an error chain as one line: `pullpilot: error: outer: inner`.
pub fn error(err: &anyhow::Error) {
    let text = format!("{err:#}");
    if !text.is_empty() {
        // Nowhere left to report a failure to write stderr.
        let _ = writeln!(io::stderr().lock(), "pullpilot: error: {text}");
    }
}

/// The `schema_version` of every JSON document a command prints (`--json`): raised when a
/// field is removed or changes meaning, not when one is added.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// The object `fields` as a command's JSON document: its fields and `schema_version`
/// (anything else is kept under `value`).
pub fn document(fields: serde_json::Value) -> serde_json::Value {
    let mut doc = match fields {
        serde_json::Value::Object(fields) => fields,
        other => serde_json::Map::from_iter([("value".to_string(), other)]),
    };
    doc.insert("schema_version".into(), JSON_SCHEMA_VERSION.into());
    serde_json::Value::Object(doc)
}

/// Prints one JSON document on stdout.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_stdout(&bytes);
    Ok(())
}

/// Prints lines of text on stdout.
pub fn text(lines: &str) {
    write_stdout(lines.as_bytes());
}

/// Writes and flushes stdout: a closed pipe is ignored, other errors are remembered.
fn write_stdout(bytes: &[u8]) {
    let mut out = io::stdout().lock();
    let result = out.write_all(bytes).and_then(|()| out.flush());
    if let Err(e) = result {
        note_write_error(&e);
    }
}

fn note_write_error(e: &io::Error) {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return;
    }
    let mut failure = WRITE_FAILURE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    failure.get_or_insert_with(|| format!("the output could not be written to stdout: {e}"));
}

/// Why writing stdout failed, if it did for a reason other than a closed pipe.
pub fn write_failure() -> Option<String> {
    WRITE_FAILURE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Renders rows as a left-aligned table with a header; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: &mut dyn Iterator<Item = &str>| {
        let mut line = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < columns {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push_row(&mut header.iter().copied());
    for row in rows {
        push_row(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io;

    #[test]
    fn every_document_carries_the_schema_version() {
        let doc = super::document(serde_json::json!({"scope": "all", "containers": []}));
        assert_eq!(doc["schema_version"], super::JSON_SCHEMA_VERSION);
        assert_eq!(doc["scope"], "all");
        assert_eq!(super::document(serde_json::json!([1]))["value"][0], 1);
    }

    #[test]
    fn a_closed_pipe_is_not_a_failure_but_other_write_errors_are() {
        super::note_write_error(&io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(super::write_failure(), None);
        super::note_write_error(&io::Error::from(io::ErrorKind::StorageFull));
        let failure = super::write_failure().unwrap();
        assert!(
            failure.starts_with("the output could not be written to stdout"),
            "{failure}"
        );
    }

    #[test]
    fn table_aligns_columns() {
        let t = super::table(
            &["A", "BB", "C"],
            &[vec!["xxx".into(), "y".into(), "last column".into()]],
        );
        assert_eq!(t, "A    BB  C\nxxx  y   last column\n");
    }
}
