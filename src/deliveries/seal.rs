//! Sealed secrets of notifications: what keeps an activation token, a reset link or a sign-in
//! code out of the store and the journal while its notification waits to go out.
//!
//! A notification that carries a secret is stored with each secret replaced by a placeholder
//! (`{{sealed:NAME}}`, see [`placeholder`]) and the secrets themselves sealed with
//! XChaCha20-Poly1305 under a key derived from the server key (never a second secret to keep),
//! with a random 24-byte nonce and the delivery id as associated data: a sealed value opens only
//! for the delivery it was made for, so it cannot be moved to another one. The destination's
//! worker opens it just before sending and puts the secrets in place of the placeholders
//! ([`fill`]); the sealed value is dropped once the delivery is delivered or dead.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// The bytes of the nonce in front of every sealed value.
const NONCE_LEN: usize = 24;

/// The key secrets are sealed under (derived from the server key by its owner).
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    pub fn from_bytes(bytes: [u8; 32]) -> SealKey {
        SealKey(bytes)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }
}

/// Why secrets could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the operating system gave no random bytes for a nonce")]
    Random,
    #[error("the secrets could not be sealed")]
    Seal,
    /// Not base64, too short, another server key, another delivery, or changed on disk.
    #[error("the sealed secrets do not open under this server key for this delivery")]
    Open,
}

/// What stands in the stored text for the secret `name` until it is sent.
pub fn placeholder(name: &str) -> String {
    format!("{{{{sealed:{name}}}}}")
}

/// Seals `secrets` (name, value) for delivery `delivery_id`: base64 of nonce + ciphertext.
pub fn seal(key: &SealKey, delivery_id: &str, secrets: &[(String, String)]) -> Result<String, SealError> {
    let plain = serde_json::to_vec(secrets).map_err(|_| SealError::Seal)?;
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
    let sealed = key
        .cipher()
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: delivery_id.as_bytes(),
            },
        )
        .map_err(|_| SealError::Seal)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(STANDARD_NO_PAD.encode(out))
}

/// Opens what [`seal`] made for `delivery_id`: the secrets, (name, value).
pub fn open(key: &SealKey, delivery_id: &str, sealed: &str) -> Result<Vec<(String, String)>, SealError> {
    let bytes = STANDARD_NO_PAD.decode(sealed).map_err(|_| SealError::Open)?;
    if bytes.len() < NONCE_LEN {
        return Err(SealError::Open);
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let plain = key
        .cipher()
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: delivery_id.as_bytes(),
            },
        )
        .map_err(|_| SealError::Open)?;
    serde_json::from_slice(&plain).map_err(|_| SealError::Open)
}

/// `text` with each secret's placeholder replaced by the secret.
pub fn fill(text: &str, secrets: &[(String, String)]) -> String {
    secrets.iter().fold(text.to_string(), |text, (name, value)| {
        text.replace(&placeholder(name), value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Vec<(String, String)> {
        vec![
            ("token".into(), "ABCDEFGH23456789".into()),
            (
                "link".into(),
                "https://portal/activate?token=ABCDEFGH23456789".into(),
            ),
        ]
    }

    #[test]
    fn sealed_secrets_open_only_for_their_delivery_under_their_key() {
        let key = SealKey::from_bytes([1; 32]);
        let sealed = seal(&key, "member-email-7-0", &secrets()).unwrap();
        assert!(!sealed.contains("ABCDEFGH23456789"));
        assert_eq!(open(&key, "member-email-7-0", &sealed).unwrap(), secrets());
        // Another delivery, another key, a changed byte, garbage: none opens.
        assert!(open(&key, "member-email-8-0", &sealed).is_err());
        assert!(open(&SealKey::from_bytes([2; 32]), "member-email-7-0", &sealed).is_err());
        let mut bytes = STANDARD_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(open(&key, "member-email-7-0", &STANDARD_NO_PAD.encode(bytes)).is_err());
        assert!(open(&key, "member-email-7-0", "not base64!").is_err());
        assert!(open(&key, "member-email-7-0", "AAAA").is_err());
        // A fresh nonce each time: the same secrets never seal alike.
        assert_ne!(sealed, seal(&key, "member-email-7-0", &secrets()).unwrap());
    }

    #[test]
    fn placeholders_are_filled_with_their_secrets() {
        let text = format!(
            "Token {}\nLink {}\n{{{{other}}}}",
            placeholder("token"),
            placeholder("link")
        );
        assert_eq!(
            fill(&text, &secrets()),
            "Token ABCDEFGH23456789\nLink https://portal/activate?token=ABCDEFGH23456789\n{{other}}"
        );
    }
}
