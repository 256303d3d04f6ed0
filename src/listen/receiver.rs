//! `listen --http ADDR`: a local webhook receiver for hosts that can expose a port.
//!
//! - `GET /health` → 200, no secret needed.
//! - `POST /notify` and `POST /notify/SERVICE` with `Authorization: Bearer <PP_WEBHOOK_SECRET>`
//!   → 202 and a (debounced) pass, narrowed to SERVICE when one is named.
//! - A missing or wrong secret → 401, and nothing is queued.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde_json::json;

use super::Wake;
use crate::webhook::admission::{self, AcceptBackoff, ConnLimits, Refusal};
use crate::webhook::http::{self, ReadError};
use crate::webhook::protocol::secrets_equal;

/// How long a caller may take to send its whole request (head and body), however it trickles.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests handled at once; more are turned away with 503.
const MAX_CONCURRENT: usize = 64;
/// Requests handled at once for one client (IPv4 address or IPv6 /64); more get 429, so a
/// client holding connections open without finishing its request cannot starve the others.
const MAX_PER_CLIENT: usize = 8;
const MAX_BODY: usize = 64 * 1024;

/// Binds `addr` (so a bad address fails at start) and serves on a thread.
pub(super) fn start(addr: SocketAddr, secret: String, events: Sender<Wake>) -> Result<SocketAddr> {
    let listener = TcpListener::bind(addr).with_context(|| {
        format!("listening on {addr} for webhook calls (is another program using it? choose another with --http)")
    })?;
    let bound = listener.local_addr()?;
    let secret = Arc::new(secret);
    let limits = ConnLimits::new(MAX_CONCURRENT, MAX_PER_CLIENT);
    std::thread::Builder::new()
        .name("receiver".into())
        .spawn(move || {
            let mut backoff = AcceptBackoff::default();
            loop {
                let (mut stream, peer) = match listener.accept() {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        backoff.on_error("webhook receiver", &e);
                        continue;
                    }
                };
                backoff.succeeded();
                let slot = match limits.admit(peer.ip()) {
                    Ok(slot) => slot,
                    Err(refusal) => {
                        let (status, error) = match refusal {
                            Refusal::Full => (503, "busy"),
                            Refusal::PerClient => (429, "too_many_connections"),
                        };
                        let body = json!({ "error": error }).to_string();
                        admission::refuse(&mut stream, status, "application/json", body.as_bytes());
                        continue;
                    }
                };
                let (secret, events) = (secret.clone(), events.clone());
                let spawned = std::thread::Builder::new()
                    .name("receiver-conn".into())
                    .spawn(move || {
                        handle(stream, &secret, &events);
                        drop(slot);
                    });
                if spawned.is_err() {
                    log::warn!("Could not start a thread for a webhook call; it was dropped.");
                }
            }
        })
        .context("starting the webhook receiver thread")?;
    Ok(bound)
}

fn handle(mut stream: TcpStream, secret: &str, events: &Sender<Wake>) {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let request = match http::read_request_until(&stream, MAX_BODY, deadline) {
        Ok(r) => r,
        Err(ReadError::Io(_)) => return,
        Err(ReadError::Malformed(why)) => {
            let _ = http::respond_json(&mut stream, 400, &json!({ "error": why }));
            return;
        }
    };
    let (status, body) = route(&request, secret, events, &peer);
    let _ = http::respond_json(&mut stream, status, &body);
    let _ = stream.flush();
}

fn route(
    request: &http::Request,
    secret: &str,
    events: &Sender<Wake>,
    peer: &str,
) -> (u16, serde_json::Value) {
    let path = request.path.as_str();
    if path == "/health" {
        return if request.method == "GET" || request.method == "HEAD" {
            (200, json!({"status": "ok"}))
        } else {
            (405, json!({"error": "method_not_allowed"}))
        };
    }
    let service = if path == "/notify" || path == "/notify/" {
        None
    } else if let Some(name) = path.strip_prefix("/notify/") {
        Some(name.to_string())
    } else {
        return (404, json!({"error": "not_found"}));
    };
    if request.method != "POST" {
        return (405, json!({"error": "method_not_allowed"}));
    }
    let given = request
        .header("authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .unwrap_or_default();
    if given.is_empty() || !secrets_equal(given.trim().as_bytes(), secret.as_bytes()) {
        log::warn!(
            "Refused a webhook call from {peer}: {} secret (send `Authorization: Bearer <PP_WEBHOOK_SECRET>`).",
            if given.is_empty() { "no" } else { "wrong" }
        );
        return (401, json!({"error": "unauthorized"}));
    }
    if let Some(name) = &service
        && !valid_service(name)
    {
        return (
            400,
            json!({"error": "invalid_service", "detail": "service names use letters, digits, '.', '_' and '-'"}),
        );
    }
    match &service {
        Some(name) => log::info!("Webhook call from {peer} for service {name}."),
        None => log::info!("Webhook call from {peer}."),
    }
    if events.send(Wake::Poke { service }).is_err() {
        return (503, json!({"error": "shutting_down"}));
    }
    (202, json!({"status": "accepted"}))
}

/// Compose service and container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 128 characters.
fn valid_service(name: &str) -> bool {
    name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn request(method: &str, path: &str, auth: Option<&str>) -> http::Request {
        http::Request {
            method: method.into(),
            path: path.into(),
            headers: auth
                .map(|a| vec![("Authorization".to_string(), a.to_string())])
                .unwrap_or_default(),
            body: Some(Vec::new()),
            leftover: Vec::new(),
        }
    }

    #[test]
    fn routes_and_secrets() {
        let (tx, rx) = mpsc::channel();
        let call = |m, p, a| route(&request(m, p, a), "s3cret", &tx, "peer").0;
        assert_eq!(call("GET", "/health", None), 200);
        assert_eq!(call("POST", "/notify", None), 401);
        assert_eq!(call("POST", "/notify", Some("Bearer nope")), 401);
        assert_eq!(call("POST", "/notify", Some("s3cret")), 401);
        assert!(rx.try_recv().is_err(), "refused calls queue nothing");
        assert_eq!(call("POST", "/notify", Some("Bearer s3cret")), 202);
        assert!(matches!(rx.try_recv(), Ok(Wake::Poke { service: None })));
        assert_eq!(call("POST", "/notify/web", Some("Bearer s3cret")), 202);
        assert!(matches!(rx.try_recv(), Ok(Wake::Poke { service: Some(s) }) if s == "web"));
        assert_eq!(call("POST", "/notify/../etc", Some("Bearer s3cret")), 400);
        assert_eq!(call("GET", "/notify", Some("Bearer s3cret")), 405);
        assert_eq!(call("POST", "/other", Some("Bearer s3cret")), 404);
        assert!(rx.try_recv().is_err());
    }
}
