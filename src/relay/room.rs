//! One webhook's live side: its sockets, its poke limit and coalescing, and the writer each
//! socket shares between its own thread and the threads that deliver pokes to it.
//!
//! Lock order: a `Room` before the store and before a `Conn`'s writer; a `Conn`'s writer is
//! never held while taking another lock. Frames are written whole under the writer's lock, so
//! a poke from another thread never lands inside a frame the socket's own thread is writing.

use std::io::{self, Write as _};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::Frame as WsFrame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

use super::limits::{self, Coalescer, Delivery, PokeWindow};
use crate::webhook::protocol::{self, Frame};

/// Locks a mutex, carrying on with the data if another thread panicked while holding it: one
/// broken connection must not take the relay down with it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The writing half of one WebSocket.
#[derive(Debug)]
pub(crate) struct Conn {
    writer: Mutex<Writer>,
}

#[derive(Debug)]
struct Writer {
    stream: TcpStream,
    /// A close frame is on its way; no more data frames may follow it.
    closing: bool,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Conn {
        Conn {
            writer: Mutex::new(Writer {
                stream,
                closing: false,
            }),
        }
    }

    /// Sends one text frame; `Ok(false)` when the socket is closing and the frame was dropped.
    pub(crate) fn send_text(&self, text: &str) -> io::Result<bool> {
        let mut writer = lock(&self.writer);
        if writer.closing {
            return Ok(false);
        }
        let mut bytes = Vec::with_capacity(text.len() + 10);
        WsFrame::message(text.as_bytes().to_vec(), OpCode::Data(Data::Text), true)
            .format(&mut bytes)
            .map_err(io::Error::other)?;
        writer.stream.write_all(&bytes)?;
        Ok(true)
    }

    /// Bytes the socket's own WebSocket writes (pongs and close frames), whole.
    pub(crate) fn write_raw(&self, bytes: &[u8]) -> io::Result<()> {
        lock(&self.writer).stream.write_all(bytes)
    }

    /// From now on only the socket's own close frame is written.
    pub(crate) fn begin_close(&self) {
        lock(&self.writer).closing = true;
    }

    /// Closes from outside the socket's thread (shutdown): a close frame, then the TCP
    /// connection, which wakes the socket's thread.
    pub(crate) fn close_now(&self, code: u16, reason: &str) {
        let mut writer = lock(&self.writer);
        if !writer.closing {
            writer.closing = true;
            let mut bytes = Vec::new();
            let frame = WsFrame::close(Some(CloseFrame {
                code: code.into(),
                reason: reason.into(),
            }));
            if frame.format(&mut bytes).is_ok() {
                let _ = writer.stream.write_all(&bytes);
            }
        }
        let _ = writer.stream.shutdown(Shutdown::Both);
    }

    /// Drops a connection whose writes fail; its thread sees the end and leaves the room.
    pub(crate) fn kill(&self) {
        let writer = lock(&self.writer);
        let _ = writer.stream.shutdown(Shutdown::Both);
    }
}

#[derive(Debug)]
struct Member {
    conn: Arc<Conn>,
    authed: bool,
}

/// What happened to an accepted poke.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PokeResult {
    /// Over the abuse limit: answer 429.
    Limited,
    /// Nobody listening: the caller sets the pending flag.
    NoListener,
    Delivered,
    /// One delivery is scheduled for this moment: the caller arms a timer.
    Deferred(Instant),
    /// Folded into an already scheduled delivery.
    Coalesced,
}

/// One webhook's sockets and poke state.
#[derive(Debug, Default)]
pub(crate) struct Room {
    members: Vec<Member>,
    window: PokeWindow,
    coalescer: Coalescer,
    /// The reason the deferred delivery will carry (the latest poke's).
    deferred_reason: Option<String>,
}

impl Room {
    /// Adds a new, unauthenticated socket unless [`limits::MAX_UNAUTHED`] are already waiting.
    pub(crate) fn join(&mut self, conn: &Arc<Conn>) -> bool {
        let waiting = self.members.iter().filter(|m| !m.authed).count();
        if !limits::may_open(waiting) {
            return false;
        }
        self.members.push(Member {
            conn: Arc::clone(conn),
            authed: false,
        });
        true
    }

    pub(crate) fn leave(&mut self, conn: &Arc<Conn>) {
        self.members.retain(|m| !Arc::ptr_eq(&m.conn, conn));
    }

    pub(crate) fn authed_count(&self) -> usize {
        self.members.iter().filter(|m| m.authed).count()
    }

    /// Whether `conn` may authenticate next to the others already authenticated.
    pub(crate) fn may_authenticate(&self, conn: &Arc<Conn>) -> bool {
        let others = self
            .members
            .iter()
            .filter(|m| m.authed && !Arc::ptr_eq(&m.conn, conn))
            .count();
        limits::may_authenticate(others)
    }

    pub(crate) fn mark_authed(&mut self, conn: &Arc<Conn>) {
        for member in &mut self.members {
            if Arc::ptr_eq(&member.conn, conn) {
                member.authed = true;
            }
        }
    }

    pub(crate) fn has_members(&self) -> bool {
        !self.members.is_empty()
    }

    pub(crate) fn scheduled(&self) -> Option<Instant> {
        self.coalescer.scheduled()
    }

    /// Applies the abuse limit and coalescing to a poke, delivering it if it is time.
    pub(crate) fn poke(&mut self, reason: Option<String>, now: Instant) -> PokeResult {
        if !self.window.admit(now) {
            return PokeResult::Limited;
        }
        if self.authed_count() == 0 {
            return PokeResult::NoListener;
        }
        match self.coalescer.decide(now) {
            Delivery::Now => {
                self.deliver(reason, now);
                PokeResult::Delivered
            }
            Delivery::Later(due) => {
                self.deferred_reason = reason;
                PokeResult::Deferred(due)
            }
            Delivery::AlreadyScheduled => {
                self.deferred_reason = reason;
                PokeResult::Coalesced
            }
        }
    }

    /// Delivers the deferred poke if it is due. True when it was due but nobody is listening
    /// any more: the caller sets the pending flag instead.
    pub(crate) fn fire_deferred(&mut self, now: Instant) -> bool {
        if !self.coalescer.take_due(now) {
            return false;
        }
        let reason = self.deferred_reason.take();
        if self.authed_count() == 0 {
            return true;
        }
        self.deliver(reason, now);
        false
    }

    /// Sends one poke frame to every authenticated socket.
    pub(crate) fn deliver(&mut self, reason: Option<String>, now: Instant) {
        self.coalescer.delivered(now);
        self.deferred_reason = None;
        let frame = poke_frame(reason, SystemTime::now());
        for member in self.members.iter().filter(|m| m.authed) {
            if let Err(e) = member.conn.send_text(&frame) {
                log::debug!("Dropping a listener whose socket failed: {e}.");
                member.conn.kill();
            }
        }
    }

    /// Closes every socket (shutdown).
    pub(crate) fn close_all(&self, code: u16, reason: &str) {
        for member in &self.members {
            member.conn.close_now(code, reason);
        }
    }
}

/// `{"type":"poke","v":1,"id":<32 hex>,"ts":<ISO-8601 ms>,"reason":…}`.
pub(crate) fn poke_frame(reason: Option<String>, now: SystemTime) -> String {
    Frame::Poke {
        v: protocol::VERSION,
        id: protocol::hex(&protocol::random_bytes::<16>()),
        ts: humantime::format_rfc3339_millis(now).to_string(),
        reason,
    }
    .to_text()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (Arc<Conn>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (Arc::new(Conn::new(server)), client)
    }

    #[test]
    fn the_ninth_waiting_socket_is_refused_and_the_fifth_authenticated_one_too() {
        let mut room = Room::default();
        let conns: Vec<_> = (0..9).map(|_| pair()).collect();
        for (conn, _) in &conns[..8] {
            assert!(room.join(conn));
        }
        assert!(!room.join(&conns[8].0));
        for (conn, _) in &conns[..4] {
            assert!(room.may_authenticate(conn));
            room.mark_authed(conn);
        }
        assert!(
            room.may_authenticate(&conns[0].0),
            "a repeat auth is not 'another'"
        );
        assert!(!room.may_authenticate(&conns[4].0));
        assert!(
            room.join(&conns[8].0),
            "authenticated sockets free waiting places"
        );
        room.leave(&conns[0].0);
        assert!(room.may_authenticate(&conns[4].0));
    }

    #[test]
    fn pokes_without_a_listener_ask_for_the_pending_flag() {
        let mut room = Room::default();
        assert_eq!(room.poke(None, Instant::now()), PokeResult::NoListener);
    }

    #[test]
    fn a_burst_is_one_delivery_now_and_one_at_the_window_end() {
        use std::io::Read as _;
        let (conn, mut client) = pair();
        let mut room = Room::default();
        room.join(&conn);
        room.mark_authed(&conn);
        let t0 = Instant::now();
        assert_eq!(room.poke(Some("a".into()), t0), PokeResult::Delivered);
        let due = t0 + limits::COALESCE;
        assert_eq!(
            room.poke(Some("b".into()), t0 + std::time::Duration::from_secs(1)),
            PokeResult::Deferred(due)
        );
        assert_eq!(room.poke(Some("c".into()), t0), PokeResult::Coalesced);
        assert!(!room.fire_deferred(t0));
        assert!(!room.fire_deferred(due));
        conn.kill();
        let mut wire = Vec::new();
        client.read_to_end(&mut wire).unwrap();
        let wire = String::from_utf8_lossy(&wire);
        assert!(wire.contains(r#""reason":"a""#), "{wire}");
        assert!(wire.contains(r#""reason":"c""#), "{wire}");
        assert!(!wire.contains(r#""reason":"b""#), "{wire}");
    }

    #[test]
    fn poke_frames_have_the_wire_shape() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        let frame: serde_json::Value =
            serde_json::from_str(&poke_frame(Some("r".into()), at)).unwrap();
        assert_eq!(frame["type"], "poke");
        assert_eq!(frame["v"], 1);
        assert_eq!(frame["ts"], "2023-11-14T22:13:20.123Z");
        assert_eq!(frame["reason"], "r");
        let id = frame["id"].as_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}
