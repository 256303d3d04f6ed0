//! The relay connection: register once, keep one authenticated WebSocket, turn `poke` frames
//! into events, and reconnect with full-jitter backoff. Runs on its own thread; the main loop
//! decides what a poke leads to. (Over 500 lines: the session's states and their deadlines read
//! best as one loop.)
//!
//! Only a 404 to the listen upgrade means the relay forgot this host and makes it register
//! again; a close reason alone never does (the reference relay closes late auths with
//! `1008 unknown webhook` for webhooks it still knows, and a new registration would break the
//! poke URL the operator configured in CI).
//!
//! Everything the relay says reaches the log through [`clean`] (see `relay_text`) and poke
//! lines through a [`Throttle`], so a hostile relay can neither flood the log nor forge lines. `PP_WEBHOOK_URL`'s userinfo
//! (`https://user:pass@…`) is never logged.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use super::Wake;
use super::identity::{self, Registration};
use super::relay_text::{MAX_LOGGED_CHARS, Throttle, clean, clean_to, held_back};
use crate::webhook::protocol::{self, Frame, Identity};

/// How long connecting (TCP, TLS and the upgrade) may take, and the relay's `hello` and
/// `ready` each.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one write may take before the connection counts as dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A session that authenticated and lasted this long ended normally (relays recycle sockets):
/// the backoff starts over.
const STABLE_SESSION: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Heartbeat timings; tests shorten them.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timing {
    pub(super) ping_interval: Duration,
    pub(super) read_deadline: Duration,
}

pub(super) struct RelayClient {
    pub(super) base_url: String,
    pub(super) data_dir: PathBuf,
    pub(super) identity: Identity,
    pub(super) agent: ureq::Agent,
    pub(super) events: Sender<Wake>,
    pub(super) pokes: super::RelayPokes,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) timing: Timing,
}

/// Per-connection-loop log throttles.
struct Throttles {
    pokes: Throttle,
    frames: Throttle,
}

/// Checks `PP_WEBHOOK_URL` (already known to start with http:// or https://) for what the
/// connection needs: a host, a valid port, no query or fragment. The error says what is wrong.
pub(super) fn check_base_url(url: &str) -> Result<(), String> {
    // The settings cut trailing slashes, so "https://" arrives as "https:".
    let ws = if let Some(rest) = url.strip_prefix("https:") {
        format!("wss://{}", rest.trim_start_matches('/'))
    } else if let Some(rest) = url.strip_prefix("http:") {
        format!("ws://{}", rest.trim_start_matches('/'))
    } else {
        return Err("is not an http:// or https:// URL".into());
    };
    if url.contains(['?', '#']) {
        return Err("has a query or fragment; give the base URL only".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace".into());
    }
    let (_, host, port) = endpoint(&ws).map_err(|e| {
        let e = e.to_string();
        if e.contains("bad port") {
            "has a port that is not a number from 0 to 65535".to_string()
        } else if e.contains("no host") {
            "has no host name".to_string()
        } else {
            "is not a URL pullpilot can connect to".to_string()
        }
    })?;
    if port == 0 {
        return Err("has port 0".into());
    }
    if host.is_empty() {
        return Err("has no host name".into());
    }
    Ok(())
}

enum Ended {
    Shutdown,
    UnknownWebhook,
    Failed(anyhow::Error),
}

impl RelayClient {
    pub(super) fn spawn(self) -> std::thread::JoinHandle<()> {
        std::thread::Builder::new()
            .name("relay".into())
            .spawn(move || self.run())
            .expect("threads can be started")
    }

    /// The base URL as logs show it: userinfo replaced by `***`.
    fn shown_url(&self) -> String {
        identity::redact_userinfo(&self.base_url)
    }

    /// An error for the log: `PP_WEBHOOK_URL`'s userinfo removed, relay text cleaned.
    fn for_log(&self, e: &anyhow::Error) -> String {
        clean_to(
            &identity::scrub_userinfo(&format!("{e:#}"), &self.base_url),
            4 * MAX_LOGGED_CHARS,
        )
    }

    fn run(self) {
        let mut attempt = 0u32;
        let mut registration = identity::saved_registration(&self.data_dir, &self.base_url);
        let mut connected_before = false;
        let mut throttles = Throttles {
            pokes: Throttle::new(Instant::now()),
            frames: Throttle::new(Instant::now()),
        };
        while !self.stopping() {
            let reg = if let Some(r) = &registration {
                r.clone()
            } else {
                match identity::provision(
                    &self.agent,
                    &self.data_dir,
                    &self.base_url,
                    &self.identity,
                ) {
                    Ok(r) => {
                        log::info!(
                            "Registered this host with the relay at {}. Its poke URL is {} \
                             (shown in full by `pullpilot listen --show-url`; treat it as a secret).",
                            self.shown_url(),
                            r.redacted_poke_url()
                        );
                        registration = Some(r.clone());
                        r
                    }
                    Err(e) => {
                        let wait = backoff(attempt);
                        attempt = attempt.saturating_add(1);
                        log::warn!(
                            "Could not register with the relay: {}. Trying again in {}; \
                             scheduled passes go on meanwhile.",
                            self.for_log(&e),
                            crate::values::format_millis(wait)
                        );
                        self.sleep(wait);
                        continue;
                    }
                }
            };
            let started = Instant::now();
            let (authed, ended) = self.session(&reg, &mut connected_before, &mut throttles);
            match ended {
                Ended::Shutdown => return,
                Ended::UnknownWebhook => {
                    log::warn!(
                        "The relay at {} answered 404: it no longer knows this host's webhook \
                         (it forgets hosts that stay away for months). Registering again; the \
                         poke URL changes, see the new one with `pullpilot listen --show-url`.",
                        self.shown_url()
                    );
                    if let Err(e) = identity::forget_registration(&self.data_dir) {
                        log::warn!("{e:#}");
                    }
                    registration = None;
                }
                Ended::Failed(e) => {
                    if authed && started.elapsed() > STABLE_SESSION {
                        attempt = 0;
                        log::debug!(
                            "The relay connection ended ({}); reconnecting.",
                            self.for_log(&e)
                        );
                    } else {
                        log::warn!(
                            "Lost the relay connection: {}. Reconnecting; scheduled passes go \
                             on meanwhile.",
                            self.for_log(&e)
                        );
                    }
                }
            }
            let wait = backoff(attempt);
            attempt = attempt.saturating_add(1);
            self.sleep(wait);
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps up to `wait`, waking early on shutdown.
    fn sleep(&self, wait: Duration) {
        let until = super::trigger::later(Instant::now(), wait);
        while !self.stopping() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(200)));
        }
    }

    /// One connection: returns whether it authenticated, and how it ended.
    fn session(
        &self,
        reg: &Registration,
        connected_before: &mut bool,
        throttles: &mut Throttles,
    ) -> (bool, Ended) {
        let (mut ws, tcp) = match connect(&reg.listen_url) {
            Ok(c) => c,
            Err(Connect::UnknownWebhook) => return (false, Ended::UnknownWebhook),
            Err(Connect::Failed(e)) => return (false, Ended::Failed(e)),
        };
        let hello = match next_frame(&mut ws) {
            Ok(f) => f,
            Err(ended) => return (false, ended),
        };
        let Frame::Hello { challenge, .. } = hello else {
            return (
                false,
                Ended::Failed(anyhow!("the relay did not start with a hello frame")),
            );
        };
        let Some(challenge) = protocol::b64url_decode(&challenge) else {
            return (
                false,
                Ended::Failed(anyhow!("the relay's challenge is not base64url")),
            );
        };
        let auth = Frame::Auth {
            sig: self.identity.sign(&reg.webhook_id, &challenge),
        };
        if let Err(e) = ws.send(Message::text(auth.to_text())) {
            return (false, Ended::Failed(anyhow!(e).context("sending auth")));
        }
        match next_frame(&mut ws) {
            Ok(Frame::Ready) => {}
            Ok(_) => {
                return (
                    false,
                    Ended::Failed(anyhow!("the relay did not answer auth with ready")),
                );
            }
            Err(ended) => return (false, ended),
        }
        if *connected_before {
            log::debug!("Reconnected to the relay.");
        } else {
            log::info!(
                "Connected to the relay at {}; pokes to {} now start passes.",
                self.shown_url(),
                reg.redacted_poke_url()
            );
            *connected_before = true;
        }
        (true, self.listen(&mut ws, &tcp, throttles))
    }

    /// The authenticated part: heartbeat, read deadline, pokes.
    fn listen(
        &self,
        ws: &mut WebSocket<Conn>,
        tcp: &TcpStream,
        throttles: &mut Throttles,
    ) -> Ended {
        // Short reads so the heartbeat and shutdown are noticed; the deadline is tracked here.
        if let Err(e) = tcp.set_read_timeout(Some(Duration::from_millis(500))) {
            return Ended::Failed(e.into());
        }
        let mut last_read = Instant::now();
        let mut last_ping = Instant::now();
        loop {
            if self.stopping() {
                let _ = ws.close(None);
                let _ = ws.flush();
                return Ended::Shutdown;
            }
            if last_ping.elapsed() >= self.timing.ping_interval {
                if let Err(e) = ws.send(Message::text(protocol::PING)) {
                    return Ended::Failed(anyhow!(e).context("sending the heartbeat"));
                }
                last_ping = Instant::now();
            }
            match ws.read() {
                Ok(Message::Text(text)) => {
                    last_read = Instant::now();
                    if text.as_str() == protocol::PONG {
                        continue;
                    }
                    match serde_json::from_str::<Frame>(text.as_str()) {
                        Ok(Frame::Poke { reason, .. }) => {
                            if let Some(hidden) = throttles.pokes.allow(Instant::now()) {
                                let more = held_back(hidden, "pokes");
                                match &reason {
                                    Some(r) => log::info!(
                                        "The relay passed on a poke (\"{}\"){more}.",
                                        clean(r)
                                    ),
                                    None => log::info!("The relay passed on a poke{more}."),
                                }
                            }
                            if self.pokes.add() && self.events.send(Wake::RelayPokes).is_err() {
                                return Ended::Shutdown;
                            }
                        }
                        Ok(other) => {
                            if let Some(hidden) = throttles.frames.allow(Instant::now()) {
                                log::debug!(
                                    "Ignoring an unexpected relay frame: {}{}",
                                    clean(&format!("{other:?}")),
                                    held_back(hidden, "frames")
                                );
                            }
                        }
                        Err(e) => {
                            return Ended::Failed(anyhow!(
                                "the relay sent a text frame that is not JSON ({})",
                                clean(&e.to_string())
                            ));
                        }
                    }
                }
                Ok(Message::Close(frame)) => return closed(frame.as_ref()),
                Ok(_) => last_read = Instant::now(),
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if last_read.elapsed() > self.timing.read_deadline {
                        return Ended::Failed(anyhow!(
                            "nothing from the relay for {}",
                            humantime::format_duration(self.timing.read_deadline)
                        ));
                    }
                }
                Err(e) => return Ended::Failed(anyhow!("{}", clean(&e.to_string()))),
            }
        }
    }
}

/// `min(1 s × 2^attempt, 60 s)`, then a uniformly random part of it (full jitter).
fn backoff(attempt: u32) -> Duration {
    let cap = (Duration::from_secs(1) * 2u32.pow(attempt.min(6))).min(MAX_BACKOFF);
    protocol::random_up_to(cap)
}

/// A close frame is never a reason to register again, whatever it says (see the module docs).
fn closed(frame: Option<&tungstenite::protocol::CloseFrame>) -> Ended {
    match frame {
        Some(f) => Ended::Failed(anyhow!(
            "the relay closed the connection ({} \"{}\")",
            u16::from(f.code),
            clean(f.reason.as_str())
        )),
        None => Ended::Failed(anyhow!("the relay closed the connection")),
    }
}

/// The next JSON frame during the handshake (pongs and control frames skipped).
fn next_frame(ws: &mut WebSocket<Conn>) -> Result<Frame, Ended> {
    loop {
        match ws.read() {
            Ok(Message::Text(text)) if text.as_str() == protocol::PONG => {}
            Ok(Message::Text(text)) => {
                return serde_json::from_str(text.as_str()).map_err(|e| {
                    Ended::Failed(anyhow!(
                        "the relay sent a frame that is not JSON ({})",
                        clean(&e.to_string())
                    ))
                });
            }
            Ok(Message::Close(frame)) => return Err(closed(frame.as_ref())),
            Ok(_) => {}
            Err(e) => {
                return Err(Ended::Failed(anyhow!(
                    "waiting for the relay: {}",
                    clean(&e.to_string())
                )));
            }
        }
    }
}

/// A plain or TLS connection to the relay.
pub(super) enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

enum Connect {
    UnknownWebhook,
    Failed(anyhow::Error),
}

/// Splits `ws[s]://host[:port]/path` into (tls, host, port).
fn endpoint(url: &str) -> Result<(bool, String, u16)> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("wss://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("ws://") {
        (false, rest)
    } else {
        bail!("the listen URL {url:?} is not ws:// or wss://");
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .with_context(|| format!("the listen URL {url:?} has a broken IPv6 address"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok(),
            None if after.is_empty() => Some(default_port),
            None => None,
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()),
            None => (authority.to_string(), Some(default_port)),
        }
    };
    let port = port.with_context(|| format!("the listen URL {url:?} has a bad port"))?;
    if host.is_empty() {
        bail!("the listen URL {url:?} has no host");
    }
    Ok((tls, host, port))
}

fn connect(url: &str) -> Result<(WebSocket<Conn>, TcpStream), Connect> {
    let fail = |e: anyhow::Error| Connect::Failed(e);
    let (tls, host, port) = endpoint(url).map_err(fail)?;
    let addrs = (host.as_str(), port)
        .to_socket_addrs()
        .with_context(|| format!("looking up the relay host {host}"))
        .map_err(fail)?;
    let mut last = None;
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = tcp
        .ok_or_else(|| match last {
            Some(e) => anyhow!(e).context(format!("connecting to the relay at {host}:{port}")),
            None => anyhow!("the relay host {host} has no address"),
        })
        .map_err(fail)?;
    let setup = || -> io::Result<TcpStream> {
        tcp.set_read_timeout(Some(CONNECT_TIMEOUT))?;
        tcp.set_write_timeout(Some(WRITE_TIMEOUT))?;
        tcp.set_nodelay(true)?;
        tcp.try_clone()
    };
    let control = setup().map_err(|e| fail(e.into()))?;
    let conn = if tls {
        let config =
            crate::tls::tls_client_config(&[]).map_err(|e| fail(anyhow!("TLS setup: {e}")))?;
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| fail(anyhow!("the relay host {host:?} is not a TLS name: {e}")))?;
        let session = rustls::ClientConnection::new(config, name)
            .map_err(|e| fail(anyhow!("TLS setup: {e}")))?;
        Conn::Tls(Box::new(rustls::StreamOwned::new(session, tcp)))
    } else {
        Conn::Plain(tcp)
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(protocol::MAX_FRAME_BYTES))
        .max_frame_size(Some(protocol::MAX_FRAME_BYTES));
    match tungstenite::client::client_with_config(url, conn, Some(config)) {
        Ok((ws, _)) => Ok((ws, control)),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response)))
            if response.status() == 404 =>
        {
            Err(Connect::UnknownWebhook)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Err(fail(anyhow!(
                "the relay refused the connection with HTTP {}",
                response.status()
            )))
        }
        Err(tungstenite::HandshakeError::Failure(e)) => Err(fail(anyhow!(
            "opening the relay WebSocket: {}",
            clean(&e.to_string())
        ))),
        Err(tungstenite::HandshakeError::Interrupted(_)) => Err(fail(anyhow!(
            "the relay did not answer the WebSocket upgrade in time"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_split() {
        assert_eq!(
            endpoint("wss://relay.example/v1/listen/wh_1").unwrap(),
            (true, "relay.example".into(), 443)
        );
        assert_eq!(
            endpoint("ws://127.0.0.1:8080/v1/listen/wh_1").unwrap(),
            (false, "127.0.0.1".into(), 8080)
        );
        assert_eq!(
            endpoint("ws://[::1]:9/x").unwrap(),
            (false, "::1".into(), 9)
        );
        assert!(endpoint("http://x/").is_err());
        assert!(endpoint("ws://x:notaport/").is_err());
        assert!(endpoint("ws:///path").is_err());
    }

    #[test]
    fn a_close_reason_alone_never_means_register_again() {
        for reason in [
            "unknown webhook",
            "bad signature",
            "challenge expired",
            "x\ny",
        ] {
            let frame = tungstenite::protocol::CloseFrame {
                code: tungstenite::protocol::frame::coding::CloseCode::Policy,
                reason: reason.into(),
            };
            let Ended::Failed(e) = closed(Some(&frame)) else {
                panic!("close reason {reason:?} was not a plain failure");
            };
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn base_urls_are_checked() {
        assert!(check_base_url("https://relay.example").is_ok());
        assert!(check_base_url("http://127.0.0.1:8080/prefix").is_ok());
        assert!(check_base_url("https://user:pass@relay.example").is_ok());
        for (url, why) in [
            ("https://", "no host"),
            ("https:", "no host"),
            ("https://user:pass@", "no host"),
            ("https://relay.example:99999", "port"),
            ("https://relay.example:x", "port"),
            ("https://relay.example/?a=b", "query"),
            ("https://relay example", "whitespace"),
        ] {
            let err = check_base_url(url).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
            assert!(!err.contains("pass"), "{url}: {err}");
        }
    }

    #[test]
    fn backoff_grows_to_a_minute_with_full_jitter() {
        for attempt in 0..20 {
            let cap = Duration::from_secs(1 << attempt.min(6)).min(MAX_BACKOFF);
            assert!(backoff(attempt) <= cap);
        }
    }
}
