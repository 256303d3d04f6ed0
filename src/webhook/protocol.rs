//! The `PullPilot` relay protocol, version 1: what travels between `listen`, a relay and whoever
//! pokes. Both sides (`listen` and `relay`) use these types, and the conformance tests check
//! them against literal frames, so either side can be swapped for another implementation.
//!
//! - Provision: `POST <base>/v1/provision` with [`ProvisionRequest`] → 201 [`Provisioned`].
//! - Listen: WebSocket at `listenUrl`; server `hello` → client `auth` → server `ready`; then the
//!   client sends the text `ping` every 30 s (answered by `pong`) and the server sends `poke`.
//! - Poke: `POST` or `GET <base>/v1/poke/<id>` → 202 `{"status":"accepted"}`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom as _;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// The protocol version carried in `hello` and `poke` frames.
pub const VERSION: u32 = 1;
/// Signed before the webhook id and the challenge bytes (raw concatenation, no separators).
pub const SIGNING_CONTEXT: &[u8] = b"pullpilot-webhook-relay/v1";
/// The label `listen` registers with.
pub const LABEL: &str = "pullpilot";
/// How long a challenge is valid, and how long a socket may stay unauthenticated.
pub const AUTH_WINDOW_SECS: u64 = 30;
/// The client's heartbeat: the text frame [`PING`] this often, answered by [`PONG`].
pub const PING_INTERVAL_SECS: u64 = 30;
pub const PING: &str = "ping";
pub const PONG: &str = "pong";
/// Largest frame either side accepts.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Largest provision or poke body a relay reads.
pub const MAX_BODY_BYTES: usize = 4096;
/// Longest poke reason a relay forwards (longer ones are cut).
pub const MAX_REASON_CHARS: usize = 256;

/// WebSocket close codes and reasons a relay uses.
pub mod close {
    /// Policy violation: authentication failed or timed out.
    pub const POLICY: u16 = 1008;
    /// Try again later: the per-webhook socket cap is reached.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const NO_CHALLENGE: &str = "no challenge";
    pub const CHALLENGE_EXPIRED: &str = "challenge expired";
    pub const UNKNOWN_WEBHOOK: &str = "unknown webhook";
    pub const BAD_SIGNATURE: &str = "bad signature";
    pub const TOO_MANY: &str = "too many connections";
    pub const AUTH_TIMEOUT: &str = "auth timeout";
}

/// A JSON text frame on the listen socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Frame {
    /// Server → client, first frame: sign `challenge` (base64url, 32 bytes) before `exp`.
    Hello { v: u32, challenge: String, exp: u64 },
    /// Client → server: the base64url Ed25519 signature over [`signed_message`].
    Auth { sig: String },
    /// Server → client: authenticated.
    Ready,
    /// Server → client: something changed; run a pass. Never names an image.
    Poke {
        v: u32,
        id: String,
        ts: String,
        reason: Option<String>,
    },
}

impl Frame {
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("frames always serialise")
    }
}

/// `POST /v1/provision` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionRequest {
    pub pubkey: String,
    pub label: Option<String>,
}

/// `POST /v1/provision` answer (201). Keys are camelCase on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provisioned {
    pub webhook_id: String,
    pub poke_url: String,
    pub listen_url: String,
    pub ttl_days: u64,
}

/// The bytes a client signs: context ‖ webhook id ‖ challenge bytes.
pub fn signed_message(webhook_id: &str, challenge: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_CONTEXT.len() + webhook_id.len() + challenge.len());
    msg.extend_from_slice(SIGNING_CONTEXT);
    msg.extend_from_slice(webhook_id.as_bytes());
    msg.extend_from_slice(challenge);
    msg
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict unpadded base64url.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// `n` bytes from the system's secure random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("the system random source works");
    buf
}

/// A uniformly random duration in `[0, max]` (full jitter).
pub fn random_up_to(max: std::time::Duration) -> std::time::Duration {
    let nanos = max.as_nanos();
    if nanos == 0 {
        return std::time::Duration::ZERO;
    }
    let r = u128::from(u64::from_le_bytes(random_bytes::<8>()));
    std::time::Duration::from_nanos(((r * (nanos + 1)) >> 64) as u64)
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// An Ed25519 key pair from its 32-byte seed (the key file's content).
pub struct Identity {
    pair: Ed25519KeyPair,
}

impl Identity {
    pub fn from_seed(seed: &[u8; 32]) -> Identity {
        Identity {
            pair: Ed25519KeyPair::from_seed_unchecked(seed)
                .expect("any 32 bytes are an Ed25519 seed"),
        }
    }

    /// The public key as the relay stores it: unpadded base64url of 32 bytes.
    pub fn public_key(&self) -> String {
        b64url(self.pair.public_key().as_ref())
    }

    /// The `auth` frame's `sig` for this webhook and challenge.
    pub fn sign(&self, webhook_id: &str, challenge: &[u8]) -> String {
        b64url(
            self.pair
                .sign(&signed_message(webhook_id, challenge))
                .as_ref(),
        )
    }
}

/// Checks an `auth` signature against the registered public key (both base64url).
pub fn verify(public_key: &str, webhook_id: &str, challenge: &[u8], sig: &str) -> bool {
    let (Some(key), Some(sig)) = (b64url_decode(public_key), b64url_decode(sig)) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, key)
        .verify(&signed_message(webhook_id, challenge), &sig)
        .is_ok()
}

/// Whether `text` is a valid public key for provisioning; the error is the relay's error code.
pub fn check_public_key(text: &str) -> Result<(), &'static str> {
    let bytes = b64url_decode(text).ok_or("invalid_pubkey_encoding")?;
    if bytes.len() != 32 {
        return Err("invalid_pubkey_length");
    }
    Ok(())
}

/// Compares two secrets without revealing, through timing, where they differ or how long the
/// expected one is: both are hashed first, and the digests compared in full.
pub fn secrets_equal(given: &[u8], expected: &[u8]) -> bool {
    let a = ring::digest::digest(&ring::digest::SHA256, given);
    let b = ring::digest::digest(&ring::digest::SHA256, expected);
    a.as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_wire_shape() {
        let hello: Frame =
            serde_json::from_str(r#"{"type":"hello","v":1,"challenge":"abc","exp":17}"#).unwrap();
        assert_eq!(
            hello,
            Frame::Hello {
                v: 1,
                challenge: "abc".into(),
                exp: 17
            }
        );
        assert_eq!(Frame::Ready.to_text(), r#"{"type":"ready"}"#);
        assert_eq!(
            Frame::Auth { sig: "s".into() }.to_text(),
            r#"{"type":"auth","sig":"s"}"#
        );
        let poke = Frame::Poke {
            v: 1,
            id: "ab".into(),
            ts: "2026-01-01T00:00:00Z".into(),
            reason: None,
        };
        assert_eq!(
            poke.to_text(),
            r#"{"type":"poke","v":1,"id":"ab","ts":"2026-01-01T00:00:00Z","reason":null}"#
        );
        let provisioned: Provisioned = serde_json::from_str(
            r#"{"webhookId":"wh_1","pokeUrl":"p","listenUrl":"l","ttlDays":180}"#,
        )
        .unwrap();
        assert_eq!(provisioned.webhook_id, "wh_1");
    }

    #[test]
    fn signatures_verify_only_for_the_same_id_and_challenge() {
        let id = Identity::from_seed(&[7; 32]);
        let sig = id.sign("wh_a", b"challenge");
        assert!(verify(&id.public_key(), "wh_a", b"challenge", &sig));
        assert!(!verify(&id.public_key(), "wh_b", b"challenge", &sig));
        assert!(!verify(&id.public_key(), "wh_a", b"challengf", &sig));
        let other = Identity::from_seed(&[8; 32]);
        assert!(!verify(&other.public_key(), "wh_a", b"challenge", &sig));
        assert!(!verify("not base64!", "wh_a", b"challenge", &sig));
    }

    #[test]
    fn the_signed_message_is_a_plain_concatenation() {
        assert_eq!(
            signed_message("wh_x", &[1, 2]),
            b"pullpilot-webhook-relay/v1wh_x\x01\x02".to_vec()
        );
    }

    #[test]
    fn public_keys_are_checked_like_the_reference_relay() {
        assert_eq!(check_public_key("!!"), Err("invalid_pubkey_encoding"));
        assert_eq!(
            check_public_key(&b64url(&[0; 31])),
            Err("invalid_pubkey_length")
        );
        assert_eq!(check_public_key(&b64url(&[0; 32])), Ok(()));
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(secrets_equal(b"s3cret", b"s3cret"));
        assert!(!secrets_equal(b"s3cret", b"s3cre"));
        assert!(!secrets_equal(b"", b"x"));
    }

    #[test]
    fn jitter_stays_in_range() {
        let max = std::time::Duration::from_millis(10);
        for _ in 0..1000 {
            assert!(random_up_to(max) <= max);
        }
        assert_eq!(
            random_up_to(std::time::Duration::ZERO),
            std::time::Duration::ZERO
        );
    }
}
