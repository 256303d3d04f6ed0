//! Minimal text edits of compose files for `pin --compose` / `unpin --compose`: one service's
//! `image:` value gains (or loses) `@sha256:…`, with comments, quoting and layout kept. When the
//! value ends in a variable (`image: ${APP_IMAGE}`, `image: app:${TAG}`), the variable's line in
//! the project's `.env` is edited instead, and the compose file is left alone. Version tracking
//! uses the same edits to move the tag (`app:1.2.3` → `app:1.2.10`). Pure text in, text out;
//! [`locate`] finds the file (reading, never writing) and the caller writes it.

mod locate;

pub use locate::{Location, Spot, check_writable, locate, retag_file, write_in_place};

use std::fmt::{self, Write as _};

use crate::reference::Digest;

/// Why a file could not be edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    NoServices,
    NoService(String),
    NoImage(String),
    EmptyImage(String),
    FlowStyle(String),
    VarNotInDotenv(String),
    /// The image value does not end in the tag to replace.
    NotTheTag {
        value: String,
    },
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::NoServices => f.write_str("it has no block-style `services:` section"),
            EditError::NoService(s) => write!(f, "it has no service {s:?}"),
            EditError::NoImage(s) => write!(f, "service {s:?} has no `image:` line"),
            EditError::EmptyImage(s) => write!(
                f,
                "service {s:?} has an empty `image:` value; write the image it runs there (for \
                 example `image: nginx:1.27`) and try again"
            ),
            EditError::FlowStyle(s) => write!(
                f,
                "service {s:?} is written in flow style ({{ … }}), which pullpilot does not edit; \
                 write it in block style or edit the image by hand"
            ),
            EditError::VarNotInDotenv(v) => write!(
                f,
                "the image comes from ${{{v}}}, which the project's .env does not set; set it there \
                 or edit the image by hand"
            ),
            EditError::NotTheTag { value } => write!(
                f,
                "its image value {value:?} does not end in the tag the container runs, so \
                 pullpilot cannot tell which part to change"
            ),
        }
    }
}

impl std::error::Error for EditError {}

/// Where a service's image value lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageValue {
    /// The compose file's own line (index into `lines()`), holding this value.
    Line { index: usize, value: String },
    /// The value ends with this variable: edit `.env`.
    Variable(String),
}

/// Finds `service`'s `image:` in a block-style compose file.
pub fn find_image(text: &str, service: &str) -> Result<ImageValue, EditError> {
    let lines: Vec<&str> = text.lines().collect();
    let services = lines
        .iter()
        .position(|l| key_of(l).is_some_and(|(indent, key, _)| indent == 0 && key == "services"))
        .ok_or(EditError::NoServices)?;
    let mut service_line = None;
    let mut service_indent = None;
    for (i, line) in lines.iter().enumerate().skip(services + 1) {
        let Some((indent, key, rest)) = key_of(line) else {
            continue;
        };
        if indent == 0 {
            break;
        }
        let level = *service_indent.get_or_insert(indent);
        if indent == level && key == service {
            if rest.trim_start().starts_with('{') {
                return Err(EditError::FlowStyle(service.to_string()));
            }
            service_line = Some(i);
            break;
        }
    }
    let start = service_line.ok_or_else(|| EditError::NoService(service.to_string()))?;
    let level = service_indent.unwrap_or(0);
    let mut child_indent = None;
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        let Some((indent, key, rest)) = key_of(line) else {
            continue;
        };
        if indent <= level {
            break;
        }
        let child = *child_indent.get_or_insert(indent);
        if indent == child && key == "image" {
            let value = unquote(strip_comment(rest).trim()).trim().to_string();
            if value.is_empty() {
                // `image:`, `image: ""` or `image:  # note`: there is no reference to pin, and
                // appending a digest would glue it to the comment.
                return Err(EditError::EmptyImage(service.to_string()));
            }
            return Ok(match trailing_variable(&value) {
                Some(var) => ImageValue::Variable(var),
                None => ImageValue::Line { index: i, value },
            });
        }
    }
    Err(EditError::NoImage(service.to_string()))
}

/// `text` with line `index`'s image value set to `reference` with `digest` (or none), keeping
/// the key, quotes, comment and line ending as they were.
pub fn set_image_line(text: &str, index: usize, digest: Option<&Digest>) -> String {
    map_image_line(text, index, |value| Some(with_digest(value, digest)))
        .unwrap_or_else(|| text.to_string())
}

/// `text` with line `index`'s image value replaced by `f(value)`, keeping the key, quotes,
/// comment and line ending; `None` when `f` refuses the value. A line that is not an image
/// line is left as it is.
pub fn map_image_line(
    text: &str,
    index: usize,
    f: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 80);
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i != index {
            out.push_str(line);
            continue;
        }
        let (body, newline) = split_newline(line);
        let Some(colon) = body.find("image:").map(|at| at + "image:".len()) else {
            // Not the line find_image reported: leave the text as it is.
            out.push_str(line);
            continue;
        };
        let (head, rest) = body.split_at(colon);
        let comment_at = comment_start(rest);
        let (value_part, comment) = rest.split_at(comment_at);
        let lead = &value_part[..value_part.len() - value_part.trim_start().len()];
        let trimmed = value_part.trim();
        let trail = &value_part[lead.len() + trimmed.len()..];
        let (quote, inner) = match trimmed.chars().next() {
            Some(q @ ('"' | '\'')) if trimmed.len() >= 2 && trimmed.ends_with(q) => {
                (Some(q), &trimmed[1..trimmed.len() - 1])
            }
            _ => (None, trimmed),
        };
        let value = f(inner)?;
        let value = quote.map_or_else(|| value.clone(), |q| format!("{q}{value}{q}"));
        let _ = write!(out, "{head}{lead}{value}{trail}{comment}{newline}");
    }
    Some(out)
}

/// `.env` text with variable `var`'s value given `digest` (or none). Errors if it is not set.
pub fn set_dotenv_var(text: &str, var: &str, digest: Option<&Digest>) -> Result<String, EditError> {
    map_dotenv_var(text, var, |value| Some(with_digest(value, digest)))
}

/// `.env` text with variable `var`'s value replaced by `f(value)` (quotes kept). Errors if it
/// is not set, or (as [`EditError::Unchanged`]) when `f` refuses the value.
pub fn map_dotenv_var(
    text: &str,
    var: &str,
    f: impl Fn(&str) -> Option<String>,
) -> Result<String, EditError> {
    let mut found = false;
    let mut out = String::with_capacity(text.len() + 80);
    for line in text.split_inclusive('\n') {
        let (body, newline) = split_newline(line);
        let trimmed = body.trim_start();
        let assignment = trimmed.strip_prefix("export ").unwrap_or(trimmed);
        match assignment.split_once('=') {
            Some((name, value)) if name.trim() == var && !trimmed.starts_with('#') => {
                found = true;
                let prefix = &body[..body.len() - value.len()];
                let v = value.trim();
                let (quote, inner) = match v.chars().next() {
                    Some(q @ ('"' | '\'')) if v.len() >= 2 && v.ends_with(q) => {
                        (Some(q), &v[1..v.len() - 1])
                    }
                    _ => (None, v),
                };
                let new = f(inner).ok_or_else(|| EditError::NotTheTag {
                    value: inner.to_string(),
                })?;
                let new = quote.map_or_else(|| new.clone(), |q| format!("{q}{new}{q}"));
                let _ = write!(out, "{prefix}{new}{newline}");
            }
            _ => out.push_str(line),
        }
    }
    if found {
        Ok(out)
    } else {
        Err(EditError::VarNotInDotenv(var.to_string()))
    }
}

/// `reference` without any `@sha256:…`, plus `@digest` when given.
pub fn with_digest(reference: &str, digest: Option<&Digest>) -> String {
    let base = match reference.rfind('@') {
        Some(at) if reference[at + 1..].contains(':') => &reference[..at],
        _ => reference,
    };
    match digest {
        Some(d) => format!("{base}@{d}"),
        None => base.to_string(),
    }
}

/// `value` (an image reference, or a variable holding one or just its tag) with the tag
/// `from` replaced by `to`; `None` when it does not end in `:from` (or is not `from` itself).
pub fn retag_value(value: &str, from: &str, to: &str) -> Option<String> {
    if value == from {
        return Some(to.to_string());
    }
    let base = value.strip_suffix(from)?.strip_suffix(':')?;
    // `host:5000` alone is not a reference with a tag.
    if base.is_empty() || base.ends_with('/') {
        return None;
    }
    Some(format!("{base}:{to}"))
}

/// `(indent, key, rest after the colon)` for a `key: …` line; `None` for blank, comment and
/// list lines.
fn key_of(line: &str) -> Option<(usize, &str, &str)> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
        return None;
    }
    let indent = line.len() - trimmed.len();
    let colon = trimmed.find(':')?;
    let key = unquote(trimmed[..colon].trim());
    let rest = &trimmed[colon + 1..];
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then_some((indent, key, rest))
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

/// Byte offset of a ` #` comment outside quotes, or the end.
fn comment_start(s: &str) -> usize {
    let mut quote = None;
    let mut prev_space = true;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev_space => return i,
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    s.len()
}

fn strip_comment(s: &str) -> &str {
    &s[..comment_start(s)]
}

fn split_newline(line: &str) -> (&str, &str) {
    let body = line.trim_end_matches(['\n', '\r']);
    (body, &line[body.len()..])
}

/// `NAME` when `value` ends with `${NAME}`, `${NAME:-default}` or `$NAME`.
fn trailing_variable(value: &str) -> Option<String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    if let Some(body) = value.strip_suffix('}') {
        let open = body.rfind("${")?;
        let inner = &body[open + 2..];
        let name = inner.split([':', '-', '?']).next()?;
        return name_ok(name).then(|| name.to_string());
    }
    let dollar = value.rfind('$')?;
    let name = &value[dollar + 1..];
    name_ok(name).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Digest {
        Digest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap()
    }

    const FILE: &str = "# shop stack\nname: shop\nservices:\n  db:\n    image: postgres:16 # keep\n  web:\n    # the storefront\n    image: \"ghcr.io/acme/web:1.4\"   # pinned by ops\n    ports:\n      - \"8080:80\"\n  worker:\n    image: ${WORKER_IMAGE}\n  api:\n    image: registry.lan:5000/api:${API_TAG:-latest}\n";

    #[test]
    fn finds_each_services_image() {
        assert_eq!(
            find_image(FILE, "db"),
            Ok(ImageValue::Line {
                index: 4,
                value: "postgres:16".into()
            })
        );
        assert_eq!(
            find_image(FILE, "web"),
            Ok(ImageValue::Line {
                index: 7,
                value: "ghcr.io/acme/web:1.4".into()
            })
        );
        assert_eq!(
            find_image(FILE, "worker"),
            Ok(ImageValue::Variable("WORKER_IMAGE".into()))
        );
        assert_eq!(
            find_image(FILE, "api"),
            Ok(ImageValue::Variable("API_TAG".into()))
        );
        assert_eq!(
            find_image(FILE, "nope"),
            Err(EditError::NoService("nope".into()))
        );
        assert_eq!(
            find_image("services:\n  a: { image: x }\n", "a"),
            Err(EditError::FlowStyle("a".into()))
        );
        assert_eq!(
            find_image("services:\n  a:\n    build: .\n", "a"),
            Err(EditError::NoImage("a".into()))
        );
        assert_eq!(
            find_image("version: '3'\n", "a"),
            Err(EditError::NoServices)
        );
    }

    #[test]
    fn pinning_changes_only_that_line_and_keeps_quotes_and_comments() {
        let pinned = set_image_line(FILE, 7, Some(&d()));
        let changed: Vec<(&str, &str)> = FILE
            .lines()
            .zip(pinned.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1, "{pinned}");
        assert_eq!(
            changed[0].1,
            format!(
                "    image: \"ghcr.io/acme/web:1.4@{}\"   # pinned by ops",
                d()
            )
        );
        let unpinned = set_image_line(&pinned, 7, None);
        assert_eq!(unpinned, FILE, "unpin restores the original text");
        let again = set_image_line(&pinned, 7, Some(&d()));
        assert_eq!(again, pinned, "pinning twice does not stack digests");
        let db = set_image_line(FILE, 4, Some(&d()));
        assert!(
            db.contains(&format!("    image: postgres:16@{} # keep\n", d())),
            "{db}"
        );
    }

    #[test]
    fn crlf_files_keep_their_line_endings() {
        let text = "services:\r\n  a:\r\n    image: x:1\r\n";
        let ImageValue::Line { index, .. } = find_image(text, "a").unwrap() else {
            panic!()
        };
        assert_eq!(
            set_image_line(text, index, Some(&d())),
            format!("services:\r\n  a:\r\n    image: x:1@{}\r\n", d())
        );
    }

    #[test]
    fn dotenv_variables_are_edited_in_place() {
        let env = "# images\nWORKER_IMAGE=ghcr.io/acme/worker:2\nexport API_TAG=\"1.0\"\nOTHER=1\n";
        let out = set_dotenv_var(env, "WORKER_IMAGE", Some(&d())).unwrap();
        assert_eq!(
            out,
            format!(
                "# images\nWORKER_IMAGE=ghcr.io/acme/worker:2@{}\nexport API_TAG=\"1.0\"\nOTHER=1\n",
                d()
            )
        );
        let api = set_dotenv_var(env, "API_TAG", Some(&d())).unwrap();
        assert!(
            api.contains(&format!("export API_TAG=\"1.0@{}\"\n", d())),
            "{api}"
        );
        assert_eq!(set_dotenv_var(&out, "WORKER_IMAGE", None).unwrap(), env);
        assert_eq!(
            set_dotenv_var(env, "MISSING", None),
            Err(EditError::VarNotInDotenv("MISSING".into()))
        );
    }

    #[test]
    fn an_empty_image_value_is_refused_not_pinned() {
        for text in [
            "services:\n  o:\n    image:\n",
            "services:\n  o:\n    image:  # to do\n",
            "services:\n  o:\n    image: \"\"\n",
            "services:\n  o:\n    image: ' '\n",
            "services:\n\to:\n    image:  # ",
        ] {
            assert_eq!(
                find_image(text, "o"),
                Err(EditError::EmptyImage("o".into())),
                "{text:?}"
            );
        }
        let message = EditError::EmptyImage("o".into()).to_string();
        assert!(message.contains("empty `image:`"), "{message}");
    }

    #[test]
    fn a_line_that_is_not_an_image_line_is_left_alone() {
        assert_eq!(set_image_line(FILE, 0, Some(&d())), FILE);
    }

    #[test]
    fn with_digest_replaces_an_existing_digest_only() {
        assert_eq!(with_digest("a:1", None), "a:1");
        assert_eq!(with_digest(&format!("a:1@{}", d()), None), "a:1");
        assert_eq!(
            with_digest("reg:5000/a", Some(&d())),
            format!("reg:5000/a@{}", d())
        );
    }
}
