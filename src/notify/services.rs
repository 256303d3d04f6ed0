//! The HTTP services' targets and their parsing: shoutrrr URL → typed target (the requests are
//! built in `requests`). Pure: no I/O, no clock, no environment. Parse errors name options and
//! URL parts, never their values.
//!
//! Over 500 lines: one short parser per service, kept side by side so their rules stay alike.

use base64::Engine as _;

use super::url::{ParsedUrl, percent_encode};

pub(crate) const SLACK_BASE: &str = "https://hooks.slack.com";
pub(crate) const SLACK_API_BASE: &str = "https://slack.com";
pub(crate) const DISCORD_BASE: &str = "https://discord.com";
pub(crate) const TELEGRAM_BASE: &str = "https://api.telegram.org";

/// One HTTP target, parsed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Service {
    Generic(Generic),
    Slack(Slack),
    Discord(Discord),
    Ntfy(Ntfy),
    Gotify(Gotify),
    Telegram(Telegram),
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Generic {
    /// Full target URL with the forwarded query.
    pub(super) url: String,
    pub(super) method: Method,
    pub(super) content_type: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) basic_auth: Option<(String, String)>,
    pub(super) title: Option<String>,
    pub(super) title_key: String,
    pub(super) message_key: String,
    pub(super) extra: Vec<(String, String)>,
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Slack {
    pub(super) token: SlackToken,
    pub(super) channel: Option<String>,
    pub(super) bot_name: Option<String>,
    pub(super) icon: Option<String>,
    pub(super) title: Option<String>,
    pub(super) thread_ts: Option<String>,
}

#[derive(Clone, PartialEq, Eq)]
pub(super) enum SlackToken {
    /// `T…/B…/X…`, the path of `https://hooks.slack.com/services/T…/B…/X…`.
    Webhook(String),
    /// `xoxb-…` or `xoxp-…`, sent as a bearer token to `chat.postMessage`.
    Api(String),
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Discord {
    pub(super) webhook_id: String,
    pub(super) token: String,
    pub(super) title: Option<String>,
    pub(super) username: Option<String>,
    pub(super) avatar: Option<String>,
    pub(super) colors: [u32; 3],
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Ntfy {
    /// `https://host[:port]/topic`
    pub(super) url: String,
    pub(super) auth: Option<String>,
    pub(super) title: Option<String>,
    pub(super) priority: Option<String>,
    pub(super) headers: Vec<(&'static str, String)>,
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Gotify {
    /// `https://host[:port][/subpath]/message`
    pub(super) url: String,
    pub(super) token: String,
    pub(super) title: Option<String>,
    pub(super) priority: Option<i64>,
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Telegram {
    pub(super) token: String,
    pub(super) chats: Vec<String>,
    pub(super) notification: bool,
    pub(super) preview: bool,
    pub(super) title: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Post,
    Put,
    Patch,
}

/// How a 2xx answer is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Any 2xx.
    Status,
    /// Slack incoming webhooks answer `ok` (or nothing).
    SlackWebhook,
    /// Slack Web API and Telegram answer `{"ok": true, …}`.
    JsonOk,
}

/// One request to make. `url` and `headers` hold secrets: never log them (`Debug` redacts).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct HttpRequest {
    pub(crate) method: Method,
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) check: Check,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &super::url::redact(&self.url))
            .field("check", &self.check)
            .finish_non_exhaustive()
    }
}

/// Case-insensitive access to the query, with the list of keys a service understands.
struct Options<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Options<'a> {
    fn get(&self, names: &[&str]) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self, names: &[&str]) -> Result<Option<String>, String> {
        match self.get(names) {
            None | Some("") => Ok(None),
            Some(v) if v.chars().any(char::is_control) => {
                Err(format!("option `{}` contains control characters", names[0]))
            }
            Some(v) => Ok(Some(v.to_string())),
        }
    }

    fn flag(&self, names: &[&str], default: bool) -> Result<bool, String> {
        match self.get(names) {
            None | Some("") => Ok(default),
            Some(v) => flag(v).ok_or_else(|| {
                format!(
                    "option `{}` must be yes or no (also true/false, 1/0)",
                    names[0]
                )
            }),
        }
    }

    /// Every key must be one of `known` (honoured or accepted for shoutrrr compatibility).
    fn only(&self, known: &[&str]) -> Result<(), String> {
        for (key, _) in self.pairs {
            if !known.iter().any(|k| key.eq_ignore_ascii_case(k)) {
                return Err(format!(
                    "unknown option `{key}` (accepted: {})",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// shoutrrr's booleans: yes/no, true/false, 1/0, on/off, y/n.
pub(crate) fn flag(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" | "on" => Some(true),
        "no" | "n" | "false" | "0" | "off" => Some(false),
        _ => None,
    }
}

fn no_userinfo(url: &ParsedUrl, service: &str) -> Result<(), String> {
    match (&url.user, &url.password) {
        (None, None) => Ok(()),
        _ => Err(format!("{service} URLs take no user or password")),
    }
}

pub(super) fn basic_auth(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Parses one HTTP service URL. Returns the target and the strings to scrub from any text that
/// reaches a log line (tokens, passwords, webhook paths).
pub(crate) fn parse(url: &ParsedUrl) -> Result<(Service, Vec<String>), String> {
    match url.scheme.as_str() {
        "generic" | "generic+https" | "generic+http" => parse_generic(url),
        "slack" => parse_slack(url),
        "discord" => parse_discord(url),
        "ntfy" => parse_ntfy(url),
        "gotify" => parse_gotify(url),
        "telegram" => parse_telegram(url),
        other => Err(format!("unknown scheme `{other}`")),
    }
}

const GENERIC_KEYS: [&str; 7] = [
    "disabletls",
    "contenttype",
    "template",
    "title",
    "titlekey",
    "messagekey",
    "method",
];

fn parse_generic(url: &ParsedUrl) -> Result<(Service, Vec<String>), String> {
    if url.host.is_empty() {
        return Err("the host is missing".into());
    }
    // Webhook IDs live in paths (`/api/webhook/<id>`); keys in the query and headers.
    let mut secrets: Vec<String> = url
        .path
        .split('/')
        .filter(|s| s.len() >= 8)
        .map(str::to_string)
        .collect();
    if url.path.len() > 1 {
        secrets.push(url.path.clone());
    }
    let mut forwarded = Vec::new();
    let mut headers = Vec::new();
    let mut extra = Vec::new();
    let opts = Options { pairs: &url.query };
    let is_shortcut = url.scheme != "generic";
    for (key, value) in &url.query {
        if is_shortcut || !GENERIC_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k)) {
            secrets.push(value.clone());
        }
        if is_shortcut {
            // `generic+https://…`: the whole query belongs to the target (shoutrrr forwards it).
            forwarded.push((key.clone(), value.clone()));
        } else if let Some(name) = key.strip_prefix('@') {
            headers.push((header_name(name)?, header_value(value, key)?));
        } else if let Some(field) = key.strip_prefix('$') {
            extra.push((field.to_string(), value.clone()));
        } else if let Some(escaped) = key.strip_prefix('_') {
            forwarded.push((escaped.to_string(), value.clone()));
        } else if !GENERIC_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k)) {
            forwarded.push((key.clone(), value.clone()));
        }
    }
    let https = match url.scheme.as_str() {
        "generic+http" => false,
        "generic+https" => true,
        _ => !opts.flag(&["disabletls"], false)?,
    };
    let (title, title_key, message_key, method, content_type) = if is_shortcut {
        (None, "title".into(), "message".into(), Method::Post, None)
    } else {
        match opts.get(&["template"]) {
            None | Some("") => {}
            Some(t) if t.eq_ignore_ascii_case("json") => {}
            Some(_) => return Err("only `template=json` is supported (the body is JSON)".into()),
        }
        let method = match opts
            .get(&["method"])
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("" | "POST") => Method::Post,
            Some("PUT") => Method::Put,
            Some("PATCH") => Method::Patch,
            Some(_) => return Err("option `method` must be POST, PUT or PATCH".into()),
        };
        (
            opts.text(&["title"])?,
            opts.text(&["titlekey"])?.unwrap_or_else(|| "title".into()),
            opts.text(&["messagekey"])?
                .unwrap_or_else(|| "message".into()),
            method,
            opts.text(&["contenttype"])?,
        )
    };
    let mut target = format!(
        "{}://{}{}",
        if https { "https" } else { "http" },
        url.authority(),
        url.path
    );
    if !forwarded.is_empty() {
        let query: Vec<String> = forwarded
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        target.push('?');
        target.push_str(&query.join("&"));
    }
    let basic_auth = match (&url.user, &url.password) {
        (None, None) => None,
        (user, password) => {
            secrets.extend(password.clone());
            Some((
                user.clone().unwrap_or_default(),
                password.clone().unwrap_or_default(),
            ))
        }
    };
    let generic = Generic {
        url: target,
        method,
        content_type: content_type.unwrap_or_else(|| "application/json".into()),
        headers,
        basic_auth,
        title,
        title_key,
        message_key,
        extra,
    };
    Ok((Service::Generic(generic), secrets))
}

/// shoutrrr's `@acceptLanguage` → `Accept-Language`.
fn header_name(key: &str) -> Result<String, String> {
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!("header option `@{key}` is not a valid header name"));
    }
    let mut out = String::new();
    let mut prev = '-';
    for c in key.chars() {
        if c.is_ascii_uppercase() && prev != '-' && !out.is_empty() {
            out.push('-');
            prev = '-';
        }
        out.push(if prev == '-' {
            c.to_ascii_uppercase()
        } else {
            c
        });
        prev = c;
    }
    Ok(out)
}

fn header_value(value: &str, key: &str) -> Result<String, String> {
    if value.chars().any(char::is_control) {
        return Err(format!("option `{key}` contains control characters"));
    }
    Ok(value.to_string())
}

const SLACK_KEYS: [&str; 11] = [
    "botname",
    "username",
    "icon",
    "icon_emoji",
    "icon_url",
    "color",
    "title",
    "channel",
    "thread_ts",
    // Accepted so that pasted URLs keep working; pullpilot's layout is fixed.
    "template",
    "json",
];

fn parse_slack(url: &ParsedUrl) -> Result<(Service, Vec<String>), String> {
    let opts = Options { pairs: &url.query };
    opts.only(&SLACK_KEYS)?;
    let invalid = "the token must look like T…/B…/X… (webhook) or xoxb-… (bot)";
    let (token_text, mut channel, url_bot) = if url.path.len() > 1 {
        // slack://[botname@]T…/B…/X…
        if url.password.is_some() {
            return Err("webhook-path Slack URLs take only a bot name before `@`".into());
        }
        (format!("{}{}", url.host, url.path), None, url.user.clone())
    } else {
        // slack://hook:T…-B…-X…@webhook or slack://xoxb:…@CHANNEL
        let user = url.user.clone().ok_or(invalid)?;
        let token = match &url.password {
            Some(p) => format!("{user}:{p}"),
            None => user,
        };
        let channel = (!url.host.is_empty() && url.host != "webhook").then(|| url.host.clone());
        (token, channel, None)
    };
    let (kind, parts) = split_slack_token(&token_text).ok_or(invalid)?;
    let token = if kind == "hook" {
        SlackToken::Webhook(parts.join("/"))
    } else {
        SlackToken::Api(format!("{kind}-{}", parts.join("-")))
    };
    if let Some(c) = opts.text(&["channel"])? {
        channel = Some(c);
    }
    if let Some(f) = url.fragment.as_deref().filter(|f| !f.is_empty()) {
        channel = Some(format!("#{f}"));
    }
    if matches!(token, SlackToken::Api(_)) && channel.is_none() {
        return Err("a Slack bot token needs a channel: slack://xoxb:…@CHANNEL".into());
    }
    let secrets = vec![token_text.clone(), parts[2].clone(), parts.join("/")];
    let slack = Slack {
        token,
        channel,
        bot_name: opts.text(&["botname", "username"])?.or(url_bot),
        icon: opts.text(&["icon", "icon_emoji", "icon_url"])?,
        title: opts.text(&["title"])?,
        thread_ts: opts.text(&["thread_ts"])?,
    };
    Ok((Service::Slack(slack), secrets))
}

/// shoutrrr's token grammar: `[(xox?|hook)[-:]|:]P1 S P2 S P3`, P1/P2 `[A-Z0-9]{9,}`, P3
/// `[A-Za-z0-9]{24,}`, both separators the same one of `-/,`.
fn split_slack_token(text: &str) -> Option<(String, [String; 3])> {
    let (kind, rest) = if let Some(r) = text.strip_prefix("hook").and_then(strip_sep) {
        ("hook".to_string(), r)
    } else if text.starts_with("xox") && text.len() > 5 && matches!(text.as_bytes()[4], b'-' | b':')
    {
        (text[..4].to_string(), &text[5..])
    } else {
        ("hook".to_string(), text.strip_prefix(':').unwrap_or(text))
    };
    let i = rest.find(['-', '/', ','])?;
    let (p1, rest) = rest.split_at(i);
    let sep = rest.chars().next()?;
    let (p2, p3) = rest[1..].split_once(sep)?;
    let upper = |p: &str| {
        p.len() >= 9
            && p.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    let ok =
        upper(p1) && upper(p2) && p3.len() >= 24 && p3.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| (kind, [p1.to_string(), p2.to_string(), p3.to_string()]))
}

fn strip_sep(s: &str) -> Option<&str> {
    s.strip_prefix(':').or_else(|| s.strip_prefix('-'))
}

const DISCORD_KEYS: [&str; 13] = [
    "title",
    "username",
    "avatar",
    "avatarurl",
    "color",
    "colorerror",
    "colorwarn",
    // Accepted for pasted URLs; pullpilot sends one embed.
    "colorinfo",
    "colordebug",
    "splitlines",
    "json",
    "template",
    "thread_id",
];

fn parse_discord(url: &ParsedUrl) -> Result<(Service, Vec<String>), String> {
    let opts = Options { pairs: &url.query };
    opts.only(&DISCORD_KEYS)?;
    match url.path.as_str() {
        "" | "/" => {}
        "/raw" => return Err("raw JSON mode (`/raw`) is not supported".into()),
        _ => return Err("Discord URLs have no path: discord://token@webhookid".into()),
    }
    if url.password.is_some() {
        return Err("the token goes before `@`, with no `:`".into());
    }
    let token = url
        .user
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or("the token is missing")?;
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("the token has characters a Discord webhook token never has".into());
    }
    if url.host.is_empty() || !url.host.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the webhook ID (after `@`) must be a number".into());
    }
    let color = |names: &[&str], default: u32| -> Result<u32, String> {
        match opts.get(names) {
            None | Some("") => Ok(default),
            Some(v) => {
                let hex = v
                    .trim_start_matches("0x")
                    .trim_start_matches("0X")
                    .trim_start_matches('#');
                u32::from_str_radix(hex, 16)
                    .ok()
                    .filter(|c| *c <= 0xFF_FFFF)
                    .ok_or_else(|| {
                        format!("option `{}` must be a hex colour like 0x50D9ff", names[0])
                    })
            }
        }
    };
    let discord = Discord {
        webhook_id: url.host.clone(),
        token: token.clone(),
        title: opts.text(&["title"])?,
        username: opts.text(&["username"])?,
        avatar: opts.text(&["avatar", "avatarurl"])?,
        colors: [
            color(&["color"], 0x50_D9FF)?,
            color(&["colorwarn"], 0xFF_C441)?,
            color(&["colorerror"], 0xD6_0510)?,
        ],
    };
    Ok((Service::Discord(discord), vec![token]))
}

const NTFY_HEADERS: [(&str, &str); 8] = [
    ("tags", "Tags"),
    ("actions", "Actions"),
    ("click", "Click"),
    ("attach", "Attach"),
    ("filename", "Filename"),
    ("delay", "Delay"),
    ("email", "Email"),
    ("icon", "Icon"),
];

const NTFY_KEYS: [&str; 16] = [
    "title", "scheme", "priority", "tags", "actions", "click", "attach", "filename", "delay", "at",
    "in", "email", "icon", "cache", "firebase",
    // Accepted for pasted URLs; pullpilot writes the message itself.
    "template",
];

fn parse_ntfy(url: &ParsedUrl) -> Result<(Service, Vec<String>), String> {
    let opts = Options { pairs: &url.query };
    opts.only(&NTFY_KEYS)?;
    let topic = url.path.trim_start_matches('/').trim_end_matches('/');
    let valid = !topic.is_empty()
        && topic.len() <= 64
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err("the topic (the path) must be 1–64 letters, digits, `_` or `-`".into());
    }
    let scheme = match opts
        .get(&["scheme"])
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("" | "https") => "https",
        Some("http") => "http",
        Some(_) => return Err("option `scheme` must be http or https".into()),
    };
    let host = if url.host.is_empty() {
        "ntfy.sh".to_string()
    } else {
        url.authority()
    };
    let priority = match opts
        .get(&["priority"])
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") => None,
        Some(
            p @ ("1" | "2" | "3" | "4" | "5" | "min" | "low" | "default" | "high" | "max"
            | "urgent"),
        ) => Some(p.to_string()),
        Some(_) => {
            return Err("option `priority` must be 1–5 or min, low, default, high, max".into());
        }
    };
    let mut headers = Vec::new();
    for (key, header) in NTFY_HEADERS {
        let names: &[&str] = if key == "delay" {
            &["delay", "at", "in"]
        } else {
            &[key]
        };
        if let Some(v) = opts.text(names)? {
            headers.push((header, v));
        }
    }
    for (key, header) in [("cache", "Cache"), ("firebase", "Firebase")] {
        if !opts.flag(&[key], true)? {
            headers.push((header, "no".to_string()));
        }
    }
    let mut secrets = Vec::new();
    let auth = match (&url.user, &url.password) {
        (None, None) => None,
        (user, password) => {
            let user = user.clone().unwrap_or_default();
            let password = password.clone().unwrap_or_default();
            secrets.push(password.clone());
            // An access token alone (`ntfy://:tk_…@host/topic`) is a bearer token.
            Some(if user.is_empty() && password.starts_with("tk_") {
                format!("Bearer {password}")
            } else {
                basic_auth(&user, &password)
            })
        }
    };
    let ntfy = Ntfy {
        url: format!("{scheme}://{host}/{topic}"),
        auth,
        title: opts.text(&["title"])?,
        priority,
        headers,
    };
    Ok((Service::Ntfy(ntfy), secrets))
}

fn parse_gotify(url: &ParsedUrl) -> Result<(Service, Vec<String>), String> {
    let opts = Options { pairs: &url.query };
    opts.only(&["priority", "title", "disabletls"])?;
    no_userinfo(url, "Gotify")?;
    if url.host.is_empty() {
        return Err("the host is missing".into());
    }
    let path = url.path.trim_end_matches('/');
    let (subpath, token) = path.rsplit_once('/').unwrap_or(("", ""));
    let token = super::url::percent_decode(token, false).unwrap_or_default();
    let valid = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !valid {
        return Err("the application token (the last path segment) is missing or malformed".into());
    }
    let scheme = if opts.flag(&["disabletls"], false)? {
        "http"
    } else {
        "https"
    };
    let priority = match opts.get(&["priority"]) {
        None | Some("") => None,
        Some(p) => Some(
            p.trim()
                .parse::<i64>()
                .map_err(|_| "option `priority` must be a whole number".to_string())?,
        ),
    };
    let gotify = Gotify {
        url: format!("{scheme}://{}{subpath}/message", url.authority()),
        token: token.clone(),
        title: opts.text(&["title"])?,
        priority,
    };
    Ok((Service::Gotify(gotify), vec![token]))
}

fn parse_telegram(url: &ParsedUrl) -> Result<(Service, Vec<String>), String> {
    let opts = Options { pairs: &url.query };
    opts.only(&[
        "chats",
        "channels",
        "notification",
        "preview",
        "parsemode",
        "title",
    ])?;
    let token = match (&url.user, &url.password) {
        (Some(id), Some(secret)) => format!("{id}:{secret}"),
        _ => return Err("the bot token (`123456:ABC…`) must come before `@`".into()),
    };
    let (id, secret) = token.split_once(':').expect("joined with ':'");
    let valid = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && !secret.is_empty()
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err("the bot token must look like 123456:ABC-def".into());
    }
    if !url.path.is_empty() && url.path != "/" {
        return Err("Telegram URLs have no path".into());
    }
    let chats: Vec<String> = opts
        .get(&["chats", "channels"])
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    if chats.is_empty() {
        return Err("option `chats` is missing (e.g. chats=@channel,123456789)".into());
    }
    for chat in &chats {
        let (id, thread) = chat.split_once(':').unwrap_or((chat, ""));
        let id_ok = id.strip_prefix('@').map_or_else(
            || {
                id.strip_prefix('-')
                    .unwrap_or(id)
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            },
            |name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        );
        if !id_ok || !thread.bytes().all(|b| b.is_ascii_digit()) {
            return Err("each chat must be @channel or a numeric chat ID[:thread ID]".into());
        }
    }
    let secrets = vec![token.clone(), secret.to_string()];
    let telegram = Telegram {
        token: token.clone(),
        chats,
        notification: opts.flag(&["notification"], true)?,
        preview: opts.flag(&["preview"], true)?,
        title: opts.text(&["title"])?,
    };
    Ok((Service::Telegram(telegram), secrets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_follow_shoutrrr() {
        assert_eq!(header_name("acceptLanguage").unwrap(), "Accept-Language");
        assert_eq!(header_name("X-Api-Key").unwrap(), "X-Api-Key");
        assert_eq!(header_name("authorization").unwrap(), "Authorization");
        assert!(header_name("").is_err());
    }

    #[test]
    fn slack_tokens_follow_shoutrrr_grammar() {
        let p3 = "XXXXXXXXXXXXXXXXXXXXXXXX";
        assert!(split_slack_token(&format!("T00000000/B00000000/{p3}")).is_some());
        assert!(split_slack_token(&format!("hook:T00000000-B00000000-{p3}")).is_some());
        assert!(split_slack_token(&format!("T00000000,B00000000,{p3}")).is_some());
        assert_eq!(
            split_slack_token(&format!("xoxp-123456789-123456789-{p3}"))
                .unwrap()
                .0,
            "xoxp"
        );
        assert!(split_slack_token(&format!("t00000000/B00000000/{p3}")).is_none());
        assert!(split_slack_token(&format!("T00000000/B00000000-{p3}")).is_none());
        assert!(split_slack_token("T00000000/B00000000/short").is_none());
    }
}
