//! Send tests against loopback servers: every service's method, path, headers and body; SMTP
//! envelopes over plain, STARTTLS and implicit TLS; timeouts, failures and redaction.

use std::time::{Duration, Instant, UNIX_EPOCH};

use super::testserver::{HttpServer, SinkTls, SmtpSink, ca_der, silent_server};
use super::{Event, EventKind, Notifier, Overrides};
use jiff::tz::TimeZone;

pub(crate) fn sample_event(kind: EventKind) -> Event {
    Event {
        kind,
        container: "shop-web-1".into(),
        service: Some("web".into()),
        project: Some("shop".into()),
        image: "ghcr.io/acme/web:1.4".into(),
        from_digest: Some(format!("sha256:{}cdef", "0123456789ab".repeat(5))),
        from_tag: None,
        to_tag: None,
        to_digest: Some(format!("sha256:{}3210", "fedcba987654".repeat(5))),
        message: "Updated to the new image; healthy after 12s.".into(),
        at: UNIX_EPOCH + Duration::from_secs(1_735_689_600),
        rollout_at: None,
    }
}

const TIMEOUT: Duration = Duration::from_secs(5);
/// The waits between attempts in these tests (the real ones are 1 s and 3 s).
const RETRY_WAIT: Duration = Duration::from_millis(50);

fn notifier(urls: &[String], base: Option<&str>) -> Notifier {
    let overrides = Overrides {
        http_base: base.map(str::to_string),
        extra_roots: vec![ca_der()],
        retry_waits: Some(vec![RETRY_WAIT; 2]),
    };
    Notifier::with_overrides(urls, &TimeZone::UTC, TIMEOUT, overrides).unwrap()
}

fn one(url: String, base: Option<&str>) -> Notifier {
    notifier(&[url], base)
}

fn warnings(n: &Notifier) -> Vec<String> {
    n.warnings.lock().unwrap().clone()
}

#[test]
fn generic_posts_the_documented_json() {
    let server = HttpServer::start(200, "");
    let url = format!(
        "generic://127.0.0.1:{}/hook/abc?disabletls=yes&@xApiKey=k123&$env=prod&foo=bar&_title=t",
        server.port
    );
    let n = one(url, None);
    assert_eq!(
        n.send(&sample_event(EventKind::Updated)),
        1,
        "{:?}",
        warnings(&n)
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/hook/abc?foo=bar&title=t")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-api-key"), Some("k123"));
    assert!(r.header("user-agent").unwrap().starts_with("pullpilot/"));
    let body = r.json();
    assert_eq!(body["title"], "pullpilot: updated shop/web");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Updated to the new image")
    );
    assert_eq!(body["kind"], "updated");
    assert_eq!(body["container"], "shop-web-1");
    assert_eq!(body["service"], "web");
    assert_eq!(body["project"], "shop");
    assert_eq!(body["image"], "ghcr.io/acme/web:1.4");
    assert_eq!(
        body["from_digest"],
        sample_event(EventKind::Updated).from_digest.unwrap()
    );
    assert_eq!(
        body["to_digest"],
        sample_event(EventKind::Updated).to_digest.unwrap()
    );
    assert_eq!(body["time"], "2025-01-01T00:00:00Z");
    assert_eq!(body["rollout_at"], serde_json::Value::Null);
    assert_eq!(body["env"], "prod");
}

#[test]
fn generic_shortcut_forwards_the_query_and_sends_basic_auth() {
    let server = HttpServer::start(202, "");
    let url = format!(
        "generic+http://hook:pw@127.0.0.1:{}/in?token=abc&template=raw",
        server.port
    );
    let n = one(url, None);
    let mut ev = sample_event(EventKind::SoakEntered);
    ev.rollout_at = Some(ev.at + Duration::from_secs(3600));
    assert_eq!(n.send(&ev), 1, "{:?}", warnings(&n));
    let r = &server.requests()[0];
    assert_eq!(r.target, "/in?token=abc&template=raw");
    assert_eq!(r.header("authorization"), Some("Basic aG9vazpwdw=="));
    let body = r.json();
    assert_eq!(body["kind"], "soak_entered");
    assert_eq!(body["rollout_at"], "2025-01-01T01:00:00Z");
}

#[test]
fn generic_key_renames_and_method() {
    let server = HttpServer::start(200, "");
    let url = format!(
        "generic://127.0.0.1:{}/x?disabletls=yes&titlekey=subject&messagekey=content&method=put&title=Custom",
        server.port
    );
    let n = one(url, None);
    assert_eq!(n.send(&sample_event(EventKind::Failed)), 1);
    let r = &server.requests()[0];
    assert_eq!(r.method, "PUT");
    let body = r.json();
    assert_eq!(body["subject"], "Custom");
    assert!(body["content"].is_string());
    assert!(body.get("title").is_none() && body.get("message").is_none());
}

#[test]
fn slack_webhook_goes_to_services_path() {
    let server = HttpServer::start(200, "ok");
    let n = one(
        "slack://Bot@T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX?channel=%23ops&icon=:whale:"
            .into(),
        Some(&server.base),
    );
    assert_eq!(
        n.send(&sample_event(EventKind::RolledBack)),
        1,
        "{:?}",
        warnings(&n)
    );
    let r = &server.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.target,
        "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("*pullpilot: rolled back shop/web*\n"),
        "{text}"
    );
    assert!(text.contains("Digest: 0123456789ab → fedcba987654"));
    assert_eq!(body["channel"], "#ops");
    assert_eq!(body["username"], "Bot");
    assert_eq!(body["icon_emoji"], ":whale:");
}

#[test]
fn slack_bot_token_uses_chat_post_message() {
    let server = HttpServer::start(200, r#"{"ok":true,"ts":"1"}"#);
    let token = "123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N";
    let n = one(
        format!("slack://xoxb:{token}@C001CH4NN3L"),
        Some(&server.base),
    );
    assert_eq!(
        n.send(&sample_event(EventKind::Updated)),
        1,
        "{:?}",
        warnings(&n)
    );
    let r = &server.requests()[0];
    assert_eq!(r.target, "/api/chat.postMessage");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer xoxb-{token}").as_str())
    );
    assert_eq!(r.json()["channel"], "C001CH4NN3L");
}

#[test]
fn slack_api_error_is_a_failure() {
    let server = HttpServer::start(200, r#"{"ok":false,"error":"channel_not_found"}"#);
    let token = "123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N";
    let n = one(
        format!("slack://xoxb:{token}@C001CH4NN3L"),
        Some(&server.base),
    );
    assert_eq!(n.send(&sample_event(EventKind::Updated)), 0);
    let w = warnings(&n);
    assert!(
        w[0].contains("channel_not_found") && w[0].contains("slack://C001CH4NN3L/…"),
        "{w:?}"
    );
}

#[test]
fn discord_executes_the_webhook_with_an_embed() {
    let server = HttpServer::start(204, "");
    let n = one(
        "discord://s3cr3t-T0ken_x@693853386302554172?username=pp".into(),
        Some(&server.base),
    );
    assert_eq!(
        n.send(&sample_event(EventKind::Failed)),
        1,
        "{:?}",
        warnings(&n)
    );
    let r = &server.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/api/webhooks/693853386302554172/s3cr3t-T0ken_x");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    let embed = &body["embeds"][0];
    assert_eq!(embed["title"], "pullpilot: update failed for shop/web");
    assert!(
        embed["description"]
            .as_str()
            .unwrap()
            .contains("Image: ghcr.io/acme/web:1.4")
    );
    assert_eq!(embed["color"], 0x00D6_0510);
    assert_eq!(embed["timestamp"], "2025-01-01T00:00:00Z");
    assert_eq!(body["username"], "pp");
}

#[test]
fn ntfy_publishes_text_with_title_header() {
    let server = HttpServer::start(200, r#"{"id":"x"}"#);
    let n = one(
        format!(
            "ntfy://alice:pa55@127.0.0.1:{}/alerts?scheme=http&tags=whale",
            server.port
        ),
        None,
    );
    assert_eq!(
        n.send(&sample_event(EventKind::Failed)),
        1,
        "{:?}",
        warnings(&n)
    );
    let r = &server.requests()[0];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/alerts"));
    assert_eq!(
        r.header("title"),
        Some("pullpilot: update failed for shop/web")
    );
    assert_eq!(r.header("priority"), Some("high"));
    assert_eq!(r.header("tags"), Some("whale"));
    assert_eq!(r.header("authorization"), Some("Basic YWxpY2U6cGE1NQ=="));
    assert!(r.text().starts_with("Updated to the new image"));
}

#[test]
fn ntfy_access_token_is_a_bearer() {
    let server = HttpServer::start(200, "{}");
    let n = one(
        format!("ntfy://:tk_abcdef@127.0.0.1:{}/t?scheme=http", server.port),
        None,
    );
    assert_eq!(n.send(&sample_event(EventKind::Updated)), 1);
    let r = &server.requests()[0];
    assert_eq!(r.header("authorization"), Some("Bearer tk_abcdef"));
    assert_eq!(r.header("priority"), None);
}

#[test]
fn gotify_posts_message_with_key_header() {
    let server = HttpServer::start(200, r#"{"id":1}"#);
    let n = one(
        format!(
            "gotify://127.0.0.1:{}/sub/AzyoeNS.D4iJLVa/?disabletls=yes",
            server.port
        ),
        None,
    );
    assert_eq!(
        n.send(&sample_event(EventKind::ActionNeeded)),
        1,
        "{:?}",
        warnings(&n)
    );
    let r = &server.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/sub/message")
    );
    assert_eq!(r.header("x-gotify-key"), Some("AzyoeNS.D4iJLVa"));
    let body = r.json();
    assert_eq!(body["title"], "pullpilot: action needed for shop/web");
    assert_eq!(body["priority"], 7);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Time: 2025-01-01 00:00:00 UTC")
    );
}

#[test]
fn telegram_sends_once_per_chat() {
    let server = HttpServer::start(200, r#"{"ok":true,"result":{"message_id":1}}"#);
    let n = one(
        "telegram://110201543:AAHdq-Tcv_C@telegram?chats=@mychannel,-1001234567890:42&notification=no"
            .into(),
        Some(&server.base),
    );
    assert_eq!(
        n.send(&sample_event(EventKind::Updated)),
        1,
        "{:?}",
        warnings(&n)
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let mut chats = Vec::new();
    for r in &reqs {
        assert_eq!(r.target, "/bot110201543:AAHdq-Tcv_C/sendMessage");
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body = r.json();
        assert_eq!(body["parse_mode"], "HTML");
        assert_eq!(body["disable_notification"], true);
        let text = body["text"].as_str().unwrap();
        assert!(
            text.starts_with("<b>pullpilot: updated shop/web</b>\n"),
            "{text}"
        );
        chats.push((
            body["chat_id"].clone(),
            body.get("message_thread_id").cloned(),
        ));
    }
    chats.sort_by_key(|c| c.0.to_string());
    assert_eq!(
        chats[0],
        (
            serde_json::json!("-1001234567890"),
            Some(serde_json::json!(42))
        )
    );
    assert_eq!(chats[1], (serde_json::json!("@mychannel"), None));
}

fn smtp_url(port: u16, extra: &str) -> String {
    format!(
        "smtp://mailer:s3cret@127.0.0.1:{port}/?from=pp@example.com&to=ops@example.com,dev@example.com{extra}"
    )
}

#[test]
fn smtp_plain_to_loopback_with_auth_plain() {
    let sink = SmtpSink::start(SinkTls::None, &[]);
    let n = one(
        smtp_url(sink.port, "&fromname=Pull+Pilot&clienthost=host.example"),
        None,
    );
    assert_eq!(
        n.send(&sample_event(EventKind::Updated)),
        1,
        "{:?}",
        warnings(&n)
    );
    let s = &sink.sessions()[0];
    assert_eq!(s.ehlo, ["host.example"]);
    assert!(!s.tls);
    assert_eq!(s.auth, ["PLAIN mailer:s3cret"]);
    assert_eq!(s.mail_from, "<pp@example.com> BODY=8BITMIME");
    assert_eq!(s.rcpt, ["ops@example.com", "dev@example.com"]);
    assert!(s.quit);
    for header in [
        // lettre quotes a display name with a space; readers show the same `Pull Pilot`.
        "From: \"Pull Pilot\" <pp@example.com>",
        "To: ops@example.com, dev@example.com",
        "Subject: pullpilot: updated shop/web",
        "Date: Wed, 1 Jan 2025 00:00:00 +0000",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "X-Pullpilot-Event: updated",
    ] {
        assert!(
            s.data.contains(&format!("{header}\r\n")),
            "{header} in {}",
            s.data
        );
    }
    assert!(s.data.contains("Message-ID: <"));
    assert!(
        s.data
            .contains("\r\n\r\nUpdated to the new image; healthy after 12s.\r\n")
    );
    assert!(s.data.contains("Digest: 0123456789ab → fedcba987654"));
}

#[test]
fn smtp_starttls_then_auth_login() {
    let sink = SmtpSink::start(SinkTls::StartTls, &[]);
    let n = one(smtp_url(sink.port, "&auth=login&subject=Custom"), None);
    let mut event = sample_event(EventKind::Failed);
    event.message = ".hidden dot line\nsecond".into();
    assert_eq!(n.send(&event), 1, "{:?}", warnings(&n));
    let s = &sink.sessions()[0];
    assert!(s.tls);
    assert_eq!(s.ehlo.len(), 2, "EHLO again after STARTTLS");
    assert_eq!(s.auth, ["LOGIN mailer:s3cret"]);
    assert!(s.data.contains("Subject: Custom\r\n"));
    // A line starting with a dot is dot-stuffed on the wire.
    assert!(
        s.data.contains("\r\n\r\n..hidden dot line\r\nsecond\r\n"),
        "{}",
        s.data
    );
}

#[test]
fn smtp_implicit_tls() {
    let sink = SmtpSink::start(SinkTls::Implicit, &[]);
    let n = one(smtp_url(sink.port, "&encryption=ImplicitTLS"), None);
    assert_eq!(
        n.send(&sample_event(EventKind::Updated)),
        1,
        "{:?}",
        warnings(&n)
    );
    let s = &sink.sessions()[0];
    assert!(s.tls);
    assert_eq!(s.rcpt.len(), 2);
}

#[test]
fn smtp_explicit_tls_without_starttls_fails() {
    let sink = SmtpSink::start(SinkTls::None, &[]);
    let n = one(smtp_url(sink.port, "&encryption=ExplicitTLS"), None);
    assert_eq!(n.send(&sample_event(EventKind::Updated)), 0);
    let w = warnings(&n);
    assert!(w[0].contains("does not offer STARTTLS"), "{w:?}");
    assert!(!w[0].contains("s3cret"));
}

#[test]
fn smtp_refused_recipient_is_a_failure_but_others_get_it() {
    let sink = SmtpSink::start(SinkTls::None, &["dev@example.com"]);
    let n = one(smtp_url(sink.port, ""), None);
    assert_eq!(n.send(&sample_event(EventKind::Updated)), 0);
    let w = warnings(&n);
    assert!(
        w[0].contains("recipient 2 of 2") && w[0].contains("550"),
        "{w:?}"
    );
    let s = &sink.sessions()[0];
    assert_eq!(s.rcpt, ["ops@example.com"]);
    assert!(s.data.contains("Subject:"));
}

#[test]
fn silent_targets_cost_at_most_the_timeout_each_in_parallel() {
    let http_port = silent_server();
    let smtp_port = silent_server();
    let urls = [
        format!("generic://127.0.0.1:{http_port}/hook/SECRETPATH?disabletls=yes"),
        smtp_url(smtp_port, ""),
    ];
    let timeout = Duration::from_millis(600);
    let n = Notifier::with_overrides(&urls, &TimeZone::UTC, timeout, Overrides::default()).unwrap();
    let started = Instant::now();
    assert_eq!(n.send(&sample_event(EventKind::Updated)), 0);
    let took = started.elapsed();
    assert!(took < timeout + Duration::from_millis(900), "took {took:?}");
    let mut w = warnings(&n);
    w.sort();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with(&format!(
            "Notification to generic://127.0.0.1:{http_port}/… failed"
        )),
        "{w:?}"
    );
    assert!(
        w[1].starts_with(&format!(
            "Notification to smtp://127.0.0.1:{smtp_port}/… failed"
        )),
        "{w:?}"
    );
    assert!(
        w.iter()
            .all(|l| l.contains("timeout") || l.contains("no answer")),
        "{w:?}"
    );
    assert!(
        !w.iter()
            .any(|l| l.contains("SECRETPATH") || l.contains("s3cret"))
    );
}

#[test]
fn server_error_is_counted_as_failed_and_scrubbed() {
    let token = "XXXXXXXXXXXXXXXXXXXXXXXX";
    let server = HttpServer::start(500, "internal error for XXXXXXXXXXXXXXXXXXXXXXXX");
    let ok = HttpServer::start(200, "");
    let urls = [
        format!("slack://T00000000/B00000000/{token}"),
        format!("generic+http://127.0.0.1:{}/fine", ok.port),
    ];
    let n = notifier(&urls, Some(&server.base));
    assert_eq!(n.send(&sample_event(EventKind::Updated)), 1);
    let w = warnings(&n);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(
        w[0],
        "Notification to slack://T00000000/… failed: answered 500: \"internal error for ***\" \
         (3 attempts)."
    );
    assert_eq!(server.requests().len(), 3, "a 5xx is tried three times");
    assert_eq!(ok.requests().len(), 1);
}

#[test]
fn a_transient_failure_is_tried_again_and_then_delivered() {
    let flaky = HttpServer::answering(&[503, 429, 204], "");
    let n = one(
        format!("generic+http://127.0.0.1:{}/hook", flaky.port),
        None,
    );
    assert_eq!(n.send(&sample_event(EventKind::Updated)), 1);
    assert!(warnings(&n).is_empty(), "{:?}", warnings(&n));
    assert_eq!(flaky.requests().len(), 3);
}

#[test]
fn a_client_error_is_not_tried_again() {
    let server = HttpServer::start(404, "no such hook");
    let n = one(
        format!("generic+http://127.0.0.1:{}/hook", server.port),
        None,
    );
    assert_eq!(n.send(&sample_event(EventKind::Updated)), 0);
    assert_eq!(server.requests().len(), 1);
    let w = warnings(&n);
    assert!(w[0].ends_with("answered 404: \"no such hook\"."), "{w:?}");
}

#[test]
fn no_retry_waits_past_the_timeout() {
    let server = HttpServer::start(502, "");
    let urls = [format!("generic+http://127.0.0.1:{}/hook", server.port)];
    let timeout = Duration::from_millis(600);
    let overrides = Overrides {
        retry_waits: Some(vec![Duration::from_millis(200), Duration::from_secs(1)]),
        ..Overrides::default()
    };
    let n = Notifier::with_overrides(&urls, &TimeZone::UTC, timeout, overrides).unwrap();
    let started = Instant::now();
    assert_eq!(n.send(&sample_event(EventKind::Updated)), 0);
    assert!(started.elapsed() < timeout, "took {:?}", started.elapsed());
    assert_eq!(
        server.requests().len(),
        2,
        "the 200 ms wait fits in 600 ms, the 1 s wait does not"
    );
    assert!(
        warnings(&n)[0].contains("(2 attempts)"),
        "{:?}",
        warnings(&n)
    );
}

#[test]
fn refused_connection_fails_fast() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let n = one(format!("ntfy://127.0.0.1:{port}/t?scheme=http"), None);
    let started = Instant::now();
    assert_eq!(n.send(&sample_event(EventKind::Updated)), 0);
    assert!(started.elapsed() < TIMEOUT);
    let w = warnings(&n);
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("(3 attempts)"), "refused is transient: {w:?}");
}

#[test]
fn invalid_urls_are_errors_naming_the_redacted_url_and_forms() {
    let err = Notifier::new(
        &["gotify://u:hunter2@gotify.example.com/AzyoeNS".into()],
        &TimeZone::UTC,
        TIMEOUT,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "notification URL gotify://gotify.example.com/… is not valid: Gotify URLs take no user \
         or password; the accepted form is gotify://host[:port][/subpath]/token[?disabletls=yes]"
    );
    let err = Notifier::new(
        &["pushover://shoutrrr:tok3n@user/".into()],
        &TimeZone::UTC,
        TIMEOUT,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("pushover://user/…") && err.contains("unknown scheme"),
        "{err}"
    );
    for form in [
        "generic://",
        "slack://",
        "discord://",
        "ntfy://",
        "gotify://",
        "telegram://",
        "smtp://",
    ] {
        assert!(err.contains(form), "{form} in {err}");
    }
    assert!(!err.contains("tok3n"));
    let err = Notifier::new(
        &["hooks.slack.com/services/T/B/SECRET".into()],
        &TimeZone::UTC,
        TIMEOUT,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("notification URL [redacted URL] is not valid"),
        "{err}"
    );
    assert!(!err.contains("SECRET"));
}

#[test]
fn empty_list_bad_zone_and_debug() {
    let n = Notifier::new(&[], &TimeZone::UTC, TIMEOUT).unwrap();
    assert!(n.is_empty());
    assert_eq!(n.send(&sample_event(EventKind::Updated)), 0);
    // The zone arrives parsed (settings reject an unknown one), so there is no bad zone here.
    let berlin = crate::time::zone::parse("Europe/Berlin").unwrap();
    let n = Notifier::new(&["  ".into()], &berlin, TIMEOUT).unwrap();
    assert!(n.is_empty());
    assert!(format!("{n:?}").contains("Europe/Berlin"));
    let n = Notifier::new(
        &["discord://s3cr3t@123".into(), "ntfy://u:pw123@h/t".into()],
        &TimeZone::UTC,
        TIMEOUT,
    )
    .unwrap();
    assert!(!n.is_empty());
    let debug = format!("{n:?}");
    assert!(
        debug.contains("discord://123/…") && debug.contains("ntfy://h/…"),
        "{debug}"
    );
    assert!(
        !debug.contains("s3cr3t") && !debug.contains("pw123"),
        "{debug}"
    );
}

#[test]
fn scrub_replaces_secrets_and_encoded_forms() {
    let t = super::parse_target("ntfy://u:p%40ss%2Fw0rd@h/t").unwrap();
    let text = "echo p@ss/w0rd and p%40ss%2Fw0rd";
    assert_eq!(super::scrub(text, &t.secrets), "echo *** and ***");
}

#[test]
fn issue_12_scrub_removes_the_base64_forms_sent_on_the_wire() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let smtp =
        super::parse_target("smtp://alice:pa55w0rd@mail.example/?from=a@b.c&to=d@e.f").unwrap();
    let plain = b64("\0alice\0pa55w0rd");
    let login = b64("pa55w0rd");
    let xoauth = b64("user=alice\x01auth=Bearer pa55w0rd\x01\x01");
    let text = format!(
        "AUTH: 535 bad credentials {plain} / {login} / {xoauth} / {}",
        plain.trim_end_matches('=')
    );
    let scrubbed = super::scrub(&text, &smtp.secrets);
    assert_eq!(
        scrubbed, "AUTH: 535 bad credentials *** / *** / *** / ***",
        "{scrubbed}"
    );
    let ntfy = super::parse_target("ntfy://bob:hunter22@ntfy.example/t").unwrap();
    let basic = b64("bob:hunter22");
    let scrubbed = super::scrub(
        &format!("HTTP 401: rejected Authorization: Basic {basic}"),
        &ntfy.secrets,
    );
    assert_eq!(scrubbed, "HTTP 401: rejected Authorization: Basic ***");
}
