//! Building the requests each HTTP service's API documents from a parsed target and a rendered
//! event. Pure: no I/O, no clock, no environment.

use base64::Engine as _;
use serde_json::{Value, json};

use super::message::{Rendered, Severity, truncate};
use super::services::{
    Check, DISCORD_BASE, Discord, Generic, Gotify, HttpRequest, Method, Ntfy, SLACK_API_BASE,
    SLACK_BASE, Service, Slack, SlackToken, TELEGRAM_BASE, Telegram, basic_auth,
};

/// Replaces the scheme and host of a fixed public base (test seam; see the module header).
fn base(default: &str, base_override: Option<&str>) -> String {
    base_override.map_or_else(
        || default.to_string(),
        |b| b.trim_end_matches('/').to_string(),
    )
}

fn json_request(
    url: String,
    headers: Vec<(String, String)>,
    body: &Value,
    check: Check,
) -> HttpRequest {
    let mut headers = headers;
    headers.push(("Content-Type".into(), "application/json".into()));
    HttpRequest {
        method: Method::Post,
        url,
        headers,
        body: body.to_string().into_bytes(),
        check,
    }
}

/// Escapes `&`, `<` and `>` (Slack mrkdwn and Telegram HTML both need exactly these).
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Service {
    /// The requests that deliver `msg`; every one must succeed.
    pub(crate) fn requests(
        &self,
        msg: &Rendered<'_>,
        base_override: Option<&str>,
    ) -> Vec<HttpRequest> {
        match self {
            Service::Generic(g) => vec![g.request(msg)],
            Service::Slack(s) => vec![s.request(msg, base_override)],
            Service::Discord(d) => vec![d.request(msg, base_override)],
            Service::Ntfy(n) => vec![n.request(msg)],
            Service::Gotify(g) => vec![g.request(msg)],
            Service::Telegram(t) => t.requests(msg, base_override),
        }
    }
}

impl Generic {
    /// The documented JSON body (see the module header of `notify`).
    fn request(&self, msg: &Rendered<'_>) -> HttpRequest {
        let e = msg.event;
        let title = self.title.clone().unwrap_or_else(|| msg.title.clone());
        let mut body = serde_json::Map::new();
        body.insert(self.title_key.clone(), json!(title));
        body.insert(self.message_key.clone(), json!(msg.body));
        let fields = [
            ("kind", json!(e.kind.as_str())),
            ("container", json!(e.container)),
            ("service", json!(e.service)),
            ("project", json!(e.project)),
            ("image", json!(e.image)),
            ("from_digest", json!(e.from_digest)),
            ("to_digest", json!(e.to_digest)),
            ("from_tag", json!(e.from_tag)),
            ("to_tag", json!(e.to_tag)),
            ("time", json!(msg.time.rfc3339)),
            (
                "rollout_at",
                json!(msg.rollout_at.as_ref().map(|t| &t.rfc3339)),
            ),
        ];
        for (k, v) in fields {
            body.entry(k).or_insert(v);
        }
        for (k, v) in &self.extra {
            body.insert(k.clone(), json!(v));
        }
        let mut headers = vec![
            ("Content-Type".to_string(), self.content_type.clone()),
            ("Accept".to_string(), self.content_type.clone()),
        ];
        if let Some((user, password)) = &self.basic_auth {
            headers.push(("Authorization".into(), basic_auth(user, password)));
        }
        headers.extend(self.headers.iter().cloned());
        HttpRequest {
            method: self.method,
            url: self.url.clone(),
            headers,
            body: Value::Object(body).to_string().into_bytes(),
            check: Check::Status,
        }
    }
}

impl Slack {
    fn request(&self, msg: &Rendered<'_>, base_override: Option<&str>) -> HttpRequest {
        let title = self.title.as_ref().unwrap_or(&msg.title);
        let text = format!("*{}*\n{}", escape_html(title), escape_html(&msg.body));
        let mut body = json!({ "text": text });
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                body[k] = json!(v);
            }
        };
        put("channel", &self.channel);
        put("username", &self.bot_name);
        put("thread_ts", &self.thread_ts);
        if let Some(icon) = &self.icon {
            let key = if icon.starts_with("http://") || icon.starts_with("https://") {
                "icon_url"
            } else {
                "icon_emoji"
            };
            body[key] = json!(icon);
        }
        match &self.token {
            SlackToken::Webhook(path) => json_request(
                format!("{}/services/{path}", base(SLACK_BASE, base_override)),
                Vec::new(),
                &body,
                Check::SlackWebhook,
            ),
            SlackToken::Api(token) => json_request(
                format!(
                    "{}/api/chat.postMessage",
                    base(SLACK_API_BASE, base_override)
                ),
                vec![("Authorization".into(), format!("Bearer {token}"))],
                &body,
                Check::JsonOk,
            ),
        }
    }
}

impl Discord {
    fn request(&self, msg: &Rendered<'_>, base_override: Option<&str>) -> HttpRequest {
        let title = self.title.as_ref().unwrap_or(&msg.title);
        let color = match msg.severity {
            Severity::Info => self.colors[0],
            Severity::Warning => self.colors[1],
            Severity::Error => self.colors[2],
        };
        let utc = crate::time::zone::format(&jiff::tz::TimeZone::UTC, msg.event.at).rfc3339;
        let mut body = json!({
            "embeds": [{
                "title": truncate(title, 256),
                "description": truncate(&msg.body, 4000),
                "color": color,
                "timestamp": utc,
            }],
            "allowed_mentions": { "parse": [] },
        });
        if let Some(u) = &self.username {
            body["username"] = json!(u);
        }
        if let Some(a) = &self.avatar {
            body["avatar_url"] = json!(a);
        }
        json_request(
            format!(
                "{}/api/webhooks/{}/{}",
                base(DISCORD_BASE, base_override),
                self.webhook_id,
                self.token
            ),
            Vec::new(),
            &body,
            Check::Status,
        )
    }
}

/// RFC 2047 for non-ASCII header values (ntfy decodes it).
fn header_text(value: &str) -> String {
    if value.is_ascii() {
        value.to_string()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
    }
}

impl Ntfy {
    fn request(&self, msg: &Rendered<'_>) -> HttpRequest {
        let title = self.title.as_ref().unwrap_or(&msg.title);
        let mut headers = vec![
            ("Title".to_string(), header_text(title)),
            (
                "Content-Type".to_string(),
                "text/plain; charset=utf-8".to_string(),
            ),
        ];
        let priority = self.priority.clone().or(match msg.severity {
            Severity::Info => None,
            Severity::Warning | Severity::Error => Some("high".into()),
        });
        if let Some(p) = priority {
            headers.push(("Priority".into(), p));
        }
        headers.extend(
            self.headers
                .iter()
                .map(|(k, v)| ((*k).to_string(), header_text(v))),
        );
        if let Some(auth) = &self.auth {
            headers.push(("Authorization".into(), auth.clone()));
        }
        HttpRequest {
            method: Method::Post,
            url: self.url.clone(),
            headers,
            body: msg.body.clone().into_bytes(),
            check: Check::Status,
        }
    }
}

impl Gotify {
    fn request(&self, msg: &Rendered<'_>) -> HttpRequest {
        let priority = self.priority.unwrap_or(match msg.severity {
            Severity::Info => 5,
            Severity::Warning => 7,
            Severity::Error => 8,
        });
        let body = json!({
            "title": self.title.as_ref().unwrap_or(&msg.title),
            "message": msg.body,
            "priority": priority,
        });
        json_request(
            self.url.clone(),
            vec![("X-Gotify-Key".into(), self.token.clone())],
            &body,
            Check::Status,
        )
    }
}

impl Telegram {
    fn requests(&self, msg: &Rendered<'_>, base_override: Option<&str>) -> Vec<HttpRequest> {
        let title = self.title.as_ref().unwrap_or(&msg.title);
        let text = format!(
            "<b>{}</b>\n{}",
            escape_html(&truncate(title, 200)),
            escape_html(&truncate(&msg.body, 3500))
        );
        let url = format!(
            "{}/bot{}/sendMessage",
            base(TELEGRAM_BASE, base_override),
            self.token
        );
        self.chats
            .iter()
            .map(|chat| {
                let (id, thread) = match chat.split_once(':') {
                    Some((id, thread)) => (id, thread.parse::<i64>().ok()),
                    None => (chat.as_str(), None),
                };
                let mut body = json!({
                    "chat_id": id,
                    "text": text,
                    "parse_mode": "HTML",
                    "disable_notification": !self.notification,
                    "disable_web_page_preview": !self.preview,
                });
                if let Some(thread) = thread {
                    body["message_thread_id"] = json!(thread);
                }
                json_request(url.clone(), Vec::new(), &body, Check::JsonOk)
            })
            .collect()
    }
}
