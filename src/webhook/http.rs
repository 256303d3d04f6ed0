//! Just enough HTTP/1.1 for the local receiver and the relay: one request per connection
//! (`Connection: close`), bodies by `Content-Length`, bounded head and body sizes. Requests that
//! upgrade to WebSocket keep any bytes read past the head in [`Request::leftover`].

use std::io::{self, Read, Write};

/// Largest request head accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 48;

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
    let mut rest = buf.split_off(head_len);
    let mut request = Request {
        method,
        path,
        headers,
        body: Some(Vec::new()),
        leftover: Vec::new(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"))
    {
        return Err(ReadError::Malformed("chunked bodies are not supported"));
    }
    let length = match request.header("content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ReadError::Malformed("bad Content-Length"))?,
    };
    if length > max_body {
        request.body = None;
        return Ok(request);
    }
    while rest.len() < length {
        let n = stream.read(&mut chunk).map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        rest.extend_from_slice(&chunk[..n]);
    }
    request.leftover = rest.split_off(length);
    request.body = Some(rest);
    Ok(request)
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
    fn garbage_and_chunked_are_refused() {
        assert!(matches!(
            read(b"\x00\x01\x02 nonsense\r\n\r\n", 10),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            read(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 10),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            read(b"GET / HTTP/1.1\r\n", 10),
            Err(ReadError::Io(_))
        ));
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
