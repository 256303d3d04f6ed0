//! Everything pullpilot prints: results on stdout (a table or one JSON document), errors on
//! stderr. Logs go through `log`, not here.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Write as _;
use std::io::Write;

use serde::Serialize;

/// Prints an error chain as one line: `pullpilot: error: outer: inner`.
pub fn error(err: &anyhow::Error) {
    let text = format!("{err:#}");
    if !text.is_empty() {
        eprintln!("pullpilot: error: {text}");
    }
}

/// Prints one JSON document on stdout.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Prints lines of text on stdout.
pub fn text(lines: &str) {
    print!("{lines}");
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
    #[test]
    fn table_aligns_columns() {
        let t = super::table(
            &["A", "BB", "C"],
            &[vec!["xxx".into(), "y".into(), "last column".into()]],
        );
        assert_eq!(t, "A    BB  C\nxxx  y   last column\n");
    }
}
