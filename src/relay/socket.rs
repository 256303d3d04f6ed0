//! One listen socket after the 101: `hello`, then `auth` within the challenge's life and the
//! auth timeout, `ready`, then pokes (written by whoever delivers them) and `ping`/`pong`.
//!
//! The socket's thread only reads; everything it and the delivering threads write goes through
//! the [`Conn`]'s writer, one whole frame at a time.

use std::io::{self, Cursor};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use super::Relay;
use super::room::{Conn, Room, lock};
use super::store::short_id;
use crate::webhook::http::Replay;
use crate::webhook::protocol::{self, Frame, close};

/// An authenticated socket that sends nothing (clients ping every 30 s) for this long is
/// closed, so a listener that vanished without a FIN does not keep one of the four places.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a write may block before the socket counts as dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the client's answer to our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
const IDLE: u16 = 1000;
/// What each socket reads into at first. tungstenite's default (128 KiB) is zero-filled on the
/// first read, so it was resident for every listener: 1,000 idle sockets held 150 MiB. Frames
/// here are a few hundred bytes; a larger one (up to `MAX_FRAME_BYTES`) grows the buffer.
const READ_BUFFER: usize = 4096;

/// The socket's own reads, and its writes through the shared writer.
struct Halves {
    read: TcpStream,
    conn: Arc<Conn>,
}

impl io::Read for Halves {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read.read(buf)
    }
}

impl io::Write for Halves {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.conn.write_raw(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type Socket = WebSocket<Replay<Halves>>;

/// Runs the socket protocol on a connection that has just been sent its 101.
pub(crate) fn serve(relay: &Arc<Relay>, id: &str, stream: TcpStream, leftover: Vec<u8>) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let _ = write_half.set_write_timeout(Some(WRITE_TIMEOUT));
    let conn = Arc::new(Conn::new(write_half));
    let io = Replay {
        prefix: Cursor::new(leftover),
        inner: Halves {
            read: stream,
            conn: Arc::clone(&conn),
        },
    };
    let mut ws = WebSocket::from_raw_socket(io, Role::Server, Some(socket_config()));
    let Some(room) = relay.room(id) else {
        close_socket(&mut ws, &conn, close::POLICY, close::UNKNOWN_WEBHOOK);
        return;
    };
    if !lock(&room).join(&conn) {
        log::debug!(
            "Refused a listen socket for webhook {}: 8 are already waiting to authenticate.",
            short_id(id)
        );
        close_socket(&mut ws, &conn, close::TRY_AGAIN_LATER, close::TOO_MANY);
        return;
    }
    let mut session = ListenerSession {
        relay,
        id,
        room: &room,
        conn: &conn,
        ws,
        challenge: protocol::random_bytes::<32>(),
        exp: unix_now() + relay.cfg.challenge_ttl.as_secs(),
        auth_deadline: Instant::now() + relay.cfg.auth_timeout,
        authed: false,
    };
    // Joined after a shutdown began: `close_all` may have missed this socket.
    if !relay.stopping() {
        session.run();
    }
    lock(&room).leave(&conn);
    if session.authed {
        log::info!("The listener for webhook {} disconnected.", short_id(id));
    }
}

struct ListenerSession<'a> {
    relay: &'a Relay,
    id: &'a str,
    room: &'a Mutex<Room>,
    conn: &'a Arc<Conn>,
    ws: Socket,
    challenge: [u8; 32],
    exp: u64,
    auth_deadline: Instant,
    authed: bool,
}

/// What a frame leads to.
enum Step {
    Continue,
    Close(u16, &'static str),
}

impl ListenerSession<'_> {
    fn run(&mut self) {
        let hello = Frame::Hello {
            v: protocol::VERSION,
            challenge: protocol::b64url(&self.challenge),
            exp: self.exp,
        };
        if !matches!(self.conn.send_text(&hello.to_text()), Ok(true)) {
            return;
        }
        loop {
            let wait = if self.authed {
                IDLE_TIMEOUT
            } else {
                match self.auth_deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return self.close(close::POLICY, close::AUTH_TIMEOUT),
                }
            };
            let _ = self.ws.get_ref().inner.read.set_read_timeout(Some(wait));
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    if let Step::Close(code, reason) = self.on_text(text.as_str()) {
                        return self.close(code, reason);
                    }
                }
                // Binary frames are not part of the protocol; control frames are answered by
                // tungstenite (a close frame's answer goes out with the next read).
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {
                    if self.authed {
                        log::debug!(
                            "Closing the listener of webhook {}: silent for {}.",
                            short_id(self.id),
                            humantime::format_duration(IDLE_TIMEOUT)
                        );
                        return self.close(IDLE, "idle timeout");
                    }
                }
                Err(_) => return,
            }
        }
    }

    fn on_text(&mut self, text: &str) -> Step {
        if text == protocol::PING {
            if self.conn.send_text(protocol::PONG).is_err() {
                self.conn.kill();
            }
            return Step::Continue;
        }
        // Anything but {"type":"auth","sig":"…"} is ignored, as by the reference relay.
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            return Step::Continue;
        };
        match (value.get("type"), value.get("sig")) {
            (Some(Value::String(kind)), Some(Value::String(sig))) if kind == "auth" => {
                self.auth(sig)
            }
            _ => Step::Continue,
        }
    }

    /// Checks in the reference's order: repeat, expiry, cap, registration, signature.
    fn auth(&mut self, sig: &str) -> Step {
        if self.authed {
            return Step::Continue;
        }
        if unix_now() > self.exp {
            return Step::Close(close::POLICY, close::CHALLENGE_EXPIRED);
        }
        if !lock(self.room).may_authenticate(self.conn) {
            return Step::Close(close::TRY_AGAIN_LATER, close::TOO_MANY);
        }
        let Some(pubkey) = self
            .relay
            .with_store(|s| s.get(self.id).map(|r| r.pubkey.clone()))
        else {
            return Step::Close(close::POLICY, close::UNKNOWN_WEBHOOK);
        };
        if !protocol::verify(&pubkey, self.id, &self.challenge, sig) {
            log::info!(
                "A listener for webhook {} sent a bad signature and was closed; a daemon whose \
                 key changed has to provision again.",
                short_id(self.id)
            );
            return Step::Close(close::POLICY, close::BAD_SIGNATURE);
        }
        let mut room = lock(self.room);
        if !room.may_authenticate(self.conn) {
            return Step::Close(close::TRY_AGAIN_LATER, close::TOO_MANY);
        }
        room.mark_authed(self.conn);
        self.authed = true;
        // Under the room's lock, so no poke can overtake `ready`.
        if !matches!(self.conn.send_text(&Frame::Ready.to_text()), Ok(true)) {
            self.conn.kill();
            return Step::Continue;
        }
        self.relay
            .with_store(|s| s.touch(self.id, SystemTime::now()));
        log::info!(
            "A listener for webhook {} authenticated.",
            short_id(self.id)
        );
        if self.relay.set_pending(self.id, false) {
            log::debug!(
                "Delivering the pending poke of webhook {}.",
                short_id(self.id)
            );
            room.deliver(None, Instant::now());
        }
        Step::Continue
    }

    fn close(&mut self, code: u16, reason: &str) {
        close_socket(&mut self.ws, self.conn, code, reason);
    }
}

/// Sends a close frame and waits briefly for the client's, then lets the connection go.
fn close_socket(ws: &mut Socket, conn: &Conn, code: u16, reason: &str) {
    conn.begin_close();
    let frame = CloseFrame {
        code: code.into(),
        reason: reason.into(),
    };
    if ws.close(Some(frame)).is_err() {
        return;
    }
    let _ = ws.get_ref().inner.read.set_read_timeout(Some(CLOSE_WAIT));
    let give_up = Instant::now() + CLOSE_WAIT;
    while Instant::now() < give_up && ws.read().is_ok() {}
}

/// Frame limits of the protocol, and a read buffer sized for thousands of idle listeners.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(protocol::MAX_FRAME_BYTES))
        .max_frame_size(Some(protocol::MAX_FRAME_BYTES))
        .read_buffer_size(READ_BUFFER)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_socket_keeps_a_small_read_buffer_but_takes_whole_frames() {
        let config = socket_config();
        assert!(config.read_buffer_size <= 8 * 1024, "{config:?}");
        assert_eq!(config.max_frame_size, Some(protocol::MAX_FRAME_BYTES));
        assert_eq!(config.max_message_size, Some(protocol::MAX_FRAME_BYTES));
    }
}
