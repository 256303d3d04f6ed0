//! Settings files in the syntax of systemd's `EnvironmentFile=` (`/etc/default/pullpilot`), so
//! that pullpilot run by hand can read exactly what its units get. Pure parsing, plus [`read`].
//!
//! The rules, as systemd.exec(5) gives them:
//! - one `NAME=value` per line; blank lines, and lines whose first non-blank character is `#`
//!   or `;`, are comments (a backslash at the end of a comment does not continue it);
//! - an unquoted value keeps its inner whitespace and loses leading and trailing blanks; a
//!   backslash keeps the next character as is (`\\` is one backslash), and a backslash at the
//!   end of a line joins the next line; quotes inside it are kept as they are;
//! - `'…'` keeps everything up to the next `'`, newlines included, with no escapes;
//! - `"…"` may span lines too; a backslash before `"`, `\`, `` ` `` or `$` keeps that
//!   character, before a newline joins the lines, and before anything else is kept with it;
//! - quoted and unquoted parts next to each other join (`"a"b` is `ab`); nothing is expanded.
//!
//! Where systemd skips a line silently (no `=`, a name that is not a variable name such as
//! `export NAME`, invalid UTF-8) or reads an unclosed quote to the end of the file, this is an
//! error naming the line: such a line means something else to its author than to systemd.

use std::path::Path;

use anyhow::Result;

use crate::error::Failure;

/// Why a settings file cannot be read as systemd would: the 1-based line and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvFileProblem {
    pub line: usize,
    pub message: String,
}

fn problem(line: usize, message: impl Into<String>) -> EnvFileProblem {
    EnvFileProblem {
        line,
        message: message.into(),
    }
}

/// Reads the settings file at `path`: its assignments in file order (a later one of the same
/// name wins when they are collected). A file that cannot be read, is not UTF-8 or has a
/// malformed line is a usage error naming the file and the line.
pub fn read(path: &Path) -> Result<Vec<(String, String)>> {
    let shown = path.display();
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::usage(format!("cannot read the settings file {shown}: {e}")))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].split(|b| *b == b'\n').count();
        Failure::usage(format!(
            "the settings file {shown}, line {line}, is not valid UTF-8 text; write it in UTF-8 \
             (look for a Latin-1 character)"
        ))
    })?;
    parse(text).map_err(|p| {
        Failure::usage(format!(
            "the settings file {shown}, line {}: {}",
            p.line, p.message
        ))
    })
}

/// The assignments in `text`, in order.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, EnvFileProblem> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    loop {
        while chars.next_if(|c| matches!(c, ' ' | '\t' | '\r')).is_some() {}
        match chars.peek() {
            None => break,
            Some('\n') => {
                chars.next();
                line += 1;
                continue;
            }
            Some('#' | ';') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                line += 1;
                continue;
            }
            Some(_) => {}
        }
        let start = line;
        let mut key = String::new();
        loop {
            match chars.next() {
                Some('=') => break,
                None | Some('\n') => {
                    return Err(problem(
                        start,
                        format!(
                            "{:?} is not an assignment; write NAME=value, or start the line \
                             with # to make it a comment",
                            key.trim_end()
                        ),
                    ));
                }
                Some(c) => key.push(c),
            }
        }
        let key = key.trim_end_matches([' ', '\t', '\r']);
        check_name(key, start)?;
        let value = value(&mut chars, &mut line, start)?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn check_name(key: &str, line: usize) -> Result<(), EnvFileProblem> {
    if let Some(rest) = key.strip_prefix("export")
        && rest.starts_with([' ', '\t'])
    {
        return Err(problem(
            line,
            format!(
                "`export` is shell syntax that systemd does not understand (it skips the whole \
                 line); write {}=… without it",
                rest.trim_start()
            ),
        ));
    }
    let valid = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(problem(
            line,
            format!(
                "{key:?} is not a variable name (letters, digits and _, not starting with a \
                 digit), so systemd skips this line; fix the name"
            ),
        ))
    }
}

/// The value after `=`, up to the end of its (last) line; `line` moves past it.
fn value(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    line: &mut usize,
    start: usize,
) -> Result<String, EnvFileProblem> {
    let mut value = String::new();
    // How much of `value` stays when trailing blanks of an unquoted part are dropped.
    let mut keep = 0;
    // Inside an unquoted part: blanks are kept (unless they end the value) and quotes are
    // plain characters. Before the value and after a closing quote, blanks are skipped and a
    // quote opens a quoted part.
    let mut unquoted = false;
    let unclosed = |quote: char| {
        problem(
            start,
            format!("the {quote} quote opened here is never closed; add the closing {quote}"),
        )
    };
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                *line += 1;
                break;
            }
            '\\' => match chars.next() {
                None => {}
                Some('\n') => {
                    *line += 1;
                    unquoted = true;
                }
                Some(c) => {
                    value.push(c);
                    keep = value.len();
                    unquoted = true;
                }
            },
            ' ' | '\t' | '\r' if unquoted => value.push(c),
            ' ' | '\t' | '\r' => {}
            '\'' if !unquoted => {
                loop {
                    match chars.next() {
                        None => return Err(unclosed('\'')),
                        Some('\'') => break,
                        Some(c) => {
                            if c == '\n' {
                                *line += 1;
                            }
                            value.push(c);
                        }
                    }
                }
                keep = value.len();
            }
            '"' if !unquoted => {
                loop {
                    match chars.next() {
                        None => return Err(unclosed('"')),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            None => return Err(unclosed('"')),
                            Some('\n') => *line += 1,
                            Some(c @ ('"' | '\\' | '`' | '$')) => value.push(c),
                            Some(c) => {
                                value.push('\\');
                                value.push(c);
                            }
                        },
                        Some(c) => {
                            if c == '\n' {
                                *line += 1;
                            }
                            value.push(c);
                        }
                    }
                }
                keep = value.len();
            }
            c => {
                value.push(c);
                keep = value.len();
                unquoted = true;
            }
        }
    }
    value.truncate(keep);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap_or_else(|p| panic!("{text:?}: {p:?}"))
    }

    fn one(text: &str) -> String {
        let all = pairs(text);
        assert_eq!(all.len(), 1, "{text:?}: {all:?}");
        all[0].1.clone()
    }

    #[test]
    fn comments_blank_lines_and_plain_values() {
        let text =
            "# a comment\n\n  ; another\nPP_SOAK=1h\n   PP_SCOPE = all  \nPP_X=a # not a comment\n";
        assert_eq!(
            pairs(text),
            [
                ("PP_SOAK".into(), "1h".into()),
                ("PP_SCOPE".into(), "all".into()),
                ("PP_X".into(), "a # not a comment".into()),
            ]
        );
        // A backslash ending a comment does not continue it (systemd 254 and later).
        assert_eq!(
            pairs("# note \\\nPP_SOAK=1h\n"),
            [("PP_SOAK".into(), "1h".into())]
        );
        assert_eq!(one("PP_EMPTY="), "");
        assert_eq!(
            one("PP_LAST=no newline at the end"),
            "no newline at the end"
        );
        assert_eq!(one("PP_CRLF=value\r\n"), "value");
    }

    #[test]
    fn unquoted_values_keep_inner_whitespace_and_quotes_and_take_backslash_escapes() {
        assert_eq!(one("K=  a  b  \n"), "a  b");
        assert_eq!(one("K=a\"b\"'c'\n"), "a\"b\"'c'");
        assert_eq!(one("K=a\\\\b\\$c\\ \n"), "a\\b$c ");
        assert_eq!(one("K=first \\\n  second\n"), "first   second");
    }

    #[test]
    fn single_quotes_are_verbatim_and_may_span_lines() {
        assert_eq!(
            one("K='logger -t pp \"$PULLPILOT_SERVICE\" \\n'\n"),
            "logger -t pp \"$PULLPILOT_SERVICE\" \\n"
        );
        assert_eq!(one("K='two\nlines'\n"), "two\nlines");
        assert_eq!(one("K=  'a'  'b'  \n"), "ab");
    }

    #[test]
    fn double_quotes_take_shell_escapes_and_keep_other_backslashes() {
        assert_eq!(one(r#"K="a \"b\" \\ \` \$ \n c""#), "a \"b\" \\ ` $ \\n c");
        assert_eq!(one("K=\"joined \\\nline\"\n"), "joined line");
        assert_eq!(one("K=\"a\"b\n"), "ab");
        assert_eq!(one("K=\" padded \"\n"), " padded ");
    }

    #[test]
    fn line_numbers_count_the_lines_of_multi_line_values() {
        let err = parse("A='one\ntwo'\nB=\"x\ny\"\nnot an assignment\n").unwrap_err();
        assert_eq!(err.line, 5);
        assert!(
            err.message
                .contains("\"not an assignment\" is not an assignment"),
            "{err:?}"
        );
    }

    #[test]
    fn lines_systemd_would_skip_are_errors_naming_the_line() {
        let err = parse("PP_SOAK=1h\nexport PP_SCOPE=all\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            err.message.contains("`export`") && err.message.contains("PP_SCOPE=…"),
            "{err:?}"
        );
        let err = parse("PP-SOAK=1h\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(
            err.message.contains("\"PP-SOAK\" is not a variable name"),
            "{err:?}"
        );
        assert!(parse("1PP=1\n").is_err());
        assert!(parse("=value\n").is_err());
        let err = parse("\n\nK='open\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("never closed"), "{err:?}");
        assert!(parse("K=\"open\\").is_err());
    }

    #[test]
    fn read_names_the_file_and_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pullpilot");
        std::fs::write(&path, "PP_SOAK=1h\nPP_SOAK = 2h\n").unwrap();
        assert_eq!(
            read(&path).unwrap(),
            [
                ("PP_SOAK".into(), "1h".into()),
                ("PP_SOAK".into(), "2h".into())
            ]
        );
        std::fs::write(&path, "PP_SOAK=1h\nPP_SCOPE all\n").unwrap();
        let err = read(&path).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("the settings file {}, line 2: ", path.display())),
            "{err}"
        );
        assert_eq!(
            crate::error::kind_of(&err),
            Some(crate::error::FailureKind::Usage)
        );
        std::fs::write(&path, b"PP_A=1\nPP_B=caf\xe9\n").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains(", line 2, is not valid UTF-8"), "{err}");
        let err = read(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(err.starts_with("cannot read the settings file "), "{err}");
    }

    #[test]
    fn the_packaged_settings_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/pullpilot.env");
        assert_eq!(read(&path).unwrap(), []);
        // Each commented default, uncommented, is a valid assignment of its variable.
        let text = std::fs::read_to_string(&path).unwrap();
        let mut uncommented = String::new();
        for l in text.lines().filter_map(|l| l.strip_prefix("#PP_")) {
            uncommented.push_str("PP_");
            uncommented.push_str(l);
            uncommented.push('\n');
        }
        let all = parse(&uncommented).unwrap();
        assert!(all.len() >= 20, "{all:?}");
        assert!(all.iter().all(|(k, _)| k.starts_with("PP_")));
    }
}
