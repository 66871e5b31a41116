//! Secrets of member accounts: activation and reset tokens, one-time passphrases, passwords.
//!
//! Tokens are long random strings, stored only as a keyed hash (HMAC-SHA256 under a server key),
//! which is enough for 160 random bits and lets a token be found by its hash. Passphrases and
//! passwords are chosen by people, so they are stored as salted argon2 hashes (slow on purpose:
//! hash them off the committer thread). Every comparison is constant-time. Nothing here logs.

use std::path::Path;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::deliveries::seal::SealKey;

/// Letters and digits that cannot be mistaken for one another when read aloud or printed.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// The server key tokens are hashed under.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    pub fn from_bytes(bytes: [u8; 32]) -> TokenKey {
        TokenKey(bytes)
    }

    /// Reads the key file (64 hex digits), or creates it with a fresh random key (mode 0600).
    pub fn load_or_create(path: &Path) -> Result<TokenKey, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = from_hex(text.trim())
                    .filter(|b| b.len() == 32)
                    .ok_or_else(|| format!("{} does not hold a key of 64 hex digits", path.display()))?;
                let mut key = [0u8; 32];
                key.copy_from_slice(&bytes);
                Ok(TokenKey(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                fill_random(&mut key);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                write_private(path, &hex(&key)).map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(TokenKey(key))
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// The token a nonce stands for: HMAC under this key, read as 32 characters of the
    /// unambiguous alphabet (rejection-sampled, so every character is equally likely). The store
    /// keeps the nonce and the token's hash; the token itself exists only in what is sent.
    pub fn derive(&self, nonce: &str) -> String {
        let mut out = String::with_capacity(32);
        let limit = 256 - (256 % ALPHABET.len());
        let mut counter: u32 = 0;
        while out.len() < 32 {
            let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
            mac.update(b"tributary-token\0");
            mac.update(nonce.as_bytes());
            mac.update(&counter.to_be_bytes());
            for b in mac.finalize().into_bytes() {
                if (b as usize) < limit && out.len() < 32 {
                    out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
                }
            }
            counter += 1;
        }
        out
    }

    /// The key notifications' secrets are sealed under while they wait in the outbox: HMAC of a
    /// fixed label under this key (a KDF for a key that is already uniformly random), so no
    /// second secret has to be kept, and the sealing key is not the hashing key itself.
    pub fn sealing_key(&self) -> SealKey {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"tributary-outbox-sealing-key-v1");
        SealKey::from_bytes(mac.finalize().into_bytes().into())
    }

    /// The keyed hash of a token, as hex: what the store keeps and indexes.
    pub fn hash(&self, token: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(token.trim().as_bytes());
        hex(&mac.finalize().into_bytes())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Random bytes from the operating system.
pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system gives random bytes");
}

/// `n` random characters from the unambiguous alphabet (about 4.95 bits each).
fn random_text(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        fill_random(&mut buf);
        // Rejection sampling keeps every character equally likely.
        for b in buf {
            let limit = 256 - (256 % ALPHABET.len());
            if (b as usize) < limit && out.len() < n {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    out
}

/// A new activation or reset token: 32 characters, about 158 random bits.
pub fn new_token() -> String {
    random_text(32)
}

/// A generated one-time passphrase, easy to read out: `XXXX-XXXX-XXXX-XXXX` (about 79 bits).
pub fn new_passphrase() -> String {
    let text = random_text(16);
    [&text[0..4], &text[4..8], &text[8..12], &text[12..16]].join("-")
}

/// The argon2 hash (PHC string, salted) of a password or passphrase. Slow: not on the
/// committer thread.
pub fn hash_password(secret: &str) -> String {
    let mut salt = [0u8; 16];
    fill_random(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes make a salt");
    argon2::Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .expect("argon2 hashes any input")
        .to_string()
}

/// Whether `secret` matches an argon2 hash; constant-time inside argon2. Slow, as above.
pub fn verify_password(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            argon2::Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Constant-time equality of two hashes (or any two strings of secrets).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// SHA-256 of an API key, hex: how `[[api_clients]]` store keys.
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed_under_the_key() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
        let key = TokenKey::from_bytes([7; 32]);
        let other = TokenKey::from_bytes([8; 32]);
        assert_eq!(key.hash(&a), key.hash(&a));
        assert_ne!(key.hash(&a), other.hash(&a));
        assert_eq!(key.hash(&a).len(), 64);
        assert!(!key.hash(&a).contains(&a));
        let derived = key.derive("nonce-1");
        assert_eq!(derived.len(), 32);
        assert_eq!(derived, key.derive("nonce-1"));
        assert_ne!(derived, key.derive("nonce-2"));
        assert_ne!(derived, other.derive("nonce-1"));
    }

    #[test]
    fn passphrases_and_passwords_verify_only_themselves() {
        let phrase = new_passphrase();
        assert_eq!(phrase.len(), 19);
        let hash = hash_password(&phrase);
        assert!(hash.starts_with("$argon2"));
        assert!(verify_password(&phrase, &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password(&phrase, "not a hash"));
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
    }

    #[test]
    fn the_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/members.key");
        let first = TokenKey::load_or_create(&path).unwrap();
        let again = TokenKey::load_or_create(&path).unwrap();
        assert_eq!(first.hash("t"), again.hash("t"));
        std::fs::write(&path, "short").unwrap();
        assert!(TokenKey::load_or_create(&path).is_err());
    }
}
