//! E-mail over SMTP: shoutrrr's `smtp://` URL, and a minimal client over `std::net::TcpStream`
//! (EHLO, STARTTLS or implicit TLS through rustls, AUTH PLAIN / LOGIN / XOAUTH2, MAIL FROM,
//! RCPT TO, DATA, QUIT). Every read and write is bounded by the target's deadline. A password
//! is never sent over an unencrypted connection except to a loopback address (as Go's
//! `net/smtp`, which shoutrrr uses, also refuses).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use sha2::Digest as _;

use super::message::Rendered;
use super::url::ParsedUrl;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

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
            .any(|c| c.is_control() || c.is_whitespace() || "<>,;\"".contains(c));
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
    /// Whether any TLS may be needed (so the notifier builds a TLS configuration).
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
        tls: Option<&Arc<rustls::ClientConfig>>,
        deadline: Instant,
    ) -> Result<(), String> {
        let tls_config = || {
            tls.cloned()
                .ok_or_else(|| "TLS is not available".to_string())
        };
        let tcp = connect(&self.host, self.port, deadline)?;
        let mut s = Session::new(tcp, deadline);
        if self.implicit_tls() {
            s = s.upgrade(tls_config()?, &self.host)?;
        }
        s.expect_reply("greeting", &[220])?;
        let mut ext = s.ehlo(&self.client_host)?;
        if !s.tls && self.encryption != Encryption::None && self.starttls {
            if ext.iter().any(|l| l.eq_ignore_ascii_case("STARTTLS")) {
                s.command("STARTTLS", "STARTTLS", &[220])?;
                s = s.upgrade(tls_config()?, &self.host)?;
                ext = s.ehlo(&self.client_host)?;
            } else if self.encryption == Encryption::ExplicitTls {
                return Err("the server does not offer STARTTLS (encryption=ExplicitTLS)".into());
            } else if !is_loopback(&self.host) {
                log::warn!(
                    "E-mail to {} goes unencrypted: the server offers no STARTTLS.",
                    self.host
                );
            }
        } else if !s.tls && self.encryption == Encryption::ExplicitTls {
            return Err("encryption=ExplicitTLS needs STARTTLS, but starttls=no".into());
        }
        self.authenticate(&mut s, &ext)?;
        let eight_bit = ext.iter().any(|l| l.eq_ignore_ascii_case("8BITMIME"));
        let body_param = if eight_bit { " BODY=8BITMIME" } else { "" };
        s.command(
            &format!("MAIL FROM:<{}>{body_param}", self.from),
            "MAIL FROM",
            &[250],
        )?;
        let mut refused = Vec::new();
        for (i, to) in self.to.iter().enumerate() {
            if let Err(e) = s.command(&format!("RCPT TO:<{to}>"), "RCPT TO", &[250, 251]) {
                refused.push(format!("recipient {} of {}: {e}", i + 1, self.to.len()));
            }
        }
        if refused.len() == self.to.len() {
            let _ = s.command("QUIT", "QUIT", &[221]);
            return Err(refused.join("; "));
        }
        s.command("DATA", "DATA", &[354])?;
        let data = self.message(msg, eight_bit);
        s.write(&data)?;
        s.expect_reply("the message", &[250])?;
        let _ = s.command("QUIT", "QUIT", &[221]);
        if refused.is_empty() {
            Ok(())
        } else {
            Err(format!("sent, but refused {}", refused.join("; ")))
        }
    }

    fn authenticate(&self, s: &mut Session, ext: &[String]) -> Result<(), String> {
        let Some(user) = &self.user else {
            return Ok(());
        };
        if self.auth == Auth::None {
            return Ok(());
        }
        if !s.tls && !is_loopback(&self.host) {
            return Err(format!(
                "refusing to send the password unencrypted to {} (no STARTTLS); use port 465, \
                 encryption=ImplicitTLS or a server that offers STARTTLS",
                self.host
            ));
        }
        let offered: Vec<String> = ext
            .iter()
            .filter_map(|l| l.strip_prefix("AUTH ").or_else(|| l.strip_prefix("AUTH=")))
            .flat_map(|m| m.split_whitespace().map(str::to_ascii_uppercase))
            .collect();
        let mechanism = match self.auth {
            Auth::Auto if offered.iter().any(|m| m == "PLAIN") => Auth::Plain,
            Auth::Auto if offered.iter().any(|m| m == "LOGIN") => Auth::Login,
            Auth::Auto if offered.is_empty() => {
                return Err("the server offers no AUTH, but the URL has a user name".into());
            }
            Auth::Auto => return Err("the server offers neither AUTH PLAIN nor LOGIN".into()),
            other => other,
        };
        let password = self.password.as_deref().unwrap_or_default();
        match mechanism {
            Auth::Plain => {
                let token = B64.encode(format!("\0{user}\0{password}"));
                s.command(&format!("AUTH PLAIN {token}"), "AUTH", &[235])?;
            }
            Auth::Login => {
                s.command("AUTH LOGIN", "AUTH", &[334])?;
                s.command(&B64.encode(user), "AUTH", &[334])?;
                s.command(&B64.encode(password), "AUTH", &[235])?;
            }
            Auth::OAuth2 => {
                let token = B64.encode(format!("user={user}\x01auth=Bearer {password}\x01\x01"));
                s.command(&format!("AUTH XOAUTH2 {token}"), "AUTH", &[235])?;
            }
            Auth::Auto | Auth::None => unreachable!("resolved above"),
        }
        Ok(())
    }

    /// The message as sent after DATA: headers, body, dot-stuffed, CRLF, ending in `.`.
    fn message(&self, msg: &Rendered<'_>, eight_bit: bool) -> Vec<u8> {
        let subject = self.subject.as_deref().unwrap_or(&msg.title);
        let from_name = self.from_name.as_deref().unwrap_or("pullpilot");
        let long_line = msg.body.lines().any(|l| l.len() > 900);
        let (encoding, body) = if msg.body.is_ascii() && !long_line {
            ("7bit", msg.body.clone())
        } else if eight_bit && !long_line {
            ("8bit", msg.body.clone())
        } else {
            let b64 = B64.encode(&msg.body);
            let lines: Vec<&str> = b64
                .as_bytes()
                .chunks(76)
                .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
                .collect();
            ("base64", lines.join("\n"))
        };
        let headers = [
            ("Date", msg.time.rfc5322.clone()),
            (
                "From",
                format!("{} <{}>", display_name(from_name), self.from),
            ),
            ("To", self.to.join(", ")),
            ("Subject", unstructured(subject)),
            (
                "Message-ID",
                format!("<{}@{}>", message_id(), self.client_host),
            ),
            ("MIME-Version", "1.0".into()),
            ("Content-Type", "text/plain; charset=utf-8".into()),
            ("Content-Transfer-Encoding", encoding.into()),
            ("Auto-Submitted", "auto-generated".into()),
            ("X-Pullpilot-Event", msg.event.kind.as_str().into()),
        ];
        let mut out = String::new();
        for (name, value) in headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(&value);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        for line in body.lines() {
            if line.starts_with('.') {
                out.push('.');
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str(".\r\n");
        out.into_bytes()
    }
}

/// A display name as RFC 5322 allows it before `<address>`: as is when it is plain words
/// (atoms), a quoted-string (with `"` and `\` escaped) when ASCII with specials such as the
/// comma in `Acme, Inc.` (which would otherwise make two addresses), and RFC 2047 encoded
/// words when it is not ASCII.
fn display_name(name: &str) -> String {
    let name = one_line(name);
    if !name.is_ascii() || name.contains("=?") {
        return encode_words(&name);
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if name
        .split(' ')
        .all(|w| !w.is_empty() && w.chars().all(atext))
    {
        return name;
    }
    let mut quoted = String::from('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Unstructured header text (the subject): one line, encoded words when not plain ASCII (or
/// when it looks like an encoded word, or is too long for one line).
fn unstructured(text: &str) -> String {
    let text = one_line(text);
    if text.is_ascii() && !text.contains("=?") && text.len() <= 900 {
        text
    } else {
        encode_words(&text)
    }
}

/// Control characters (a newline would start a new header) become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// RFC 2047 encoded words (UTF-8, base64), each at most 64 characters (39 bytes of text, whole
/// characters only) so that even `Subject: ` and the first word fit in 76, folded between
/// words.
fn encode_words(text: &str) -> String {
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 39 {
            words.push(format!("=?UTF-8?B?{}?=", B64.encode(&chunk)));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", B64.encode(&chunk)));
    }
    words.join("\r\n ")
}

fn message_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{nanos}.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let hash = sha2::Sha256::digest(seed.as_bytes());
    hash[..12].iter().fold(String::new(), |mut out, b| {
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

/// Resolves (in a helper thread, so a slow resolver cannot outlast the deadline) and connects.
fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, String> {
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
        match TcpStream::connect_timeout(&addr, remaining) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = format!("connecting to {addr}: {e}"),
        }
    }
    Err(last)
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(t) => t,
            Stream::Tls(t) => &t.sock,
        }
    }
}

struct Session {
    stream: Stream,
    buf: Vec<u8>,
    deadline: Instant,
    tls: bool,
}

impl Session {
    fn new(tcp: TcpStream, deadline: Instant) -> Session {
        Session {
            stream: Stream::Plain(tcp),
            buf: Vec::new(),
            deadline,
            tls: false,
        }
    }

    /// Wraps the connection in TLS (the handshake runs on the next read or write).
    fn upgrade(self, config: Arc<rustls::ClientConfig>, host: &str) -> Result<Session, String> {
        if !self.buf.is_empty() {
            return Err("the server sent data before the TLS handshake".into());
        }
        let Stream::Plain(tcp) = self.stream else {
            return Err("TLS is already on".into());
        };
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| format!("{host} is not a valid TLS server name"))?;
        let conn = rustls::ClientConnection::new(config, name).map_err(|e| format!("TLS: {e}"))?;
        Ok(Session {
            stream: Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))),
            buf: Vec::new(),
            deadline: self.deadline,
            tls: true,
        })
    }

    /// Bounds the next socket operation by the time left.
    fn arm(&self) -> Result<(), String> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err("no answer before the timeout".into());
        }
        let tcp = self.stream.tcp();
        tcp.set_read_timeout(Some(remaining))
            .and_then(|()| tcp.set_write_timeout(Some(remaining)))
            .map_err(|e| e.to_string())
    }

    fn io_error(e: &std::io::Error) -> String {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                "no answer before the timeout".into()
            }
            _ => e.to_string(),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        self.arm()?;
        let result = match &mut self.stream {
            Stream::Plain(t) => t.write_all(data).and_then(|()| t.flush()),
            Stream::Tls(t) => t.write_all(data).and_then(|()| t.flush()),
        };
        result.map_err(|e| Self::io_error(&e))
    }

    fn read_line(&mut self) -> Result<String, String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
            }
            if self.buf.len() > 8192 {
                return Err("the server sent an overlong line".into());
            }
            self.arm()?;
            let mut chunk = [0u8; 4096];
            let n = match &mut self.stream {
                Stream::Plain(t) => t.read(&mut chunk),
                Stream::Tls(t) => t.read(&mut chunk),
            }
            .map_err(|e| Self::io_error(&e))?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// One (possibly multi-line) reply: its code and the text of each line.
    fn reply(&mut self) -> Result<(u16, Vec<String>), String> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line()?;
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| "the server's reply is not SMTP".to_string())?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or_default().to_string());
            if !more || lines.len() > 100 {
                return Ok((code, lines));
            }
        }
    }

    fn expect_reply(&mut self, what: &str, ok: &[u16]) -> Result<Vec<String>, String> {
        let (code, lines) = self.reply()?;
        if ok.contains(&code) {
            Ok(lines)
        } else {
            Err(format!("{what}: {code} {}", lines.join(" ")))
        }
    }

    fn command(&mut self, line: &str, what: &str, ok: &[u16]) -> Result<Vec<String>, String> {
        self.write(format!("{line}\r\n").as_bytes())?;
        self.expect_reply(what, ok)
    }

    /// EHLO (HELO when refused); the extension lines, without the greeting line.
    fn ehlo(&mut self, client_host: &str) -> Result<Vec<String>, String> {
        if let Ok(lines) = self.command(&format!("EHLO {client_host}"), "EHLO", &[250]) {
            Ok(lines.into_iter().skip(1).collect())
        } else {
            self.command(&format!("HELO {client_host}"), "HELO", &[250])?;
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::url;
    use super::*;

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

    #[test]
    fn message_headers_and_body() {
        let s = parsed(
            "smtp://h/?from=pp@example.com&to=a@example.com,b@example.com&fromname=Pull+Pilot",
        )
        .unwrap();
        let mut ev = crate::notify::tests::sample_event(crate::notify::EventKind::Failed);
        ev.message = ".hidden dot line\nsecond".into();
        let msg = crate::notify::message::render(&ev, &jiff::tz::TimeZone::UTC);
        let text = String::from_utf8(s.message(&msg, true)).unwrap();
        assert!(
            text.contains("From: Pull Pilot <pp@example.com>\r\n"),
            "{text}"
        );
        assert!(text.contains("To: a@example.com, b@example.com\r\n"));
        assert!(text.contains("Subject: pullpilot: update failed for shop/web\r\n"));
        assert!(text.contains("Date: Wed, 1 Jan 2025 00:00:00 +0000\r\n"));
        assert!(text.contains("Content-Transfer-Encoding: 8bit\r\n"));
        assert!(text.contains("\r\n\r\n..hidden dot line\r\nsecond\r\n"));
        assert!(text.ends_with("\r\n.\r\n"));
        // Without 8BITMIME the non-ASCII body (the digest arrow) goes out as base64.
        let text = String::from_utf8(s.message(&msg, false)).unwrap();
        assert!(text.contains("Content-Transfer-Encoding: base64\r\n"));
        let body: String = text
            .split("\r\n\r\n")
            .nth(1)
            .unwrap()
            .lines()
            .filter(|l| *l != ".")
            .collect();
        let decoded = String::from_utf8(B64.decode(body).unwrap()).unwrap();
        assert!(
            decoded.contains("Digest: 0123456789ab → fedcba987654"),
            "{decoded}"
        );
    }

    #[test]
    fn encoded_words() {
        let e = encode_words(&"é".repeat(40));
        assert!(e.starts_with("=?UTF-8?B?") && e.contains("\r\n "), "{e}");
        assert_eq!(decode_words(&e), "é".repeat(40));
        assert!(e.split("\r\n ").all(|w| w.len() <= 75), "{e}");
    }

    /// The text of a header value made of encoded words (test helper).
    fn decode_words(value: &str) -> String {
        value
            .split("\r\n ")
            .map(|w| {
                let b64 = w
                    .strip_prefix("=?UTF-8?B?")
                    .unwrap()
                    .strip_suffix("?=")
                    .unwrap();
                String::from_utf8(B64.decode(b64).unwrap()).unwrap()
            })
            .collect()
    }

    #[test]
    fn issue_12_display_names_are_quoted_or_encoded() {
        for (name, want) in [
            ("Pull Pilot", "Pull Pilot"),
            ("Acme, Inc.", "\"Acme, Inc.\""),
            (r#"Say "hi" \ bye"#, r#""Say \"hi\" \\ bye""#),
            ("ops@acme <team>", "\"ops@acme <team>\""),
            ("Ünïcode, GmbH", "=?UTF-8?B?w5xuw69jb2RlLCBHbWJI?="),
        ] {
            assert_eq!(display_name(name), want, "{name}");
        }
        let long = "Ärger & Söhne Maschinenbau, Zweigniederlassung Süd";
        let encoded = display_name(long);
        assert!(encoded.split("\r\n ").all(|w| w.len() <= 75), "{encoded}");
        assert_eq!(decode_words(&encoded), long);
        // Through the URL and into the message: one From address, not two.
        let s =
            parsed("smtp://h/?from=pp@example.com&to=a@example.com&fromname=Acme,+Inc.").unwrap();
        let ev = crate::notify::tests::sample_event(crate::notify::EventKind::Failed);
        let msg = crate::notify::message::render(&ev, &jiff::tz::TimeZone::UTC);
        let text = String::from_utf8(s.message(&msg, true)).unwrap();
        assert!(
            text.contains("From: \"Acme, Inc.\" <pp@example.com>\r\n"),
            "{text}"
        );
    }

    #[test]
    fn issue_12_subjects_stay_one_header_and_encode_non_ascii() {
        assert_eq!(unstructured("update failed"), "update failed");
        assert_eq!(unstructured("a\r\nBcc: x@y.z"), "a  Bcc: x@y.z");
        let subject = "Mise à jour échouée pour shop/web, ça recommence demain matin";
        let encoded = unstructured(subject);
        assert_eq!(decode_words(&encoded), subject);
        assert!(
            format!("Subject: {encoded}")
                .split("\r\n")
                .all(|line| line.len() <= 76),
            "{encoded}"
        );
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("localhost") && is_loopback("127.0.0.2") && is_loopback("::1"));
        assert!(!is_loopback("mail.example.com") && !is_loopback("10.0.0.1"));
    }
}
