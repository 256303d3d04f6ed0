//! A loopback HTTP proxy in front of a test-bed registry that injects faults on request.
//!
//! Docker pulls through it (so images carry the proxy's `host:port` in their names) and
//! pullpilot checks through it; rules then make chosen requests fail the way real registries
//! do: a status with `Retry-After`, a missing or lying `Docker-Content-Digest`, a dropped
//! connection, a stall, or a body cut off before its announced length. Every request is recorded. One request per connection
//! (`Connection: close` both ways) keeps it simple; registries and Docker handle that fine.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What to do to a matching request.
#[derive(Clone, Debug)]
pub(crate) enum Fault {
    /// Answer with this status and no body; `retry_after` adds the header (seconds).
    Status { code: u16, retry_after: Option<u32> },
    /// Forward, but drop `Docker-Content-Digest` from the response.
    StripDigest,
    /// Forward, but replace `Docker-Content-Digest` with this value.
    LieDigest(String),
    /// Close the connection without answering.
    Close,
    /// Wait this long before forwarding.
    Stall(Duration),
    /// Forward, but send only the first half of the body the headers announce (their
    /// `Content-Length` unchanged), then close: a body cut off mid-transfer.
    Truncate,
    /// Answer a tag list (`GET …/tags/list?n=N&last=T`) in pages of `n` (default 100) with a
    /// `Link: <…>; rel="next"` header, cut from the upstream's whole list, as distribution 3
    /// and most hosted registries do (the bed's Debian registry 2.8 sends the whole list).
    PaginateTags,
}

#[derive(Clone, Debug)]
struct Rule {
    method: Option<String>,
    path_contains: String,
    fault: Fault,
    /// How many more requests it applies to; `None` = all.
    remaining: Option<usize>,
}

struct Shared {
    rules: Mutex<Vec<Rule>>,
    requests: Mutex<Vec<String>>,
    stopped: AtomicBool,
}

pub(crate) struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 (a free port) forwarding to `upstream` (`host:port`).
    pub(crate) fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the fault proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            rules: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
        });
        let upstream = upstream.to_string();
        let accept_shared = Arc::clone(&shared);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&accept_shared);
                let upstream = upstream.clone();
                thread::spawn(move || {
                    let _ = serve(stream, &upstream, &shared);
                });
            }
        });
        FaultProxy { addr, shared }
    }

    /// `127.0.0.1:<port>`, to use as the registry host in image names.
    pub(crate) fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Applies `fault` to requests whose path contains `path_contains` (and whose method is
    /// `method`, if given), for the next `times` requests or forever.
    pub(crate) fn add(
        &self,
        method: Option<&str>,
        path_contains: &str,
        fault: Fault,
        times: Option<usize>,
    ) {
        self.shared.rules.lock().unwrap().push(Rule {
            method: method.map(str::to_string),
            path_contains: path_contains.to_string(),
            fault,
            remaining: times,
        });
    }

    pub(crate) fn clear(&self) {
        self.shared.rules.lock().unwrap().clear();
        self.shared.requests.lock().unwrap().clear();
    }

    /// Every request seen, as `METHOD /path`.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// How many requests start with `prefix` (e.g. `HEAD /v2/x/manifests/`).
    pub(crate) fn count(&self, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn take_fault(shared: &Shared, method: &str, path: &str) -> Option<Fault> {
    let mut rules = shared.rules.lock().unwrap();
    let rule = rules.iter_mut().find(|r| {
        r.method.as_deref().is_none_or(|m| m == method)
            && path.contains(&r.path_contains)
            && r.remaining != Some(0)
    })?;
    if let Some(n) = rule.remaining.as_mut() {
        *n -= 1;
    }
    Some(rule.fault.clone())
}

fn serve(client: TcpStream, upstream: &str, shared: &Shared) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    // Clients that try HTTPS first (containerd's resolver) fall back to plain HTTP only when
    // their TLS hello gets an HTTP answer, which is what the registry itself (Go) sends.
    if reader.fill_buf()?.first() == Some(&0x16) {
        let mut client = client;
        client.write_all(
            b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        )?;
        return client.shutdown(Shutdown::Both);
    }
    let mut head = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
            if name.eq_ignore_ascii_case("connection") {
                continue;
            }
        }
        head.push(line);
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body)?;
    let request_line = head.first().cloned().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    shared
        .requests
        .lock()
        .unwrap()
        .push(format!("{method} {path}"));

    let mut client = client;
    let fault = take_fault(shared, &method, &path);
    match &fault {
        Some(Fault::Status { code, retry_after }) => {
            let extra = retry_after
                .map(|s| format!("Retry-After: {s}\r\n"))
                .unwrap_or_default();
            let reply = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nConnection: close\r\n{extra}\r\n"
            );
            client.write_all(reply.as_bytes())?;
            return client.shutdown(Shutdown::Both);
        }
        Some(Fault::Close) => return client.shutdown(Shutdown::Both),
        Some(Fault::Stall(d)) => thread::sleep(*d),
        Some(Fault::PaginateTags) => {
            client.write_all(&paginated_tags(upstream, &path))?;
            return client.shutdown(Shutdown::Both);
        }
        _ => {}
    }

    let mut up = TcpStream::connect(upstream)?;
    let mut request = head.concat();
    request.push_str("Connection: close\r\n\r\n");
    up.write_all(request.as_bytes())?;
    up.write_all(&body)?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;

    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    let (resp_head, resp_body) = response.split_at(split);
    let mut out = String::new();
    for line in String::from_utf8_lossy(resp_head).split_inclusive("\r\n") {
        let is_digest = line
            .to_ascii_lowercase()
            .starts_with("docker-content-digest:");
        match (&fault, is_digest) {
            (Some(Fault::StripDigest), true) => {}
            (Some(Fault::LieDigest(value)), true) => {
                let _ = write!(out, "Docker-Content-Digest: {value}\r\n");
            }
            _ => out.push_str(line),
        }
    }
    client.write_all(out.as_bytes())?;
    let resp_body = match fault {
        Some(Fault::Truncate) => &resp_body[..resp_body.len() / 2],
        _ => resp_body,
    };
    client.write_all(resp_body)?;
    client.flush()?;
    client.shutdown(Shutdown::Both)
}

/// One page of the upstream's tag list for `path` (`/v2/NAME/tags/list?n=…&last=…`), as a
/// whole HTTP response.
fn paginated_tags(upstream: &str, path: &str) -> Vec<u8> {
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let param = |key: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    let n: usize = param("n").and_then(|n| n.parse().ok()).unwrap_or(100);
    let text = ureq::get(&format!("http://{upstream}{base}"))
        .call()
        .expect("listing the upstream's tags")
        .body_mut()
        .read_to_string()
        .expect("reading the upstream's tag list");
    let mut all: serde_json::Value =
        serde_json::from_str(&text).expect("the upstream's tag list is JSON");
    let mut tags: Vec<String> = all["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    let start = param("last").map_or(0, |last| tags.partition_point(|t| *t <= last));
    let end = (start + n).min(tags.len());
    all["tags"] = serde_json::json!(tags[start..end]);
    let body = all.to_string();
    let link = if end < tags.len() {
        format!(
            "Link: <{base}?last={}&n={n}>; rel=\"next\"\r\n",
            tags[end - 1]
        )
    } else {
        String::new()
    };
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         {link}Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
