//! The relay's HTTP side: one request per connection, routed on the path alone like the
//! public relay's Worker.
//!
//! | route | answer |
//! |---|---|
//! | `/healthz` | 200 `ok` |
//! | `/version` | 200 `{"version":…}` |
//! | `/v1/provision` | POST → 201 `{webhookId,pokeUrl,listenUrl,ttlDays}`; 405/429/400 `{"error":…}`; 429 `too_many_registrations` (per network), 503 `relay_full` |
//! | `/v1/listen/<id>` | `Upgrade: websocket` (any case) → 101 and the socket protocol; else 426; unknown id 404 |
//! | `/v1/poke/<id>` | POST or GET → 202 `{"status":"accepted"}`; 405, 404, 429 |
//! | anything else | 404 `not found` |

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use serde_json::{Value, json};

use super::Relay;
use super::room::{PokeResult, lock};
use super::store::{self, Record, short_id};
use crate::error::Failure;
use crate::webhook::admission::{self, Slot};
use crate::webhook::http::{self, ReadError, Request};
use crate::webhook::protocol::{self, Provisioned};

/// How long a client may take to send its whole request (head and body), however it trickles.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Bodies up to this size are read (and then judged against `MAX_BODY_BYTES`); larger ones
/// are refused unread.
const READ_LIMIT: usize = 64 * 1024;

enum Route<'a> {
    Health,
    Version,
    Provision,
    Listen(&'a str),
    Poke(&'a str),
    NotFound,
}

fn route(path: &str) -> Route<'_> {
    let id_after = |prefix: &str| {
        path.strip_prefix(prefix)
            .filter(|id| !id.is_empty() && !id.contains('/'))
    };
    match path {
        "/healthz" => Route::Health,
        "/version" => Route::Version,
        "/v1/provision" => Route::Provision,
        _ => {
            if let Some(id) = id_after("/v1/listen/") {
                Route::Listen(id)
            } else if let Some(id) = id_after("/v1/poke/") {
                Route::Poke(id)
            } else {
                Route::NotFound
            }
        }
    }
}

/// Serves one connection: a request and its answer, or a WebSocket for its whole life. The
/// slot is the connection's place in the relay's limits, given back when this returns.
pub(crate) fn serve(relay: &Arc<Relay>, mut stream: TcpStream, peer: SocketAddr, mut slot: Slot) {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let request = match http::read_request_until(&stream, READ_LIMIT, deadline) {
        Ok(request) => request,
        Err(ReadError::Malformed(why)) => {
            let _ = http::respond_text(&mut stream, 400, why);
            finish(stream);
            return;
        }
        Err(ReadError::Io(_)) => return,
    };
    let mut out = Vec::new();
    let _ = match route(&request.path) {
        Route::Health => http::respond_text(&mut out, 200, "ok"),
        Route::Version => http::respond_json(
            &mut out,
            200,
            &json!({ "version": env!("CARGO_PKG_VERSION") }),
        ),
        Route::Provision => {
            let (status, body) = provision(relay, &request, peer.ip());
            http::respond_json(&mut out, status, &body)
        }
        Route::Listen(id) => {
            let id = id.to_string();
            // Past its request: a listener no longer counts against its client's share.
            slot.request_read();
            listen(relay, stream, request, &id);
            return;
        }
        Route::Poke(id) => poke(relay, &mut out, &request, id),
        Route::NotFound => http::respond_text(&mut out, 404, "not found"),
    };
    if request.method == "HEAD" {
        // The head alone, Content-Length included, as HTTP wants for HEAD.
        let head_end = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(out.len(), |i| i + 4);
        out.truncate(head_end);
    }
    if stream.write_all(&out).is_ok() {
        finish(stream);
    }
}

/// Closes after an answer without losing it: stop writing, read what the client still sends
/// (an unread body would otherwise turn the close into a reset), then drop. At most 2 s in
/// all, so a client trickling bytes after its answer cannot keep the thread.
fn finish(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let until = Instant::now() + Duration::from_secs(2);
    let mut sink = [0u8; 4096];
    let mut left = 4 * READ_LIMIT;
    loop {
        let wait = until.saturating_duration_since(Instant::now());
        if wait.is_zero() || stream.set_read_timeout(Some(wait)).is_err() {
            break;
        }
        match stream.read(&mut sink) {
            Ok(n @ 1..) => {
                left = left.saturating_sub(n);
                if left == 0 {
                    break;
                }
            }
            _ => break,
        }
    }
}

/// Answers 503 without a thread of its own, for connections over the cap.
pub(crate) fn refuse_busy(stream: &mut TcpStream) {
    admission::refuse(
        stream,
        503,
        "text/plain; charset=utf-8",
        b"the relay is busy; try again soon",
    );
}

/// Answers 429 without a thread of its own, for a client over its share of connections.
pub(crate) fn refuse_too_many(stream: &mut TcpStream) {
    admission::refuse(
        stream,
        429,
        "text/plain; charset=utf-8",
        b"too many connections from your address; finish or close the others",
    );
}

fn error(status: u16, code: &str) -> (u16, Value) {
    (status, json!({ "error": code }))
}

fn provision(relay: &Relay, request: &Request, peer: IpAddr) -> (u16, Value) {
    if request.method != "POST" {
        return error(405, "method_not_allowed");
    }
    let ip = client_ip(peer, request.header("x-forwarded-for"));
    let network = admission::client_network(ip).to_string();
    if !lock(&relay.provisions).admit(&network, Instant::now()) {
        log::debug!("Refused a provision from {ip}: over 10 a minute.");
        return error(429, "rate_limited");
    }
    let body = match &request.body {
        Some(body) if body.len() <= protocol::MAX_BODY_BYTES => body,
        _ => return error(400, "body_too_large"),
    };
    let (pubkey, label) = match parse_provision(body) {
        Ok(parsed) => parsed,
        Err(code) => return error(400, code),
    };
    let id = store::new_webhook_id();
    let mut record = Record::new(pubkey, label.clone(), SystemTime::now());
    record.network = Some(network.clone());
    let added = relay.with_store(|s| {
        if s.count_for(&network) >= relay.cfg.max_per_network {
            return Err(Refused::Network);
        }
        if s.len() >= relay.cfg.max_registrations {
            return Err(Refused::Full(s.len()));
        }
        s.insert_journaled(id.clone(), record)
            .map_err(Refused::Storage)
    });
    match added {
        Ok(()) => {}
        Err(Refused::Full(count)) => {
            log::warn!(
                "Refused a provision from {ip}: the relay holds {count} registrations, its \
                 limit (raise --max-registrations, or lower --prune-after)."
            );
            return error(503, "relay_full");
        }
        Err(Refused::Network) => {
            log::info!(
                "Refused a provision from {ip}: {network} already has {} registrations (see \
                 --max-registrations-per-network).",
                relay.cfg.max_per_network
            );
            return error(429, "too_many_registrations");
        }
        Err(Refused::Storage(e)) => {
            log::error!("Could not save a new registration ({e:#}); check the state directory.");
            return error(500, "storage_failed");
        }
    }
    let (http_origin, ws_origin) = origins(
        relay.cfg.public_url.as_deref(),
        request.header("host"),
        forwarded(peer, request.header("x-forwarded-proto")),
        &relay.cfg.local.to_string(),
    );
    log::info!(
        "Provisioned webhook {} (label {}) for {ip}.",
        short_id(&id),
        label
            .as_deref()
            .map_or("none".to_string(), |l| format!("{l:?}"))
    );
    let answer = Provisioned {
        poke_url: format!("{http_origin}/v1/poke/{id}"),
        listen_url: format!("{ws_origin}/v1/listen/{id}"),
        ttl_days: relay.cfg.prune_after.as_secs() / 86_400,
        webhook_id: id,
    };
    (
        201,
        serde_json::to_value(answer).expect("the answer always serialises"),
    )
}

/// Why a provision was not stored.
enum Refused {
    /// The relay holds this many registrations, its limit.
    Full(usize),
    /// The client network holds its share.
    Network,
    Storage(anyhow::Error),
}

/// The provision body's public key (canonical base64url) and label, or the error code.
fn parse_provision(body: &[u8]) -> Result<(String, Option<String>), &'static str> {
    let value: Value = serde_json::from_slice(body).map_err(|_| "invalid_json")?;
    let pubkey = match value.get("pubkey") {
        Some(Value::String(key)) if !key.is_empty() => key,
        _ => return Err("missing_pubkey"),
    };
    // Like the reference, padding and the standard alphabet are tolerated; stored canonical.
    let normalised: String = pubkey
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    protocol::check_public_key(&normalised)?;
    let bytes = protocol::b64url_decode(&normalised).ok_or("invalid_pubkey_encoding")?;
    let label = match value.get("label") {
        Some(Value::String(label)) => Some(label.chars().take(256).collect()),
        _ => None,
    };
    Ok((protocol::b64url(&bytes), label))
}

/// The client's address for limits: the peer, or, when the peer is a reverse proxy on this
/// machine, the last `X-Forwarded-For` entry: the one that proxy appended itself. Entries
/// before it come from the client and can say anything.
fn client_ip(peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
    forwarded(peer, forwarded_for)
        .and_then(|list| list.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .unwrap_or(peer)
}

/// A forwarding header's value, trusted only from a loopback peer (a local reverse proxy).
fn forwarded(peer: IpAddr, value: Option<&str>) -> Option<&str> {
    let loopback = match peer {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    value.filter(|_| loopback)
}

/// The http(s) and ws(s) origins for the URLs handed out: `--public-url` when set, else the
/// Host header with the scheme from a trusted `X-Forwarded-Proto` (default http).
fn origins(
    public_url: Option<&str>,
    host: Option<&str>,
    forwarded_proto: Option<&str>,
    local: &str,
) -> (String, String) {
    if let Some(url) = public_url {
        if let Some(rest) = url.strip_prefix("http://") {
            return (format!("http://{rest}"), format!("ws://{rest}"));
        }
        let rest = url.strip_prefix("https://").unwrap_or(url);
        return (format!("https://{rest}"), format!("wss://{rest}"));
    }
    let host = host.filter(|h| is_host(h)).unwrap_or(local);
    let https = forwarded_proto
        .and_then(|p| p.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    if https {
        (format!("https://{host}"), format!("wss://{host}"))
    } else {
        (format!("http://{host}"), format!("ws://{host}"))
    }
}

/// A Host header that can go into a URL as it is.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
}

/// Checks `--public-url`: an http(s) URL without query or fragment; trailing slashes go.
pub(crate) fn parse_public_url(text: &str) -> Result<String> {
    let trimmed = text.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.contains(['?', '#', ' ']) => {
            Ok(trimmed.to_string())
        }
        _ => Err(Failure::usage(format!(
            "--public-url {text:?} is not an http:// or https:// URL; give the address clients \
             use, such as https://relay.example.org"
        ))),
    }
}

fn listen(relay: &Arc<Relay>, mut stream: TcpStream, request: Request, id: &str) {
    // Case-insensitive, as RFC 6455 §4.2.1 wants (the reference Worker is not).
    if !request
        .header("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
    {
        let _ = http::respond_text(&mut stream, 426, "expected websocket upgrade");
        finish(stream);
        return;
    }
    if !relay.is_known(id) {
        let _ = http::respond_text(&mut stream, 404, "unknown webhook");
        finish(stream);
        return;
    }
    let Some(key) = request.header("sec-websocket-key") else {
        let _ = http::respond_text(&mut stream, 400, "missing Sec-WebSocket-Key header");
        finish(stream);
        return;
    };
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        tungstenite::handshake::derive_accept_key(key.as_bytes())
    );
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    super::socket::serve(relay, id, stream, request.leftover);
}

fn poke(relay: &Relay, out: &mut Vec<u8>, request: &Request, id: &str) -> std::io::Result<()> {
    if request.method != "POST" && request.method != "GET" {
        return http::respond_json(out, 405, &json!({ "error": "method_not_allowed" }));
    }
    let Some(room) = relay.room(id) else {
        return http::respond_text(out, 404, "unknown webhook");
    };
    let reason = if request.method == "POST"
        && request
            .header("content-type")
            .is_some_and(|t| t.contains("application/json"))
    {
        request.body.as_deref().and_then(reason_from_body)
    } else {
        None
    };
    let result = {
        let mut room = lock(&room);
        let result = room.poke(reason, Instant::now());
        if result != PokeResult::Limited {
            relay.with_store(|s| s.touch(id, SystemTime::now()));
        }
        if result == PokeResult::NoListener && relay.set_pending(id, true) {
            log::debug!(
                "Webhook {} poked with no listener; kept as pending.",
                short_id(id)
            );
        }
        result
    };
    match result {
        PokeResult::Limited => {
            log::debug!(
                "Webhook {} got over 100 pokes in 5 s; refused.",
                short_id(id)
            );
            return http::respond_json(out, 429, &json!({ "error": "rate_limited" }));
        }
        PokeResult::Deferred(due) => relay.schedule_delivery(due, id),
        PokeResult::Delivered => log::debug!("Delivered a poke for webhook {}.", short_id(id)),
        PokeResult::NoListener | PokeResult::Coalesced => {}
    }
    http::respond_json(out, 202, &json!({ "status": "accepted" }))
}

/// A poke body's `reason`: a string in a JSON object of at most 4096 bytes, cut to 256
/// characters; anything else is no reason.
fn reason_from_body(body: &[u8]) -> Option<String> {
    if body.len() > protocol::MAX_BODY_BYTES {
        return None;
    }
    match serde_json::from_slice::<Value>(body).ok()?.get("reason")? {
        Value::String(reason) => Some(reason.chars().take(protocol::MAX_REASON_CHARS).collect()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_strings_cut_to_256_characters() {
        let table: [(&[u8], Option<&str>); 6] = [
            (br#"{"reason":"new image"}"#, Some("new image")),
            (br#"{"reason":42}"#, None),
            (br#"{"other":"x"}"#, None),
            (b"not json", None),
            (br#"["reason"]"#, None),
            (br#"{"reason":""}"#, Some("")),
        ];
        for (body, want) in table {
            assert_eq!(reason_from_body(body).as_deref(), want, "{body:?}");
        }
        let long = format!(r#"{{"reason":"{}"}}"#, "é".repeat(300));
        assert_eq!(
            reason_from_body(long.as_bytes()).unwrap().chars().count(),
            256
        );
        let huge = format!(r#"{{"reason":"{}"}}"#, "x".repeat(5000));
        assert_eq!(reason_from_body(huge.as_bytes()), None);
    }

    #[test]
    fn provision_bodies_map_to_the_reference_error_codes() {
        let key = protocol::b64url(&[3; 32]);
        let table = [
            ("{", Err("invalid_json")),
            ("{}", Err("missing_pubkey")),
            (r#"{"pubkey":""}"#, Err("missing_pubkey")),
            (r#"{"pubkey":7}"#, Err("missing_pubkey")),
            (r#"{"pubkey":"!!!"}"#, Err("invalid_pubkey_encoding")),
            (r#"{"pubkey":"AAAA"}"#, Err("invalid_pubkey_length")),
        ];
        for (body, want) in table {
            assert_eq!(parse_provision(body.as_bytes()), want, "{body}");
        }
        let body = format!(r#"{{"pubkey":"{key}=","label":"{}"}}"#, "l".repeat(300));
        let (pubkey, label) = parse_provision(body.as_bytes()).unwrap();
        assert_eq!(pubkey, key);
        assert_eq!(label.unwrap().len(), 256);
        let body = format!(r#"{{"pubkey":"{key}","label":5}}"#);
        assert_eq!(parse_provision(body.as_bytes()).unwrap().1, None);
    }

    #[test]
    fn forwarding_headers_count_only_from_loopback() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let remote: IpAddr = "203.0.113.9".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // The proxy appends the address it saw: the last entry. The first is the client's word.
        assert_eq!(
            client_ip(local, Some("198.51.100.1, 10.0.0.1")),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip(local, Some("6.6.6.6,198.51.100.1")),
            ip("198.51.100.1")
        );
        assert_eq!(client_ip(mapped, Some("198.51.100.1")), ip("198.51.100.1"));
        assert_eq!(client_ip(local, Some("2001:db8::1")), ip("2001:db8::1"));
        assert_eq!(client_ip(local, None), local);
        assert_eq!(client_ip(local, Some(" ")), local);
        assert_eq!(client_ip(local, Some("1.2.3.4, junk")), local);
        assert_eq!(client_ip(remote, Some("198.51.100.1")), remote);
        assert_eq!(forwarded(remote, Some("https")), None);
        assert_eq!(forwarded(local, Some("https")), Some("https"));
    }

    #[test]
    fn origins_come_from_the_public_url_or_the_request() {
        let local = "127.0.0.1:8080";
        let table = [
            (
                Some("https://relay.example.org"),
                None,
                None,
                "https://relay.example.org",
                "wss://relay.example.org",
            ),
            (
                Some("http://10.0.0.2:8080/relay"),
                Some("x"),
                Some("https"),
                "http://10.0.0.2:8080/relay",
                "ws://10.0.0.2:8080/relay",
            ),
            (
                None,
                Some("relay.lan:8080"),
                None,
                "http://relay.lan:8080",
                "ws://relay.lan:8080",
            ),
            (
                None,
                Some("relay.lan"),
                Some("https"),
                "https://relay.lan",
                "wss://relay.lan",
            ),
            (
                None,
                Some("evil/path?"),
                None,
                "http://127.0.0.1:8080",
                "ws://127.0.0.1:8080",
            ),
            (
                None,
                None,
                Some("http"),
                "http://127.0.0.1:8080",
                "ws://127.0.0.1:8080",
            ),
        ];
        for (public, host, proto, http_origin, ws_origin) in table {
            assert_eq!(
                origins(public, host, proto, local),
                (http_origin.to_string(), ws_origin.to_string()),
                "{public:?} {host:?} {proto:?}"
            );
        }
    }

    #[test]
    fn public_urls_lose_trailing_slashes_and_must_be_http() {
        assert_eq!(
            parse_public_url("https://relay.example.org/").unwrap(),
            "https://relay.example.org"
        );
        assert_eq!(parse_public_url("http://h:1//").unwrap(), "http://h:1");
        for bad in ["relay.example.org", "ftp://x", "https://", "https://x?y"] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_match_on_the_path_alone() {
        assert!(matches!(route("/healthz"), Route::Health));
        assert!(matches!(route("/version"), Route::Version));
        assert!(matches!(route("/v1/provision"), Route::Provision));
        assert!(matches!(route("/v1/listen/wh_1"), Route::Listen("wh_1")));
        assert!(matches!(route("/v1/poke/wh_1"), Route::Poke("wh_1")));
        for other in ["/", "/v1/poke/", "/v1/poke/a/b", "/v1/listen", "/healthz/"] {
            assert!(matches!(route(other), Route::NotFound), "{other}");
        }
    }
}
