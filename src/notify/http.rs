//! Sending [`HttpRequest`]s with the notifier's one `ureq::Agent`, each bounded by the target's
//! deadline, and judging the answer. Redirects are not followed (a token header must never
//! reach another host); a redirect is reported with its target redacted.

use std::io::Read as _;
use std::time::{Duration, Instant};

use super::services::{Check, HttpRequest, Method};
use super::url::redact;

/// Error bodies are read up to this many bytes and quoted up to 200 characters.
const BODY_LIMIT: u64 = 64 * 1024;

/// The agent: no status-as-error, no redirects, no proxy surprises beyond ureq's env handling,
/// the system CA bundle when there is one (as the registry client does).
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    let mut builder = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout))
        .user_agent(concat!("pullpilot/", env!("CARGO_PKG_VERSION")));
    if let Some(ders) = crate::tls::system_ders() {
        let certs: Vec<_> = ders
            .iter()
            .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
            .collect();
        builder = builder.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build(),
        );
    }
    builder.build().new_agent()
}

/// Why one request failed. The text may quote the server; callers scrub it.
#[derive(Debug)]
pub(crate) struct SendError {
    pub(crate) text: String,
    /// Another attempt could succeed: the connection failed before an answer (refused, reset),
    /// or the server answered 429 or 5xx. A timeout is not transient here: it used the budget.
    pub(crate) transient: bool,
}

/// Sends one request before `deadline`.
pub(crate) fn send(
    agent: &ureq::Agent,
    req: &HttpRequest,
    deadline: Instant,
) -> Result<(), SendError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(SendError {
            text: "no time left before the timeout".into(),
            transient: false,
        });
    }
    let mut builder = match req.method {
        Method::Post => agent.post(&req.url),
        Method::Put => agent.put(&req.url),
        Method::Patch => agent.patch(&req.url),
    };
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    let builder = builder
        .config()
        .timeout_global(Some(remaining))
        .timeout_connect(Some(remaining))
        .build();
    let mut response = builder.send(&req.body[..]).map_err(|e| SendError {
        text: describe(&e, remaining),
        transient: matches!(e, ureq::Error::Io(_) | ureq::Error::ConnectionFailed),
    })?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(redact);
    let mut body = Vec::new();
    let _ = response
        .body_mut()
        .as_reader()
        .take(BODY_LIMIT)
        .read_to_end(&mut body);
    let text = String::from_utf8_lossy(&body);
    judge(status, location.as_deref(), &text, req.check).map_err(|text| SendError {
        text,
        transient: status == 429 || status >= 500,
    })
}

fn describe(err: &ureq::Error, remaining: Duration) -> String {
    match err {
        ureq::Error::Timeout(_) => format!(
            "no answer within {}",
            crate::values::format_millis(remaining)
        ),
        other => other.to_string(),
    }
}

/// The verdict on an answer, as an error that names the status and quotes the body briefly.
pub(crate) fn judge(
    status: u16,
    location: Option<&str>,
    body: &str,
    check: Check,
) -> Result<(), String> {
    let quoted = quote(body);
    if (300..400).contains(&status) {
        return Err(format!(
            "answered {status} (redirect to {}); use the final URL",
            location.unwrap_or("an unknown location")
        ));
    }
    if !(200..300).contains(&status) {
        return Err(format!("answered {status}{quoted}"));
    }
    match check {
        Check::Status => Ok(()),
        Check::SlackWebhook => match body.trim() {
            "" | "ok" => Ok(()),
            _ => Err(format!("answered {status}{quoted}")),
        },
        Check::JsonOk => {
            let ok = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("ok").and_then(serde_json::Value::as_bool));
            if ok == Some(true) {
                Ok(())
            } else {
                Err(format!("answered {status} without \"ok\": true{quoted}"))
            }
        }
    }
}

/// `: "first 200 characters"` on one line, or nothing for an empty body.
fn quote(body: &str) -> String {
    let one_line: String = body
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    if one_line.is_empty() {
        String::new()
    } else {
        format!(": {one_line:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert!(judge(204, None, "", Check::Status).is_ok());
        assert!(judge(200, None, "ok", Check::SlackWebhook).is_ok());
        assert!(judge(200, None, "", Check::SlackWebhook).is_ok());
        let e = judge(200, None, "invalid_payload", Check::SlackWebhook).unwrap_err();
        assert!(e.contains("invalid_payload"), "{e}");
        assert!(judge(200, None, r#"{"ok":true,"result":{}}"#, Check::JsonOk).is_ok());
        let e = judge(
            200,
            None,
            r#"{"ok":false,"error":"channel_not_found"}"#,
            Check::JsonOk,
        )
        .unwrap_err();
        assert!(e.contains("channel_not_found"), "{e}");
        let e = judge(500, None, "boom\n  at line 2", Check::Status).unwrap_err();
        assert_eq!(e, "answered 500: \"boom at line 2\"");
        let e = judge(301, Some("https://other.example/…"), "", Check::Status).unwrap_err();
        assert!(e.contains("https://other.example/…"), "{e}");
        assert_eq!(
            judge(404, None, "", Check::Status).unwrap_err(),
            "answered 404"
        );
    }
}
