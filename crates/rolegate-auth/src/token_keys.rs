//! The keys that seal tokens kept in the session: AES-256-GCM, each key named by a key id so
//! keys can rotate (decrypt with any, encrypt with the current one).

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The HKDF `info` of a token key derived from the session cookie key.
const DERIVE_INFO: &[u8] = b"rolegate token key v1";
/// The format tag of a sealed value: `v1.<key id>.<nonce + ciphertext, base64url>`.
const FORMAT: &str = "v1";
const NONCE_LEN: usize = 12;

/// One AES-256 key and its id (the first 8 bytes of its SHA-256, hex): the id is stored beside
/// each sealed value, so the right key is tried first and a rotated-out one is named in logs.
#[derive(Clone)]
pub struct TokenKey {
    id: String,
    key: [u8; 32],
}

impl std::fmt::Debug for TokenKey {
    // Never the key itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey").field("id", &self.id).finish()
    }
}

impl TokenKey {
    /// A key from its 32 bytes (`session.token_key`).
    pub fn from_bytes(key: [u8; 32]) -> TokenKey {
        let digest = Sha256::digest(key);
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        TokenKey { id, key }
    }

    /// A key from a slice that must be exactly 32 bytes.
    pub fn from_slice(key: &[u8]) -> Option<TokenKey> {
        <[u8; 32]>::try_from(key).ok().map(TokenKey::from_bytes)
    }

    /// A key derived from the session cookie key with HKDF-SHA256 (info
    /// `rolegate token key v1`): a separate key, so the cookie key never encrypts data.
    pub fn derive(session_key: &[u8]) -> TokenKey {
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit (8160), so expand cannot fail.
        let _ = hkdf::Hkdf::<Sha256>::new(None, session_key).expand(DERIVE_INFO, &mut key);
        TokenKey::from_bytes(key)
    }

    /// The key id: safe to log.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The current key and the previous ones still accepted for reading.
#[derive(Debug, Clone)]
pub struct TokenKeys {
    current: TokenKey,
    previous: Vec<TokenKey>,
}

/// Why a sealed value could not be opened: never more than the key id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("no configured key opens the value sealed under key id {0}")]
    NoKey(String),
}

impl TokenKeys {
    /// Encrypts with `current`; decrypts with it or any of `previous`.
    pub fn new(current: TokenKey, previous: Vec<TokenKey>) -> TokenKeys {
        TokenKeys { current, previous }
    }

    /// A random key for this process only (tests, and hosts that keep no tokens across
    /// restarts): tokens sealed with it are unreadable after a restart and count as absent.
    pub fn ephemeral() -> TokenKeys {
        let key: [u8; 32] = Aes256Gcm::generate_key(&mut OsRng).into();
        TokenKeys::new(TokenKey::from_bytes(key), Vec::new())
    }

    /// The id of the key new values are sealed with.
    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    /// Seals `plain` under the current key, with a fresh random nonce.
    pub(crate) fn seal(&self, plain: &[u8]) -> String {
        let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(self.current.key));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // The associated data binds the key id, so a value cannot be relabelled.
        let payload = aes_gcm::aead::Payload {
            msg: plain,
            aad: self.current.id.as_bytes(),
        };
        let Ok(sealed) = cipher.encrypt(&nonce, payload) else {
            // Only for inputs of gigabytes; the caller then keeps nothing.
            return String::new();
        };
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!(
            "{FORMAT}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(out)
        )
    }

    /// Opens a value sealed by [`seal`](Self::seal) under any configured key.
    pub(crate) fn open(&self, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(FORMAT), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(OpenError::Malformed);
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(OpenError::Malformed);
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| OpenError::NoKey(id.chars().take(16).collect()))?;
        let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(key.key));
        cipher
            .decrypt(
                &Nonce::from(<[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| OpenError::Malformed)?),
                aes_gcm::aead::Payload {
                    msg: data,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| OpenError::NoKey(key.id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> TokenKey {
        TokenKey::from_bytes([byte; 32])
    }

    #[test]
    fn sealed_values_open_and_hide_the_plain_text() {
        let keys = TokenKeys::new(key(1), vec![]);
        let sealed = keys.seal(b"refresh-token-secret");
        assert!(!sealed.contains("refresh-token-secret"));
        assert!(sealed.starts_with(&format!("v1.{}.", keys.current_id())));
        assert_eq!(keys.open(&sealed).unwrap(), b"refresh-token-secret");
        assert_ne!(keys.seal(b"x"), keys.seal(b"x"), "a fresh nonce each time");
    }

    #[test]
    fn rotation_reads_old_values_and_writes_with_the_new_key() {
        let old = TokenKeys::new(key(1), vec![]);
        let sealed_old = old.seal(b"tokens");
        let rotated = TokenKeys::new(key(2), vec![key(1)]);
        assert_eq!(rotated.open(&sealed_old).unwrap(), b"tokens");
        let sealed_new = rotated.seal(b"tokens");
        assert!(sealed_new.contains(key(2).id()));
        assert_eq!(
            old.open(&sealed_new),
            Err(OpenError::NoKey(key(2).id().to_owned()))
        );
        let dropped = TokenKeys::new(key(2), vec![]);
        assert!(
            dropped.open(&sealed_old).is_err(),
            "a dropped key reads nothing"
        );
    }

    #[test]
    fn tampered_or_relabelled_values_are_refused() {
        let keys = TokenKeys::new(key(1), vec![key(3)]);
        let sealed = keys.seal(b"tokens");
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert!(keys.open(&String::from_utf8(bytes).unwrap()).is_err());
        let relabelled = sealed.replacen(key(1).id(), key(3).id(), 1);
        assert!(
            keys.open(&relabelled).is_err(),
            "the key id is authenticated"
        );
        for junk in ["", "v1", "v1.x.y", "v2.a.b", "v1..%%%"] {
            assert!(keys.open(junk).is_err(), "{junk}");
        }
    }

    #[test]
    fn derived_keys_are_stable_and_distinct_from_the_input() {
        let a = TokenKey::derive(&[7u8; 64]);
        assert_eq!(a.id(), TokenKey::derive(&[7u8; 64]).id());
        assert_ne!(a.id(), TokenKey::derive(&[8u8; 64]).id());
        assert_ne!(a.key, [7u8; 32]);
        assert!(
            !format!("{a:?}").contains("key:"),
            "Debug shows the id only"
        );
    }
}
