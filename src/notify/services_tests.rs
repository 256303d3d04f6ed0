//! URL tables for the HTTP services: every valid form (shoutrrr's documented examples among
//! them) builds the documented endpoint; every invalid one says why.

use super::EventKind;
use super::services::{Service, parse};
use super::tests::sample_event;
use super::{message, url};

fn parsed(text: &str) -> Result<Service, String> {
    parse(&url::parse(text)?).map(|(s, _)| s)
}

/// (URL, expected request URL of the first request) for every valid form, including
/// the examples in shoutrrr's documentation.
#[test]
fn valid_urls_build_the_documented_endpoints() {
    let ev = sample_event(EventKind::Updated);
    let msg = message::render(&ev, &jiff::tz::TimeZone::UTC);
    let cases = [
        ("generic://example.com", "https://example.com"),
        (
            "generic://example.com/api/v1/postStuff",
            "https://example.com/api/v1/postStuff",
        ),
        (
            "generic://HAIPAddress:8123/api/webhook/WebhookIDFromHA?template=json&disabletls=yes",
            "http://HAIPAddress:8123/api/webhook/WebhookIDFromHA",
        ),
        (
            "generic://example.com?@acceptLanguage=tlh-Piqd",
            "https://example.com",
        ),
        (
            "generic://example.com?template=json&$projection=retroazimuthal",
            "https://example.com",
        ),
        (
            "generic://example.com/p?foo=bar&_title=x",
            "https://example.com/p?foo=bar&title=x",
        ),
        (
            "generic+https://example.com/api/v1/postStuff?contenttype=text/plain",
            "https://example.com/api/v1/postStuff?contenttype=text%2Fplain",
        ),
        (
            "generic+http://127.0.0.1:8080/hook",
            "http://127.0.0.1:8080/hook",
        ),
        (
            "slack://T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        ),
        (
            "slack://ShoutrrrBot@T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX?channel=non-default-chan&color=good&emoji=sunny&title=Great+News",
            "",
        ),
        (
            "slack://ShoutrrrBot@T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX?channel=non-default-chan&color=good&title=Great+News",
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        ),
        (
            "slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook",
            "https://hooks.slack.com/services/WNA3PBYV6/F20DUQND3RQ/Webc4MAvoacrpPakR8phF0zi",
        ),
        (
            "slack://xoxb:123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N@C001CH4NN3L?color=good&title=Great+News&icon=man-scientist&botname=Shoutrrrbot",
            "https://slack.com/api/chat.postMessage",
        ),
        (
            "discord://W3dE2OZz4C13_4z_uHfDOoC7BqTW288s-z1ykqI0iJnY_HjRqMGO8Sc7YDqvf_KVKjhJ@693853386302554172",
            "https://discord.com/api/webhooks/693853386302554172/W3dE2OZz4C13_4z_uHfDOoC7BqTW288s-z1ykqI0iJnY_HjRqMGO8Sc7YDqvf_KVKjhJ",
        ),
        (
            "discord://token@123456789?splitLines=No&username=bot&color=0xff0000",
            "https://discord.com/api/webhooks/123456789/token",
        ),
        ("ntfy://ntfy.sh/alerts", "https://ntfy.sh/alerts"),
        (
            "ntfy://user:pass@ntfy.example.com:8443/alerts?priority=high&tags=warning,whale",
            "https://ntfy.example.com:8443/alerts",
        ),
        (
            "ntfy://127.0.0.1:8080/alerts?scheme=http",
            "http://127.0.0.1:8080/alerts",
        ),
        (
            "gotify://gotify.example.com:443/AzyoeNS.D4iJLVa/?title=Great+News&priority=1",
            "https://gotify.example.com:443/message",
        ),
        (
            "gotify://example.com:443/path/to/gotify/AzyoeNS.D4iJLVa/?title=Great+News&priority=1",
            "https://example.com:443/path/to/gotify/message",
        ),
        (
            "gotify://10.0.0.5/Atoken?disabletls=yes",
            "http://10.0.0.5/message",
        ),
        (
            "telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram?chats=@mychannel,-1001234567890:42",
            "https://api.telegram.org/bot110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage",
        ),
        (
            "telegram://110201543:AAHdqTcv@telegram/?channels=@chan&notification=no&preview=false&parseMode=html",
            "https://api.telegram.org/bot110201543:AAHdqTcv/sendMessage",
        ),
    ];
    for (input, want) in cases {
        let got = parsed(input);
        if want.is_empty() {
            // shoutrrr's own docs example uses `emoji`, which shoutrrr itself rejects.
            assert!(got.is_err(), "{input}");
            continue;
        }
        let service = got.unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(service.requests(&msg, None)[0].url, want, "{input}");
    }
}

#[test]
fn invalid_urls_say_why() {
    let cases = [
        ("generic://", "host is missing"),
        ("generic://h?template=custom", "template=json"),
        ("generic://h?method=GET", "method"),
        ("generic://h?disabletls=maybe", "yes or no"),
        ("generic://h?@bad%20name=1", "header name"),
        ("generic://h?@X-A=a%0Ab", "control"),
        ("slack://T0/B0/X0", "T…/B…/X…"),
        (
            "slack://hook:T00000000-B00000000,XXXXXXXXXXXXXXXXXXXXXXXX@webhook",
            "T…/B…/X…",
        ),
        ("slack://webhook", "T…/B…/X…"),
        (
            "slack://xoxb:123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N@",
            "needs a channel",
        ),
        (
            "slack://T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX?colour=red",
            "unknown option `colour`",
        ),
        ("discord://123456789", "token is missing"),
        ("discord://token@webhook", "must be a number"),
        ("discord://token@123/raw", "not supported"),
        ("discord://tok:en@123", "no `:`"),
        ("discord://token@123?color=blue", "hex colour"),
        ("ntfy://ntfy.sh/", "topic"),
        ("ntfy://ntfy.sh/a/b", "topic"),
        ("ntfy://ntfy.sh/t?scheme=ftp", "scheme"),
        ("ntfy://ntfy.sh/t?priority=9", "priority"),
        ("ntfy://ntfy.sh/t?title=a%0Db", "control"),
        ("gotify://host", "token"),
        ("gotify://host/", "token"),
        ("gotify://u:p@host/Atoken", "no user"),
        ("gotify://host/Atoken?priority=high", "whole number"),
        ("gotify:///Atoken", "host is missing"),
        ("telegram://110201543:AAH@telegram", "chats"),
        ("telegram://110201543@telegram?chats=1", "bot token"),
        ("telegram://abc:AAH@telegram?chats=1", "123456:ABC-def"),
        ("telegram://1:AAH@telegram?chats=@a%20b", "@channel"),
        ("telegram://1:AAH@telegram/path?chats=1", "no path"),
        ("matrix://user:pass@host/", "unknown scheme"),
    ];
    for (input, want) in cases {
        let err = parsed(input)
            .err()
            .unwrap_or_else(|| panic!("{input} parsed"));
        assert!(err.contains(want), "{input}: {err}");
    }
}

#[test]
fn secrets_are_collected_for_scrubbing() {
    let (_, s) = parse(&url::parse("discord://s3cr3t@123").unwrap()).unwrap();
    assert_eq!(s, ["s3cr3t"]);
    let (_, s) = parse(&url::parse("gotify://h/sub/AzyoeNS.D4iJLVa").unwrap()).unwrap();
    assert_eq!(s, ["AzyoeNS.D4iJLVa"]);
    let (_, s) = parse(&url::parse("ntfy://u:pw@h/t").unwrap()).unwrap();
    assert_eq!(s, ["pw"]);
    let (_, s) =
        parse(&url::parse("generic://u:pw@h/hook/0123456789abcdef?k=v&title=t").unwrap()).unwrap();
    assert!(!s.iter().any(|x| x == "hook" || x == "t"), "{s:?}");
    for want in ["0123456789abcdef", "/hook/0123456789abcdef", "v", "pw"] {
        assert!(s.iter().any(|x| x == want), "{want}");
    }
}
