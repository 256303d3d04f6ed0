//! E-mail over SMTP: shoutrrr's `smtp://` URL, and the conversation through lettre's blocking
//! `SmtpConnection` (EHLO, STARTTLS or implicit TLS over rustls, AUTH PLAIN / LOGIN / XOAUTH2,
//! MAIL FROM, RCPT TO per recipient, DATA, QUIT) with a message built by lettre. Every step is
//! bounded by the target's deadline. A password is never sent over an unencrypted connection
//! except to a loopback address (as Go's `net/smtp`, which shoutrrr uses, also refuses).
//! Over 500 lines because the shoutrrr URL grammar and the message-format tests live here.

use std::net::ToSocketAddrs;
use std::time::Instant;

use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, SmtpConnection, TlsParameters,
};
use lettre::transport::smtp::commands::{self, Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::{Address, Message};

use super::message::Rendered;
use super::url::ParsedUrl;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    /// shoutrrr's `Unknown`: PLAIN or LOGIN, whichever the server offers, when a user is given.
    Auto,
    None,
    Plain,
    Login,
    OAuth2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encryption {
    /// Implicit TLS on port 465, else STARTTLS when the server offers it.
    Auto,
    None,
    ExplicitTls,
    ImplicitTls,
}

/// One parsed `smtp://` target.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Smtp {
    /// Without IPv6 brackets.
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    from: String,
    from_name: Option<String>,
    to: Vec<String>,
    subject: Option<String>,
    auth: Auth,
    encryption: Encryption,
    starttls: bool,
    client_host: String,
}

const KEYS: [&str; 15] = [
    "fromaddress",
    "from",
    "fromname",
    "toaddresses",
    "to",
    "subject",
    "title",
    "auth",
    "encryption",
    "usestarttls",
    "starttls",
    "clienthost",
    // Accepted for pasted URLs: the mail is always plain text written by pullpilot.
    "usehtml",
    "template",
    "skiptlsverify",
];

fn get<'a>(url: &'a ParsedUrl, names: &[&str]) -> Option<&'a str> {
    url.query
        .iter()
        .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// shoutrrr decodes `+` in a query as a space; in an address it was a `+`.
fn address(text: &str) -> Result<String, String> {
    let a = text.trim().replace(' ', "+");
    let ok = a.contains('@')
        && !a.starts_with('@')
        && !a.ends_with('@')
        && !a
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>,;\"".contains(c))
        && a.parse::<Address>().is_ok();
    if ok {
        Ok(a)
    } else {
        Err("an address in `from` or `to` is not a plain e-mail address".into())
    }
}

fn no_control(value: Option<&str>, key: &str) -> Result<Option<String>, String> {
    match value {
        Some(v) if v.chars().any(char::is_control) => {
            Err(format!("option `{key}` contains control characters"))
        }
        v => Ok(v.map(str::to_string)),
    }
}

/// Parses an `smtp://` URL; returns the target and the strings to scrub from logs.
pub(crate) fn parse(url: &ParsedUrl) -> Result<(Smtp, Vec<String>), String> {
    if let Some((key, _)) = url
        .query
        .iter()
        .find(|(k, _)| !KEYS.iter().any(|n| k.eq_ignore_ascii_case(n)))
    {
        return Err(format!(
            "unknown option `{key}` (accepted: {})",
            KEYS.join(", ")
        ));
    }
    if !matches!(url.path.as_str(), "" | "/") {
        return Err("SMTP URLs have no path: smtp://host:port/?from=…&to=…".into());
    }
    let host = url
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if host.is_empty() {
        return Err("the host is missing".into());
    }
    let from = address(get(url, &["fromaddress", "from"]).ok_or("option `from` is missing")?)?;
    let to = get(url, &["toaddresses", "to"])
        .ok_or("option `to` is missing")?
        .split(',')
        .filter(|a| !a.trim().is_empty())
        .map(address)
        .collect::<Result<Vec<_>, _>>()?;
    if to.is_empty() {
        return Err("option `to` is missing".into());
    }
    let auth = match get(url, &["auth"]).map(str::to_ascii_lowercase).as_deref() {
        None | Some("unknown" | "auto") => Auth::Auto,
        Some("none") => Auth::None,
        Some("plain") => Auth::Plain,
        Some("login") => Auth::Login,
        Some("oauth2" | "xoauth2") => Auth::OAuth2,
        Some("crammd5") => return Err("auth=CRAMMD5 is not supported; use Plain or Login".into()),
        Some(_) => {
            return Err("option `auth` must be None, Plain, Login, OAuth2 or Unknown".into());
        }
    };
    let encryption = match get(url, &["encryption"])
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("auto") => Encryption::Auto,
        Some("none") => Encryption::None,
        Some("explicittls") => Encryption::ExplicitTls,
        Some("implicittls") => Encryption::ImplicitTls,
        Some(_) => {
            return Err(
                "option `encryption` must be None, ExplicitTLS, ImplicitTLS or Auto".into(),
            );
        }
    };
    let starttls = match get(url, &["usestarttls", "starttls"]) {
        None => true,
        Some(v) => super::services::flag(v).ok_or("option `starttls` must be yes or no")?,
    };
    let client_host = match get(url, &["clienthost"]) {
        None => "localhost".to_string(),
        Some(h) if h.eq_ignore_ascii_case("auto") => {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into())
        }
        Some(h) => h.to_string(),
    };
    if !client_host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
    {
        return Err("option `clienthost` must be a host name".into());
    }
    if auth == Auth::OAuth2 && url.user.as_deref().unwrap_or_default().is_empty() {
        return Err("auth=OAuth2 needs the user name and the token as the password".into());
    }
    let smtp = Smtp {
        host,
        port: url.port.unwrap_or(25),
        user: url.user.clone().filter(|u| !u.is_empty()),
        password: url.password.clone(),
        from,
        from_name: no_control(get(url, &["fromname"]), "fromname")?,
        to,
        subject: no_control(get(url, &["subject", "title"]), "subject")?,
        auth,
        encryption,
        starttls,
        client_host,
    };
    let secrets = url.password.iter().cloned().collect();
    Ok((smtp, secrets))
}

impl Smtp {
    /// Whether any TLS may be needed (so the notifier prepares trust roots).
    pub(crate) fn may_use_tls(&self) -> bool {
        self.encryption != Encryption::None
    }

    fn implicit_tls(&self) -> bool {
        self.encryption == Encryption::ImplicitTls
            || (self.encryption == Encryption::Auto && self.port == 465)
    }

    /// One whole SMTP conversation, finished before `deadline`.
    pub(crate) fn send(
        &self,
        msg: &Rendered<'_>,
        trust: Option<&Trust>,
        deadline: Instant,
    ) -> Result<(), String> {
        let tls = || {
            trust
                .ok_or_else(|| "TLS is not available".to_string())?
                .parameters(&self.host)
        };
        let hello = ClientId::Domain(self.client_host.clone());
        let implicit = if self.implicit_tls() {
            Some(tls()?)
        } else {
            None
        };
        // On an error the connection is dropped without QUIT: the server may be the problem,
        // and the deadline holds.
        let mut conn = connect(&self.host, self.port, &hello, implicit.as_ref(), deadline)?;
        self.session(&mut conn, msg, tls, &hello, deadline)
    }

    fn session(
        &self,
        conn: &mut SmtpConnection,
        msg: &Rendered<'_>,
        tls: impl Fn() -> Result<TlsParameters, String>,
        hello: &ClientId,
        deadline: Instant,
    ) -> Result<(), String> {
        let wants_starttls = self.encryption != Encryption::None && self.starttls;
        if !conn.is_encrypted() && wants_starttls {
            if conn.can_starttls() {
                arm(conn, deadline)?;
                conn.starttls(&tls()?, hello)
                    .map_err(|e| failed("STARTTLS", &e))?;
            } else if self.encryption == Encryption::ExplicitTls {
                return Err("the server does not offer STARTTLS (encryption=ExplicitTLS)".into());
            } else if !is_loopback(&self.host) {
                log::warn!(
                    "E-mail to {} goes unencrypted: the server offers no STARTTLS.",
                    self.host
                );
            }
        } else if !conn.is_encrypted() && self.encryption == Encryption::ExplicitTls {
            return Err("encryption=ExplicitTLS needs STARTTLS, but starttls=no".into());
        }
        self.authenticate(conn, deadline)?;
        let eight_bit = conn.server_info().supports_feature(Extension::EightBitMime);
        let data = self.message(msg, eight_bit)?;
        let body = if eight_bit {
            vec![MailParameter::Body(MailBodyParameter::EightBitMime)]
        } else {
            Vec::new()
        };
        arm(conn, deadline)?;
        conn.command(Mail::new(Some(parse_address(&self.from)?), body))
            .map_err(|e| failed("MAIL FROM", &e))?;
        let mut refused = Vec::new();
        for (i, to) in self.to.iter().enumerate() {
            arm(conn, deadline)?;
            if let Err(e) = conn.command(Rcpt::new(parse_address(to)?, Vec::new())) {
                let e = failed("RCPT TO", &e);
                refused.push(format!("recipient {} of {}: {e}", i + 1, self.to.len()));
            }
        }
        if refused.len() == self.to.len() {
            let _ = conn.quit();
            return Err(refused.join("; "));
        }
        arm(conn, deadline)?;
        conn.command(Data).map_err(|e| failed("DATA", &e))?;
        arm(conn, deadline)?;
        conn.message(&data).map_err(|e| failed("the message", &e))?;
        let _ = arm(conn, deadline).map(|()| conn.quit());
        if refused.is_empty() {
            Ok(())
        } else {
            Err(format!("sent, but refused {}", refused.join("; ")))
        }
    }

    fn authenticate(&self, conn: &mut SmtpConnection, deadline: Instant) -> Result<(), String> {
        let Some(user) = &self.user else {
            return Ok(());
        };
        if self.auth == Auth::None {
            return Ok(());
        }
        if !conn.is_encrypted() && !is_loopback(&self.host) {
            return Err(format!(
                "refusing to send the password unencrypted to {} (no STARTTLS); use port 465, \
                 encryption=ImplicitTLS or a server that offers STARTTLS",
                self.host
            ));
        }
        let offered = |m| conn.server_info().supports_auth_mechanism(m);
        let mechanism = match self.auth {
            Auth::Auto if offered(Mechanism::Plain) => Mechanism::Plain,
            Auth::Auto if offered(Mechanism::Login) => Mechanism::Login,
            Auth::Auto => {
                return Err(
                    "the server offers neither AUTH PLAIN nor LOGIN, but the URL has a user name"
                        .into(),
                );
            }
            Auth::Plain => Mechanism::Plain,
            Auth::Login => Mechanism::Login,
            Auth::OAuth2 => Mechanism::Xoauth2,
            Auth::None => return Ok(()),
        };
        let password = self.password.clone().unwrap_or_default();
        let credentials = Credentials::new(user.clone(), password);
        let auth = |e| failed("AUTH", &e);
        arm(conn, deadline)?;
        let command = commands::Auth::new(mechanism, credentials.clone(), None).map_err(auth)?;
        let mut reply = conn.command(command).map_err(auth)?;
        // PLAIN and XOAUTH2 send everything at once; LOGIN answers two challenges.
        for _ in 0..3 {
            if !reply.has_code(334) {
                return Ok(());
            }
            let command = commands::Auth::new_from_response(mechanism, credentials.clone(), &reply)
                .map_err(auth)?;
            arm(conn, deadline)?;
            reply = conn.command(command).map_err(auth)?;
        }
        Err("AUTH: the server kept asking for more".into())
    }

    /// The message as lettre formats it for DATA (before dot-stuffing): RFC 5322 headers
    /// (display name quoted or RFC 2047 encoded, subject folded and encoded as needed), and a
    /// plain-text body in 7bit, 8bit when the server takes 8BITMIME, else base64.
    fn message(&self, msg: &Rendered<'_>, eight_bit: bool) -> Result<Vec<u8>, String> {
        let subject = one_line(self.subject.as_deref().unwrap_or(&msg.title));
        let from_name = one_line(self.from_name.as_deref().unwrap_or("pullpilot"));
        let raw = |name: &'static str, value: &str| {
            HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
        };
        let mut builder = Message::builder()
            .from(Mailbox::new(Some(from_name), parse_address(&self.from)?))
            .subject(subject)
            .message_id(Some(format!("<{}@{}>", message_id(), self.client_host)))
            .raw_header(raw("Auto-Submitted", "auto-generated"))
            .raw_header(raw("X-Pullpilot-Event", msg.event.kind.as_str()));
        for to in &self.to {
            builder = builder.to(Mailbox::new(None, parse_address(to)?));
        }
        let mut encodings = vec![ContentTransferEncoding::SevenBit];
        if eight_bit {
            encodings.push(ContentTransferEncoding::EightBit);
        }
        encodings.push(ContentTransferEncoding::Base64);
        let body = encodings
            .into_iter()
            .find_map(|encoding| Body::new_with_encoding(msg.body.clone(), encoding).ok())
            .ok_or("the message body cannot be encoded")?;
        let part = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(body);
        let mut message = builder
            .singlepart(part)
            .map_err(|e| format!("building the message: {e}"))?;
        // The time as rendered for the configured zone, not lettre's UTC "now".
        message
            .headers_mut()
            .insert_raw(raw("Date", &msg.time.rfc5322));
        Ok(message.formatted())
    }
}

/// The trust roots for SMTP's TLS, the same as `roots::tls_client_config`: the system CA
/// bundle (certificates rustls cannot parse are skipped), else the compiled-in Mozilla roots;
/// plus `extra` roots (tests).
pub(crate) struct Trust {
    ders: Vec<Vec<u8>>,
    mozilla: bool,
}

impl Trust {
    pub(crate) fn new(extra: &[Vec<u8>]) -> Result<Trust, String> {
        let parses = |der: &Vec<u8>| {
            rustls::RootCertStore::empty()
                .add(rustls::pki_types::CertificateDer::from(der.as_slice()))
                .map_err(|e| format!("extra TLS root: {e}"))
        };
        for der in extra {
            parses(der)?;
        }
        let system = crate::tls::system_ders();
        let mut ders: Vec<Vec<u8>> = system
            .unwrap_or_default()
            .iter()
            .filter(|der| parses(der).is_ok())
            .cloned()
            .collect();
        ders.extend(extra.iter().cloned());
        Ok(Trust {
            ders,
            mozilla: system.is_none(),
        })
    }

    fn parameters(&self, host: &str) -> Result<TlsParameters, String> {
        let store = if self.mozilla {
            CertificateStore::WebpkiRoots
        } else {
            CertificateStore::None
        };
        let mut builder = TlsParameters::builder(host.to_string()).certificate_store(store);
        for der in &self.ders {
            let cert = Certificate::from_der(der.clone()).map_err(|e| format!("TLS: {e}"))?;
            builder = builder.add_root_certificate(cert);
        }
        builder.build_rustls().map_err(|e| format!("TLS: {e}"))
    }
}

fn parse_address(text: &str) -> Result<Address, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a plain e-mail address"))
}

/// Control characters (a newline would start a new header) become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// 24 random hex digits for the Message-ID.
fn message_id() -> String {
    let mut bytes = [0u8; 12];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    bytes.iter().fold(String::new(), |mut out, b| {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Bounds the next command's reads and writes by the time left.
fn arm(conn: &mut SmtpConnection, deadline: Instant) -> Result<(), String> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err("no answer before the timeout".into());
    }
    conn.set_timeout(Some(remaining)).map_err(|e| e.to_string())
}

/// A lettre error as a plain sentence; socket timeouts say so.
fn failed(what: &str, e: &lettre::transport::smtp::Error) -> String {
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        {
            return format!("{what}: no answer before the timeout");
        }
        source = inner.source();
    }
    format!("{what}: {e}")
}

/// Resolves (in a helper thread, so a slow resolver cannot outlast the deadline), connects,
/// reads the greeting and says EHLO, each address bounded by the time left.
fn connect(
    host: &str,
    port: u16,
    hello: &ClientId,
    implicit_tls: Option<&TlsParameters>,
    deadline: Instant,
) -> Result<SmtpConnection, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let target = (host.to_string(), port);
    std::thread::spawn(move || {
        let _ = tx.send(target.to_socket_addrs().map(Iterator::collect::<Vec<_>>));
    });
    let remaining = deadline.saturating_duration_since(Instant::now());
    let addrs = rx
        .recv_timeout(remaining)
        .map_err(|_| format!("looking up {host}: no answer before the timeout"))?
        .map_err(|e| format!("looking up {host}: {e}"))?;
    let mut last = format!("looking up {host}: no addresses");
    for addr in addrs {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(format!("connecting to {host}:{port}: timed out"));
        }
        match SmtpConnection::connect(addr, Some(remaining), hello, implicit_tls, None) {
            Ok(conn) => return Ok(conn),
            Err(e) => last = failed(&format!("connecting to {addr}"), &e),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use lettre::message::Mailboxes;

    use super::super::url;
    use super::*;

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    fn parsed(text: &str) -> Result<Smtp, String> {
        parse(&url::parse(text)?).map(|(s, _)| s)
    }

    #[test]
    fn valid_urls() {
        let s = parsed(
                "smtp://user:pa%24s@mail.example.com:587/?fromAddress=pp@example.com&toAddresses=a+tag@example.com,b@example.com&fromName=Watchtower&auth=Plain&subject=Hi&startTls=Yes&useHTML=No",
            )
            .unwrap();
        assert_eq!((s.host.as_str(), s.port), ("mail.example.com", 587));
        assert_eq!(s.password.as_deref(), Some("pa$s"));
        assert_eq!(s.to, ["a+tag@example.com", "b@example.com"]);
        assert_eq!(
            (s.auth, s.encryption, s.starttls),
            (Auth::Plain, Encryption::Auto, true)
        );
        assert_eq!(s.subject.as_deref(), Some("Hi"));
        let s = parsed("smtp://mail.example.com/?from=a@b.c&to=d@e.f").unwrap();
        assert_eq!((s.port, s.auth, s.user.as_deref()), (25, Auth::Auto, None));
        assert!(!s.implicit_tls());
        let s = parsed("smtp://u:p@smtp.gmail.com:465/?from=a@b.c&to=d@e.f").unwrap();
        assert!(s.implicit_tls());
        let s =
            parsed("smtp://[::1]:2525/?from=a@b.c&to=d@e.f&encryption=none&auth=login").unwrap();
        assert_eq!(
            (s.host.as_str(), s.encryption, s.auth),
            ("::1", Encryption::None, Auth::Login)
        );
        let s = parsed("smtp://h:25?from=a@b.c&to=d@e.f&encryption=ImplicitTLS&title=T").unwrap();
        assert!(s.implicit_tls());
        assert_eq!(s.subject.as_deref(), Some("T"));
    }

    #[test]
    fn invalid_urls_say_why() {
        let cases = [
            ("smtp://h/?to=d@e.f", "`from` is missing"),
            ("smtp://h/?from=a@b.c", "`to` is missing"),
            ("smtp://h/?from=a@b.c&to=,", "`to` is missing"),
            ("smtp://h/?from=nobody&to=d@e.f", "plain e-mail address"),
            (
                "smtp://h/?from=a@b.c&to=d@e.f%0ARCPT",
                "plain e-mail address",
            ),
            (
                "smtp://h/?from=a@b.c&to=d@e.f&auth=CRAMMD5",
                "not supported",
            ),
            ("smtp://h/?from=a@b.c&to=d@e.f&auth=magic", "option `auth`"),
            (
                "smtp://h/?from=a@b.c&to=d@e.f&encryption=ssl",
                "option `encryption`",
            ),
            ("smtp://h/?from=a@b.c&to=d@e.f&starttls=perhaps", "starttls"),
            (
                "smtp://h/?from=a@b.c&to=d@e.f&subject=a%0D%0ABcc:x",
                "control",
            ),
            (
                "smtp://h/?from=a@b.c&to=d@e.f&clienthost=a%20b",
                "clienthost",
            ),
            ("smtp://h/?from=a@b.c&to=d@e.f&auth=oauth2", "OAuth2"),
            (
                "smtp://h/?from=a@b.c&to=d@e.f&cc=x@y.z",
                "unknown option `cc`",
            ),
            ("smtp://h/path?from=a@b.c&to=d@e.f", "no path"),
            ("smtp:///?from=a@b.c&to=d@e.f", "host is missing"),
        ];
        for (input, want) in cases {
            let err = parsed(input)
                .err()
                .unwrap_or_else(|| panic!("{input} parsed"));
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    /// The message lettre builds for a sample event (its text replaced by `text` if given).
    fn formatted(s: &Smtp, text: Option<&str>, eight_bit: bool) -> String {
        let mut ev = crate::notify::tests::sample_event(crate::notify::EventKind::Failed);
        if let Some(text) = text {
            ev.message = text.into();
        }
        let msg = crate::notify::message::render(&ev, &jiff::tz::TimeZone::UTC);
        String::from_utf8(s.message(&msg, eight_bit).unwrap()).unwrap()
    }

    /// One header's value as sent, folding (`\r\n ` continuation lines) kept.
    fn header(text: &str, name: &str) -> String {
        let start = text
            .find(&format!("{name}: "))
            .unwrap_or_else(|| panic!("{name} in {text}"));
        let value = &text[start + name.len() + 2..];
        let mut end = 0;
        while let Some(i) = value[end..].find("\r\n") {
            end += i;
            if !value[end + 2..].starts_with(' ') {
                break;
            }
            end += 2;
        }
        value[..end].to_string()
    }

    /// What a mail reader shows for a header value: unfolded, RFC 2047 words decoded, and
    /// the space between two adjacent encoded words dropped (test helper).
    fn decode_words(value: &str) -> String {
        let mut out = String::new();
        let mut previous_encoded = None;
        for token in value.replace("\r\n ", " ").split(' ') {
            let word = token
                .strip_prefix("=?utf-8?b?")
                .or_else(|| token.strip_prefix("=?UTF-8?B?"))
                .and_then(|t| t.strip_suffix("?="));
            if previous_encoded.is_some() && !(word.is_some() && previous_encoded == Some(true)) {
                out.push(' ');
            }
            match word {
                Some(b64) => out.push_str(&String::from_utf8(B64.decode(b64).unwrap()).unwrap()),
                None => out.push_str(token),
            }
            previous_encoded = Some(word.is_some());
        }
        out
    }

    #[test]
    fn message_headers_and_body() {
        let s = parsed(
            "smtp://h/?from=pp@example.com&to=a@example.com,b@example.com&fromname=Pull+Pilot",
        )
        .unwrap();
        let text = formatted(&s, Some(".hidden dot line\nsecond"), true);
        // lettre quotes a display name with a space; readers show the same `Pull Pilot`.
        assert!(
            text.contains("From: \"Pull Pilot\" <pp@example.com>\r\n"),
            "{text}"
        );
        assert!(text.contains("To: a@example.com, b@example.com\r\n"));
        assert!(text.contains("Subject: pullpilot: update failed for shop/web\r\n"));
        assert!(text.contains("Date: Wed, 1 Jan 2025 00:00:00 +0000\r\n"));
        assert!(
            text.contains("Content-Transfer-Encoding: 8bit\r\n"),
            "{text}"
        );
        assert!(text.contains("Auto-Submitted: auto-generated\r\n"));
        assert!(text.contains("X-Pullpilot-Event: failed\r\n"));
        // Line ends are CRLF; the dot is stuffed on the wire (see the loopback test).
        assert!(
            text.contains("\r\n\r\n.hidden dot line\r\nsecond"),
            "{text}"
        );
        // Without 8BITMIME the non-ASCII body (the digest arrow) goes out as base64.
        let text = formatted(&s, None, false);
        assert!(text.contains("Content-Transfer-Encoding: base64\r\n"));
        let body: String = text.split("\r\n\r\n").nth(1).unwrap().lines().collect();
        let decoded = String::from_utf8(B64.decode(body).unwrap()).unwrap();
        assert!(
            decoded.contains("Digest: 0123456789ab → fedcba987654"),
            "{decoded}"
        );
    }

    #[test]
    fn encoded_words() {
        let long = "é".repeat(40);
        let s = parsed(&format!(
            "smtp://h/?from=a@b.c&to=d@e.f&subject={}",
            url::percent_encode(&long)
        ))
        .unwrap();
        let text = formatted(&s, None, true);
        let e = header(&text, "Subject");
        assert!(e.starts_with("=?utf-8?b?") && e.contains("\r\n "), "{e}");
        assert_eq!(decode_words(&e), long);
        assert!(e.split("\r\n ").all(|w| w.len() <= 75), "{e}");
    }

    #[test]
    fn issue_12_display_names_are_quoted_or_encoded() {
        for (name, want) in [
            ("Pull Pilot", "\"Pull Pilot\""),
            (r#"Say "hi" \ bye"#, r#""Say \"hi\" \\ bye""#),
            // Specials and non-ASCII become one encoded word: one address, never two.
            ("Acme, Inc.", "=?utf-8?b?QWNtZSwgSW5jLg==?="),
            ("ops@acme <team>", "=?utf-8?b?b3BzQGFjbWUgPHRlYW0+?="),
            ("Ünïcode, GmbH", "=?utf-8?b?w5xuw69jb2RlLCBHbWJI?="),
        ] {
            let s = parsed(&format!(
                "smtp://h/?from=pp@example.com&to=a@example.com&fromname={}",
                url::percent_encode(name)
            ))
            .unwrap();
            let from = header(&formatted(&s, None, true), "From");
            assert_eq!(from, format!("{want} <pp@example.com>"), "{name}");
            assert_eq!(from.parse::<Mailboxes>().unwrap().into_iter().count(), 1);
            let shown = decode_words(from.trim_end_matches(" <pp@example.com>"));
            assert_eq!(
                shown.trim_matches('"').replace('\\', ""),
                name.replace('\\', "")
            );
        }
        let long = "Ärger & Söhne Maschinenbau, Zweigniederlassung Süd";
        let s = parsed(&format!(
            "smtp://h/?from=pp@example.com&to=a@example.com&fromname={}",
            url::percent_encode(long)
        ))
        .unwrap();
        let text = formatted(&s, None, true);
        let from = header(&text, "From");
        let encoded = from.trim_end_matches(" <pp@example.com>");
        assert!(encoded.split("\r\n ").all(|w| w.len() <= 75), "{encoded}");
        assert_eq!(decode_words(encoded), long);
        assert!(
            format!("From: {from}").split("\r\n").all(|l| l.len() <= 78),
            "{from}"
        );
        let unfolded = from.replace("\r\n ", " ");
        assert_eq!(
            unfolded.parse::<Mailboxes>().unwrap().into_iter().count(),
            1
        );
    }

    #[test]
    fn issue_12_subjects_stay_one_header_and_encode_non_ascii() {
        let subject_of = |subject: &str| {
            let s = parsed(&format!(
                "smtp://h/?from=a@b.c&to=d@e.f&subject={}",
                url::percent_encode(subject)
            ));
            // The URL refuses control characters; a title from an event may still hold them.
            let (s, title) = match s {
                Ok(s) => (s, None),
                Err(_) => (
                    parsed("smtp://h/?from=a@b.c&to=d@e.f").unwrap(),
                    Some(subject),
                ),
            };
            let ev = crate::notify::tests::sample_event(crate::notify::EventKind::Failed);
            let mut msg = crate::notify::message::render(&ev, &jiff::tz::TimeZone::UTC);
            if let Some(title) = title {
                msg.title = title.into();
            }
            let text = String::from_utf8(s.message(&msg, true).unwrap()).unwrap();
            (header(&text, "Subject"), text)
        };
        assert_eq!(subject_of("update failed").0, "update failed");
        let (value, text) = subject_of("a\r\nBcc: x@y.z");
        assert_eq!(value, "a  Bcc: x@y.z");
        assert!(!text.contains("\r\nBcc:"), "{text}");
        let subject = "Mise à jour échouée pour shop/web, ça recommence demain matin";
        let encoded = subject_of(subject).0;
        assert_eq!(decode_words(&encoded), subject);
        assert!(
            format!("Subject: {encoded}")
                .split("\r\n")
                .all(|line| line.len() <= 76),
            "{encoded}"
        );
    }

    #[test]
    fn a_password_is_never_sent_unencrypted_to_a_remote_host() {
        use crate::notify::testserver::{SinkTls, SmtpSink};
        for extra in ["", "&encryption=none", "&starttls=no", "&auth=login"] {
            let sink = SmtpSink::start(SinkTls::None, &[]);
            // A remote host name; the connection itself goes to the loopback sink.
            let s = parsed(&format!(
                "smtp://u:s3cret@mail.example.com:25/?from=a@b.c&to=d@e.f{extra}"
            ))
            .unwrap();
            let deadline = Instant::now() + std::time::Duration::from_secs(5);
            let hello = ClientId::Domain("localhost".into());
            let mut conn = connect("127.0.0.1", sink.port, &hello, None, deadline).unwrap();
            let ev = crate::notify::tests::sample_event(crate::notify::EventKind::Failed);
            let msg = crate::notify::message::render(&ev, &jiff::tz::TimeZone::UTC);
            let no_tls = || Err("no TLS in this test".to_string());
            let err = s
                .session(&mut conn, &msg, no_tls, &hello, deadline)
                .unwrap_err();
            assert!(
                err.contains("refusing to send the password unencrypted"),
                "{extra}: {err}"
            );
            drop(conn);
            let session = &sink.sessions()[0];
            assert!(
                session.auth.is_empty() && session.rcpt.is_empty(),
                "{extra}"
            );
        }
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("localhost") && is_loopback("127.0.0.2") && is_loopback("::1"));
        assert!(!is_loopback("mail.example.com") && !is_loopback("10.0.0.1"));
    }
}
