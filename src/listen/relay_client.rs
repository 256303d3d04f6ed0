//! The relay connection: register once, keep one authenticated WebSocket, turn `poke` frames
//! into events, and reconnect with full-jitter backoff. Runs on its own thread; the main loop
//! decides what a poke leads to.

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

use super::Event;
use super::identity::{self, Registration};
use crate::webhook::protocol::{self, Frame, Identity, close};

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
    pub(super) events: Sender<Event>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) timing: Timing,
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

    fn run(self) {
        let mut attempt = 0u32;
        let mut registration = identity::saved_registration(&self.data_dir, &self.base_url);
        let mut connected_before = false;
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
                            self.base_url,
                            r.redacted_poke_url()
                        );
                        registration = Some(r.clone());
                        r
                    }
                    Err(e) => {
                        let wait = backoff(attempt);
                        attempt += 1;
                        log::warn!(
                            "Could not register with the relay: {e:#}. Trying again in {}; \
                             scheduled passes go on meanwhile.",
                            crate::values::format_millis(wait)
                        );
                        self.sleep(wait);
                        continue;
                    }
                }
            };
            let started = Instant::now();
            let (authed, ended) = self.session(&reg, &mut connected_before);
            match ended {
                Ended::Shutdown => return,
                Ended::UnknownWebhook => {
                    log::warn!(
                        "The relay at {} no longer knows this host's webhook (it forgets hosts \
                         that stay away for months). Registering again; the poke URL changes, \
                         see the new one with `pullpilot listen --show-url`.",
                        self.base_url
                    );
                    if let Err(e) = identity::forget_registration(&self.data_dir) {
                        log::warn!("{e:#}");
                    }
                    registration = None;
                }
                Ended::Failed(e) => {
                    if authed && started.elapsed() > STABLE_SESSION {
                        attempt = 0;
                        log::debug!("The relay connection ended ({e:#}); reconnecting.");
                    } else {
                        log::warn!(
                            "Lost the relay connection: {e:#}. Reconnecting; scheduled passes go \
                             on meanwhile."
                        );
                    }
                }
            }
            let wait = backoff(attempt);
            attempt += 1;
            self.sleep(wait);
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps up to `wait`, waking early on shutdown.
    fn sleep(&self, wait: Duration) {
        let until = Instant::now() + wait;
        while !self.stopping() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(200)));
        }
    }

    /// One connection: returns whether it authenticated, and how it ended.
    fn session(&self, reg: &Registration, connected_before: &mut bool) -> (bool, Ended) {
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
                self.base_url,
                reg.redacted_poke_url()
            );
            *connected_before = true;
        }
        (true, self.listen(&mut ws, &tcp))
    }

    /// The authenticated part: heartbeat, read deadline, pokes.
    fn listen(&self, ws: &mut WebSocket<Conn>, tcp: &TcpStream) -> Ended {
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
                            match &reason {
                                Some(r) => log::info!("The relay passed on a poke ({r:?})."),
                                None => log::info!("The relay passed on a poke."),
                            }
                            if self.events.send(Event::Poke { service: None }).is_err() {
                                return Ended::Shutdown;
                            }
                        }
                        Ok(other) => log::debug!("Ignoring an unexpected relay frame: {other:?}"),
                        Err(e) => {
                            return Ended::Failed(anyhow!(
                                "the relay sent a text frame that is not JSON ({e})"
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
                Err(e) => return Ended::Failed(anyhow!(e)),
            }
        }
    }
}

/// `min(1 s × 2^attempt, 60 s)`, then a uniformly random part of it (full jitter).
fn backoff(attempt: u32) -> Duration {
    let cap = (Duration::from_secs(1) * 2u32.pow(attempt.min(6))).min(MAX_BACKOFF);
    protocol::random_up_to(cap)
}

fn closed(frame: Option<&tungstenite::protocol::CloseFrame>) -> Ended {
    match frame {
        Some(f) if f.reason.as_str() == close::UNKNOWN_WEBHOOK => Ended::UnknownWebhook,
        Some(f) => Ended::Failed(anyhow!(
            "the relay closed the connection ({} {:?})",
            u16::from(f.code),
            f.reason.as_str()
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
                    Ended::Failed(anyhow!("the relay sent a frame that is not JSON ({e})"))
                });
            }
            Ok(Message::Close(frame)) => return Err(closed(frame.as_ref())),
            Ok(_) => {}
            Err(e) => return Err(Ended::Failed(anyhow!(e).context("waiting for the relay"))),
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
        let config = crate::notify::roots::tls_client_config(&[])
            .map_err(|e| fail(anyhow!("TLS setup: {e}")))?;
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
        Err(tungstenite::HandshakeError::Failure(e)) => {
            Err(fail(anyhow!(e).context("opening the relay WebSocket")))
        }
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
    fn backoff_grows_to_a_minute_with_full_jitter() {
        for attempt in 0..20 {
            let cap = Duration::from_secs(1 << attempt.min(6)).min(MAX_BACKOFF);
            assert!(backoff(attempt) <= cap);
        }
    }
}
