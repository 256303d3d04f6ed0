//! A small parser for shoutrrr-style service URLs (`scheme://user:pass@host:port/path?k=v#frag`)
//! and [`redact`], which keeps only the scheme and host. Pure: no I/O. Error texts name parts of
//! a URL, never their values.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// One parsed URL. Userinfo, query and fragment are percent-decoded; the path is kept raw
/// (still encoded) so services can split it themselves.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ParsedUrl {
    /// Lowercased.
    pub(crate) scheme: String,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    /// As written (IPv6 keeps its brackets); may be empty.
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    /// Raw path including the leading `/`, or empty.
    pub(crate) path: String,
    /// Decoded pairs in order; keys as written.
    pub(crate) query: Vec<(String, String)>,
    pub(crate) fragment: Option<String>,
}

impl ParsedUrl {
    /// `host` or `host:port`, as it goes into an HTTP URL.
    pub(crate) fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

pub(crate) fn parse(text: &str) -> Result<ParsedUrl, String> {
    let text = text.trim();
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| "missing `scheme://`".to_string())?;
    if !valid_scheme(scheme) {
        return Err("the scheme is not valid".into());
    }
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(decode(f, false, "fragment")?)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, parse_query(q)?),
        None => (rest, Vec::new()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((name, pass)) => (
                Some(decode(name, false, "user name")?),
                Some(decode(pass, false, "password")?),
            ),
            None => (Some(decode(u, false, "user name")?), None),
        },
    };
    let (host, port) = split_host_port(hostport).ok_or_else(|| {
        "the host or port is not valid (is a secret missing %-escapes?)".to_string()
    })?;
    Ok(ParsedUrl {
        scheme: scheme.to_ascii_lowercase(),
        user,
        password,
        host: host.to_string(),
        port,
        path: path.to_string(),
        query,
        fragment,
    })
}

fn decode(text: &str, plus_is_space: bool, what: &str) -> Result<String, String> {
    percent_decode(text, plus_is_space).ok_or_else(|| format!("bad %-escape in the {what}"))
}

fn parse_query(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k, true, "query")?, decode(v, true, "query")?))
        })
        .collect()
}

fn valid_scheme(scheme: &str) -> bool {
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
}

/// `host[:port]` or `[v6][:port]`; `None` when it is not a plausible host (which is also what a
/// password with an unescaped `/`, `?` or `#` turns into).
fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if text.starts_with('[') {
        let end = text.find(']')?;
        let (host, rest) = text.split_at(end + 1);
        if !host[1..end]
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return None;
        }
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        let (host, port) = match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        };
        let ok = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
        if !ok {
            return None;
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
    };
    Some((host, port))
}

/// Everything but RFC 3986 unreserved characters (`A–Z a–z 0–9 - . _ ~`) gets escaped.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `%XX` escapes decoded (and `+` as a space when `plus_is_space`); `None` for a `%` without
/// two hex digits after it, or bytes that are not UTF-8.
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    let text = if plus_is_space {
        std::borrow::Cow::Owned(text.replace('+', " "))
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    percent_encoding::percent_decode_str(&text)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, NOT_UNRESERVED).to_string()
}

/// `scheme://host[:port]`, plus `/…` when anything else (userinfo, path, query, fragment) was
/// dropped. Anything that does not look like a URL becomes `[redacted URL]`; a URL whose host
/// part does not look like a host (a secret with an unescaped `/`, say) keeps only its scheme.
pub fn redact(url: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return "[redacted URL]".into();
    };
    if !valid_scheme(scheme) {
        return "[redacted URL]".into();
    }
    let scheme = scheme.to_ascii_lowercase();
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let (had_userinfo, hostport) = match authority.rsplit_once('@') {
        Some((_, h)) => (true, h),
        None => (false, authority),
    };
    if hostport.is_empty() || split_host_port(hostport).is_none() {
        return format!("{scheme}://…");
    }
    let tail = &rest[end..];
    if had_userinfo || !(tail.is_empty() || tail == "/") {
        format!("{scheme}://{hostport}/…")
    } else {
        format!("{scheme}://{hostport}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_part() {
        let u = parse("NTFY://us%40er:p%3Ass@host.example:8080/a/b%2Fc?Title=Hi+there&x=%26#frag")
            .unwrap();
        assert_eq!(u.scheme, "ntfy");
        assert_eq!(u.user.as_deref(), Some("us@er"));
        assert_eq!(u.password.as_deref(), Some("p:ss"));
        assert_eq!(u.host, "host.example");
        assert_eq!(u.port, Some(8080));
        assert_eq!(u.path, "/a/b%2Fc");
        assert_eq!(
            u.query,
            [
                ("Title".into(), "Hi there".into()),
                ("x".into(), "&".into())
            ]
        );
        assert_eq!(u.fragment.as_deref(), Some("frag"));
        assert_eq!(u.authority(), "host.example:8080");
    }

    #[test]
    fn ipv6_hosts_keep_brackets() {
        let u = parse("gotify://[::1]:8080/Atoken").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("[::1]", Some(8080)));
        assert_eq!(parse("gotify://[::1]/A").unwrap().port, None);
    }

    #[test]
    fn rejects_what_is_not_a_url() {
        for bad in [
            "",
            "hooks.slack.com/services/x",
            "1x://host",
            "smtp://u:pa/ss@host:25/",
            "smtp://host:25x/",
            "smtp://host:99999/",
            "ntfy://host/t?x=%zz",
            "ntfy://us%er@host/t",
            "ntfy://ho st/topic",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redaction_table() {
        let cases = [
            ("slack://hook:T0-B0-XYZ@webhook", "slack://webhook/…"),
            (
                "slack://Bot@T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
                "slack://T00000000/…",
            ),
            ("discord://tok3n_s3cret@123456789", "discord://123456789/…"),
            (
                "ntfy://user:pa55@ntfy.example:8443/topic?x=1",
                "ntfy://ntfy.example:8443/…",
            ),
            (
                "gotify://gotify.example.com:443/path/AzyoeNS.D4iJLVa/?priority=1",
                "gotify://gotify.example.com:443/…",
            ),
            (
                "telegram://110201543:AAHdqTcvC@telegram?chats=@c",
                "telegram://telegram/…",
            ),
            (
                "smtp://me:hunter2@mail.example.com:587/?from=a@b&to=c@d",
                "smtp://mail.example.com:587/…",
            ),
            ("generic://hooks.example.com", "generic://hooks.example.com"),
            (
                "generic://hooks.example.com/",
                "generic://hooks.example.com",
            ),
            (
                "generic+https://h.example/api/webhook/SECRET",
                "generic+https://h.example/…",
            ),
            ("generic://h.example?token=SECRET", "generic://h.example/…"),
            ("generic://h.example#SECRET", "generic://h.example/…"),
            ("GOTIFY://[::1]:80/A123", "gotify://[::1]:80/…"),
            // Unescaped `/` in a password: the "host" is garbage, so only the scheme stays.
            ("smtp://me:hun/ter2@mail.example.com/?to=x", "smtp://…"),
            (
                "smtp://me:p@ss@mail.example.com/",
                "smtp://mail.example.com/…",
            ),
            (
                "smtp://me:se cret@mail.example.com/",
                "smtp://mail.example.com/…",
            ),
            ("smtp://mail example.com/", "smtp://…"),
            ("xoxb-not-a-url", "[redacted URL]"),
            ("", "[redacted URL]"),
            ("%%%://x", "[redacted URL]"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn percent_encoding_round_trips() {
        let s = "a b/c?d=é&%";
        assert_eq!(percent_decode(&percent_encode(s), false).unwrap(), s);
        assert_eq!(percent_encode("Az09-._~"), "Az09-._~");
        assert_eq!(percent_encode("a b+é/"), "a%20b%2B%C3%A9%2F");
        assert_eq!(percent_decode("a+b%2B", true).unwrap(), "a b+");
        assert_eq!(percent_decode("a+b%2b", false).unwrap(), "a+b+");
        for bad in ["%", "%4", "%zz", "a%4g", "%ff"] {
            assert_eq!(percent_decode(bad, false), None, "{bad}");
        }
    }
}
