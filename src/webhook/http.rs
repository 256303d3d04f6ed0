//! Just enough HTTP/1.1 for the local receiver and the relay: one request per connection
//! (`Connection: close`), bodies by `Content-Length` or chunked, bounded head and body sizes,
//! and one deadline for the whole request however slowly its bytes arrive. Requests that
//! upgrade to WebSocket keep any bytes read past the head in [`Request::leftover`].
//!
//! What a server admits at all (connections per client network, `accept` failures) is in
//! `webhook::admission`.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// Largest request head accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 48;
/// Longest chunk-size line or trailer section of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;
const MAX_TRAILERS: usize = 8 * 1024;

#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// `None` when the body was longer than the caller's limit (it was not read).
    pub body: Option<Vec<u8>>,
    /// Bytes after the head that are not part of the body.
    pub leftover: Vec<u8>,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request could not be read; each maps to the status to answer with, if any.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed or timed out; nothing to answer.
    Io(io::Error),
    /// Not HTTP/1.x or a head that is too large: 400.
    Malformed(&'static str),
}

/// Reads one request from a socket, giving up with [`ReadError::Io`] (`TimedOut`) at
/// `deadline` however slowly the bytes trickle in: a per-read timeout alone never fires for a
/// client that sends one byte every few seconds.
pub fn read_request_until(
    stream: &TcpStream,
    max_body: usize,
    deadline: Instant,
) -> Result<Request, ReadError> {
    read_request(&mut Deadline { stream, deadline }, max_body)
}

/// Reads from a socket with what is left of one deadline as each read's timeout.
struct Deadline<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        (&mut &*self.stream).read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock {
                io::ErrorKind::TimedOut.into()
            } else {
                e
            }
        })
    }
}

/// How the request's body is framed.
enum Framing {
    Length(usize),
    Chunked,
}

/// Reads one request. Bodies longer than `max_body` are left unread (`body: None`).
pub fn read_request(stream: &mut impl Read, max_body: usize) -> Result<Request, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let (head_len, method, path, headers) = loop {
        let n = stream.read(&mut chunk).map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut slots);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let method = req.method.unwrap_or_default().to_string();
                let target = req.path.unwrap_or_default();
                let path = target.split('?').next().unwrap_or_default().to_string();
                let headers = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).trim().to_string(),
                        )
                    })
                    .collect::<Vec<_>>();
                break (len, method, path, headers);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => {}
            Ok(httparse::Status::Partial) => return Err(ReadError::Malformed("head too large")),
            Err(_) => return Err(ReadError::Malformed("not an HTTP/1.1 request")),
        }
    };
    let rest = buf.split_off(head_len);
    let mut request = Request {
        method,
        path,
        headers,
        body: Some(Vec::new()),
        leftover: Vec::new(),
    };
    let mut input = Input {
        stream,
        buf: rest,
        pos: 0,
    };
    match framing(&request)? {
        Framing::Length(length) if length > max_body => request.body = None,
        Framing::Length(length) => {
            input.want(length)?;
            request.body = Some(input.take(length));
            request.leftover = input.buf.split_off(input.pos);
        }
        Framing::Chunked => {
            request.body = read_chunked(&mut input, max_body)?;
            if request.body.is_some() {
                request.leftover = input.buf.split_off(input.pos);
            }
        }
    }
    Ok(request)
}

fn framing(request: &Request) -> Result<Framing, ReadError> {
    let length = request.header("content-length");
    match request.header("transfer-encoding").map(str::trim) {
        None => {}
        Some(te) if te.eq_ignore_ascii_case("identity") => {}
        Some(te) if te.eq_ignore_ascii_case("chunked") => {
            if length.is_some() {
                // RFC 9112 §6.1: a request smuggling attempt more often than not.
                return Err(ReadError::Malformed(
                    "both Content-Length and Transfer-Encoding given; send one",
                ));
            }
            return Ok(Framing::Chunked);
        }
        Some(_) => {
            return Err(ReadError::Malformed(
                "unsupported Transfer-Encoding; send the body with Content-Length or chunked",
            ));
        }
    }
    match length {
        None => Ok(Framing::Length(0)),
        Some(v) => v
            .parse::<usize>()
            .map(Framing::Length)
            .map_err(|_| ReadError::Malformed("bad Content-Length")),
    }
}

/// A chunked body (RFC 9112 §7.1); `None` once it grows past `max_body` (the rest is unread).
/// Chunk extensions and trailers are read and ignored.
fn read_chunked(
    input: &mut Input<'_, impl Read>,
    max_body: usize,
) -> Result<Option<Vec<u8>>, ReadError> {
    let mut body = Vec::new();
    loop {
        let line = input.line(MAX_CHUNK_LINE)?;
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .map(str::trim)
            .filter(|hex| !hex.is_empty() && hex.len() <= 16)
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
            .ok_or(ReadError::Malformed("bad chunk size in a chunked body"))?;
        if size == 0 {
            let mut trailers = 0;
            loop {
                let line = input.line(MAX_CHUNK_LINE)?;
                if line.is_empty() {
                    return Ok(Some(body));
                }
                trailers += line.len();
                if trailers > MAX_TRAILERS {
                    return Err(ReadError::Malformed("trailers too large"));
                }
            }
        }
        if body.len().saturating_add(size) > max_body {
            return Ok(None);
        }
        input.want(size + 2)?;
        body.extend_from_slice(&input.take(size));
        if input.take(2) != b"\r\n" {
            return Err(ReadError::Malformed("a chunk does not end with CRLF"));
        }
    }
}

/// Bytes already read past the head, then more from the stream as needed.
struct Input<'a, R> {
    stream: &'a mut R,
    buf: Vec<u8>,
    pos: usize,
}

impl<R: Read> Input<'_, R> {
    /// Reads until at least `n` unconsumed bytes are buffered.
    fn want(&mut self, n: usize) -> Result<(), ReadError> {
        let mut chunk = [0u8; 2048];
        while self.buf.len() - self.pos < n {
            let got = self.stream.read(&mut chunk).map_err(ReadError::Io)?;
            if got == 0 {
                return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            self.buf.extend_from_slice(&chunk[..got]);
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        out
    }

    /// One CRLF-terminated line without its CRLF, at most `max` bytes long.
    fn line(&mut self, max: usize) -> Result<Vec<u8>, ReadError> {
        loop {
            if let Some(end) = self.buf[self.pos..].windows(2).position(|w| w == b"\r\n") {
                let line = self.take(end);
                self.pos += 2;
                return Ok(line);
            }
            if self.buf.len() - self.pos > max {
                return Err(ReadError::Malformed("a chunked body line is too long"));
            }
            let have = self.buf.len() - self.pos;
            self.want(have + 1)?;
        }
    }
}

/// Writes a complete response and asks the client to close.
pub fn respond(
    stream: &mut impl Write,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// A JSON response.
pub fn respond_json(
    stream: &mut impl Write,
    status: u16,
    body: &serde_json::Value,
) -> io::Result<()> {
    respond(
        stream,
        status,
        "application/json",
        body.to_string().as_bytes(),
    )
}

/// A plain-text response.
pub fn respond_text(stream: &mut impl Write, status: u16, body: &str) -> io::Result<()> {
    respond(stream, status, "text/plain; charset=utf-8", body.as_bytes())
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// A stream that first yields bytes already read from it (the [`Request::leftover`]), so a
/// WebSocket can be run on a connection whose head was parsed here.
pub struct Replay<S> {
    pub prefix: io::Cursor<Vec<u8>>,
    pub inner: S,
}

impl<S: Read> Read for Replay<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if (self.prefix.position() as usize) < self.prefix.get_ref().len() {
            return self.prefix.read(buf);
        }
        self.inner.read(buf)
    }
}

impl<S: Write> Write for Replay<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn read(raw: &[u8], max: usize) -> Result<Request, ReadError> {
        read_request(&mut io::Cursor::new(raw.to_vec()), max)
    }

    #[test]
    fn reads_method_path_headers_and_body() {
        let r = read(
            b"POST /notify/web?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer s\r\nContent-Length: 3\r\n\r\nabcEXTRA",
            100,
        )
        .unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/notify/web");
        assert_eq!(r.header("authorization"), Some("Bearer s"));
        assert_eq!(r.body.as_deref(), Some(&b"abc"[..]));
        assert_eq!(r.leftover, b"EXTRA");
    }

    #[test]
    fn oversized_bodies_are_not_read() {
        let r = read(
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789",
            4,
        )
        .unwrap();
        assert!(r.body.is_none());
    }

    #[test]
    fn garbage_and_odd_framing_are_refused() {
        for raw in [
            &b"\x00\x01\x02 nonsense\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
        ] {
            assert!(
                matches!(read(raw, 100), Err(ReadError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        assert!(matches!(
            read(b"GET / HTTP/1.1\r\n", 10),
            Err(ReadError::Io(_))
        ));
    }

    #[test]
    fn chunked_bodies_are_read_and_bounded() {
        let r = read(
            b"POST /v1/poke/x HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n\
              4;ext=1\r\n{\"re\r\na\r\nason\":\"x\"}\r\n0\r\nX-Trailer: y\r\n\r\nNEXT",
            100,
        )
        .unwrap();
        assert_eq!(r.body.as_deref(), Some(&br#"{"reason":"x"}"#[..]));
        assert_eq!(r.leftover, b"NEXT");
        let r = read(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n",
            10,
        )
        .unwrap();
        assert!(r.body.is_none(), "over the limit: not read");
        assert!(matches!(
            read(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
                10
            ),
            Err(ReadError::Malformed(_))
        ));
    }

    #[test]
    fn a_trickling_request_is_cut_off_at_the_deadline() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let writer = std::thread::spawn(move || {
            // One byte every 50 ms: each read waits well under any per-read timeout.
            for b in b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" {
                if client.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let started = Instant::now();
        let result = read_request_until(&server, 10, started + Duration::from_millis(400));
        let took = started.elapsed();
        assert!(
            matches!(&result, Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::TimedOut),
            "{result:?}"
        );
        assert!(took < Duration::from_millis(700), "{took:?}");
        drop(server);
        let _ = writer.join();
    }

    #[test]
    fn responses_are_complete() {
        let mut out = Vec::new();
        respond_text(&mut out, 202, "accepted").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 202 Accepted\r\n"));
        assert!(text.contains("Content-Length: 8\r\n"));
        assert!(text.ends_with("\r\n\r\naccepted"));
    }
}
