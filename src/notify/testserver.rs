//! Test-only loopback servers on `127.0.0.1:0`: an HTTP/1.1 recorder with a scripted answer, a
//! server that accepts and never answers, and an SMTP sink (optionally with STARTTLS or
//! implicit TLS) that records the envelope and the message. Threads live until the test
//! process ends.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

/// The test CA (self-signed, valid 2000–2100) that signed [`LEAF_PEM`].
pub(crate) const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBazCCARGgAwIBAgIBATAKBggqhkjOPQQDAjAcMRowGAYDVQQDDBFwdWxscGls
b3QgdGVzdCBDQTAgFw0wMDAxMDEwMDAwMDBaGA8yMTAwMDEwMTAwMDAwMFowHDEa
MBgGA1UEAwwRcHVsbHBpbG90IHRlc3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMB
BwNCAARZMNIM5Lx8QnjN4N39I+vrhb4FsqcVwM9kSg3dHUhr2AW9fYBeQwFrAqWs
VAihsw4Dt6LFjdZlc42y5NB4Bl//o0IwQDAPBgNVHRMBAf8EBTADAQH/MA4GA1Ud
DwEB/wQEAwIBBjAdBgNVHQ4EFgQU6jEeoCI1i9a9/X/XDxFdYpQP0z4wCgYIKoZI
zj0EAwIDSAAwRQIhAJwelluglXmpn2jpGKAlcpgOVQOIa8M3alkDbH7jK6b9AiBU
P9Se6fJJW2ywQsHclbe+RkpTIE6SfzBwzZaq/2NE6Q==
-----END CERTIFICATE-----
";
/// `localhost` / `127.0.0.1`, signed by [`CA_PEM`].
const LEAF_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBszCCAVqgAwIBAgIBAjAKBggqhkjOPQQDAjAcMRowGAYDVQQDDBFwdWxscGls
b3QgdGVzdCBDQTAgFw0wMDAxMDEwMDAwMDBaGA8yMTAwMDEwMTAwMDAwMFowFDES
MBAGA1UEAwwJbG9jYWxob3N0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE3s1Q
ldWk9zv1AR/EMyqvQqLZQwmC5Ddx8XwwBGtKpd+5yE9dLYjT2LeC76H9V1GkoBUC
+EHJktA8T3zSanDH7KOBkjCBjzAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEw
DAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUH
AwEwHwYDVR0jBBgwFoAU6jEeoCI1i9a9/X/XDxFdYpQP0z4wHQYDVR0OBBYEFCUB
esgXUQmjZ0L0bBRRqkiQcp1kMAoGCCqGSM49BAMCA0cAMEQCIBFFHtR/imvidV4+
UCuLyuHxq/h/LlxQH8OOWQuVLcfeAiBkvvFpx/mhAowRdyQWfV/3quAFGqiTd7zs
IYUOg1Y2Xw==
-----END CERTIFICATE-----
";
/// The leaf's P-256 key (PKCS#8). A test key for a test certificate; it protects nothing.
const LEAF_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOZjlavs6A156buOK
4oAg8sBRiJ1+/8LuCkfZ7r8cXwKhRANCAATezVCV1aT3O/UBH8QzKq9CotlDCYLk
N3HxfDAEa0ql37nIT10tiNPYt4Lvof1XUaSgFQL4QcmS0DxPfNJqcMfs
-----END PRIVATE KEY-----
";

fn pem_der(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("test PEM")
}

pub(crate) fn ca_der() -> Vec<u8> {
    pem_der(CA_PEM)
}

fn server_tls() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(pem_der(LEAF_PEM))],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pem_der(LEAF_KEY_PEM))),
        )
        .unwrap();
    Arc::new(config)
}

pub(crate) use crate::testhttp::Recorded;
use crate::testhttp::{read_request, respond};

pub(crate) struct HttpServer {
    pub(crate) base: String,
    pub(crate) port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl HttpServer {
    /// Answers every request with `status` and `body`.
    pub(crate) fn start(status: u16, body: &'static str) -> HttpServer {
        HttpServer::answering(&[status], body)
    }

    /// Answers the requests with `statuses` in turn, then with the last one; always `body`.
    pub(crate) fn answering(statuses: &[u16], body: &'static str) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let statuses = statuses.to_vec();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().flatten().enumerate() {
                let log = Arc::clone(&log);
                let status = statuses[n.min(statuses.len() - 1)];
                std::thread::spawn(move || serve_http(&stream, status, body, &log));
            }
        });
        HttpServer {
            base: format!("http://127.0.0.1:{port}"),
            port,
            requests,
        }
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve_http(stream: &TcpStream, status: u16, body: &str, log: &Mutex<Vec<Recorded>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Some(request) = read_request(stream) else {
        return;
    };
    log.lock().unwrap().push(request);
    let headers = [("Content-Type".to_owned(), "text/plain".to_owned())];
    respond(stream, status, &headers, body.as_bytes(), false);
}

/// Accepts connections and never answers; returns the port.
pub(crate) fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SinkTls {
    None,
    StartTls,
    Implicit,
}

/// What one SMTP session carried.
#[derive(Clone, Debug, Default)]
pub(crate) struct SinkSession {
    pub(crate) ehlo: Vec<String>,
    pub(crate) tls: bool,
    /// `user:password` per successful AUTH, with the mechanism: `PLAIN user:pass`.
    pub(crate) auth: Vec<String>,
    pub(crate) mail_from: String,
    pub(crate) rcpt: Vec<String>,
    /// The DATA lines as received (still dot-stuffed), CRLF-joined.
    pub(crate) data: String,
    pub(crate) quit: bool,
}

pub(crate) struct SmtpSink {
    pub(crate) port: u16,
    sessions: Arc<Mutex<Vec<SinkSession>>>,
}

impl SmtpSink {
    /// `refuse` lists recipients to answer 550.
    pub(crate) fn start(tls: SinkTls, refuse: &[&str]) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&sessions);
        let refuse: Vec<String> = refuse.iter().map(|s| (*s).to_string()).collect();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, refuse) = (Arc::clone(&log), refuse.clone());
                std::thread::spawn(move || {
                    let session = serve_smtp(stream, tls, &refuse);
                    log.lock().unwrap().push(session);
                });
            }
        });
        SmtpSink { port, sessions }
    }

    /// The finished sessions, waiting (up to 5 s) for at least one to finish: the client may
    /// be done before the sink's thread has recorded its session.
    pub(crate) fn sessions(&self) -> Vec<SinkSession> {
        let until = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let sessions = self.sessions.lock().unwrap().clone();
            if !sessions.is_empty() || std::time::Instant::now() > until {
                return sessions;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

enum SinkConn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
    Gone,
}

impl SinkConn {
    fn tls(tcp: TcpStream) -> SinkConn {
        let server = rustls::ServerConnection::new(server_tls()).unwrap();
        SinkConn::Tls(Box::new(rustls::StreamOwned::new(server, tcp)))
    }

    fn read_line(&mut self) -> Option<String> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            let n = match self {
                SinkConn::Plain(t) => t.read(&mut byte),
                SinkConn::Tls(t) => t.read(&mut byte),
                SinkConn::Gone => return None,
            }
            .ok()?;
            if n == 0 {
                return None;
            }
            if byte[0] == b'\n' {
                return Some(
                    String::from_utf8_lossy(&line)
                        .trim_end_matches('\r')
                        .to_string(),
                );
            }
            line.push(byte[0]);
        }
    }

    fn say(&mut self, text: &str) {
        let data = format!("{text}\r\n");
        let _ = match self {
            SinkConn::Plain(t) => t.write_all(data.as_bytes()),
            SinkConn::Tls(t) => t.write_all(data.as_bytes()).and_then(|()| t.flush()),
            SinkConn::Gone => Ok(()),
        };
    }
}

fn decode(b64: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn serve_smtp(tcp: TcpStream, tls: SinkTls, refuse: &[String]) -> SinkSession {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let mut s = SinkSession::default();
    let mut conn = if tls == SinkTls::Implicit {
        s.tls = true;
        SinkConn::tls(tcp)
    } else {
        SinkConn::Plain(tcp)
    };
    conn.say("220 sink.test ESMTP ready");
    while let Some(line) = conn.read_line() {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO ") {
            s.ehlo.push(line[5..].to_string());
            conn.say("250-sink.test greets you");
            conn.say("250-8BITMIME");
            if tls == SinkTls::StartTls && !s.tls {
                conn.say("250-STARTTLS");
            }
            conn.say("250-AUTH PLAIN LOGIN");
            conn.say("250 SIZE 1000000");
        } else if upper == "STARTTLS" {
            conn.say("220 go ahead");
            let SinkConn::Plain(tcp) = std::mem::replace(&mut conn, SinkConn::Gone) else {
                break;
            };
            conn = SinkConn::tls(tcp);
            s.tls = true;
        } else if let Some(token) = upper.strip_prefix("AUTH PLAIN ").map(|_| &line[11..]) {
            let text = decode(token);
            let parts: Vec<&str> = text.split('\0').collect();
            s.auth.push(format!(
                "PLAIN {}:{}",
                parts.get(1).unwrap_or(&""),
                parts.get(2).unwrap_or(&"")
            ));
            conn.say("235 2.7.0 accepted");
        } else if upper == "AUTH LOGIN" {
            conn.say("334 VXNlcm5hbWU6");
            let user = decode(&conn.read_line().unwrap_or_default());
            conn.say("334 UGFzc3dvcmQ6");
            let pass = decode(&conn.read_line().unwrap_or_default());
            s.auth.push(format!("LOGIN {user}:{pass}"));
            conn.say("235 2.7.0 accepted");
        } else if upper.starts_with("MAIL FROM:") {
            s.mail_from = line[10..].to_string();
            conn.say("250 2.1.0 ok");
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = line[8..]
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string();
            if refuse.contains(&rcpt) {
                conn.say("550 5.1.1 no such user");
            } else {
                s.rcpt.push(rcpt);
                conn.say("250 2.1.5 ok");
            }
        } else if upper == "DATA" {
            conn.say("354 end with <CRLF>.<CRLF>");
            let mut lines = Vec::new();
            while let Some(l) = conn.read_line() {
                if l == "." {
                    break;
                }
                lines.push(l);
            }
            s.data = lines.join("\r\n");
            conn.say("250 2.0.0 queued");
        } else if upper == "QUIT" {
            s.quit = true;
            conn.say("221 bye");
            break;
        } else {
            conn.say("502 5.5.2 what?");
        }
    }
    s
}
