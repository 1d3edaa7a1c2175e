//! Idempotency keys as Roost keeps them: never the key itself, only its
//! SHA-256; the first request's fingerprint, an HMAC under a secret derived
//! from the key; and its response, sealed (ChaCha20-Poly1305) under another
//! secret derived from it. Whoever reads the table learns neither the
//! requests' bodies (a sign-in's password) nor the responses (its token)
//! without the key, which only the client has.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

use super::FieldError;
use super::crypto::{hex, hmac};

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
const NONCE_LEN: usize = 12;

/// A client's `Idempotency-Key`, checked: 1–255 printable ASCII characters.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdempotencyKey(…)")
    }
}

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Result<Self, FieldError> {
        let printable = raw.iter().all(|b| (0x20..=0x7e).contains(b));
        if raw.is_empty() || raw.len() > MAX_KEY_LEN || !printable {
            return Err(FieldError::new(
                "Idempotency-Key",
                "invalid_idempotency_key",
                format!("an Idempotency-Key is 1 to {MAX_KEY_LEN} printable ASCII characters"),
            ));
        }
        // Printable ASCII is UTF-8.
        Ok(Self(String::from_utf8_lossy(raw).into_owned()))
    }

    /// What the table stores in the key's place.
    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes()))
    }

    /// The secrets for this key used by `scope` (a user, an address).
    pub fn secrets(&self, scope: &str) -> KeySecrets {
        let root = hmac(
            self.0.as_bytes(),
            &[b"roost idempotency v1\0", scope.as_bytes()],
        );
        KeySecrets {
            fingerprint: hmac(&root, &[b"fingerprint"]),
            seal: hmac(&root, &[b"seal"]),
        }
    }
}

/// Derived from a key and its scope; never stored.
#[derive(Clone)]
pub struct KeySecrets {
    fingerprint: [u8; 32],
    seal: [u8; 32],
}

impl KeySecrets {
    /// What makes two requests "the same": method, path with query, body.
    pub fn fingerprint(&self, method: &str, path: &str, body: &[u8]) -> String {
        hex(&hmac(
            &self.fingerprint,
            &[method.as_bytes(), b"\0", path.as_bytes(), b"\0", body],
        ))
    }

    /// Seals a response (status bound in) as nonce ‖ ciphertext. (The
    /// cipher refuses only bodies past 256 GiB.)
    pub fn seal(&self, status: u16, body: &[u8]) -> Option<Vec<u8>> {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.seal));
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let aad = status.to_be_bytes();
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce_bytes),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .ok()?;
        let mut out = nonce_bytes.to_vec();
        out.extend(sealed);
        Some(out)
    }

    /// The body `seal` sealed with this status, if it was this key's.
    pub fn open(&self, status: u16, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.seal));
        let aad = status.to_be_bytes();
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_1_to_255_printable_ascii_characters() {
        assert!(IdempotencyKey::parse(b"a").is_ok());
        assert!(IdempotencyKey::parse("k".repeat(255).as_bytes()).is_ok());
        assert!(IdempotencyKey::parse(b"order 42: retry #1").is_ok());
        for bad in [
            &b""[..],
            "k".repeat(256).as_bytes(),
            b"tab\there",
            "caf\u{e9}".as_bytes(),
            b"nul\0",
        ] {
            let e = IdempotencyKey::parse(bad).unwrap_err();
            assert_eq!(e.code, "invalid_idempotency_key");
        }
    }

    #[test]
    fn fingerprints_differ_by_method_path_body_key_and_scope() {
        let key = IdempotencyKey::parse(b"k1").unwrap();
        let s = key.secrets("user:1");
        let base = s.fingerprint("POST", "/api/v1/bookings", b"{}");
        assert_eq!(base, s.fingerprint("POST", "/api/v1/bookings", b"{}"));
        assert_ne!(base, s.fingerprint("PATCH", "/api/v1/bookings", b"{}"));
        assert_ne!(base, s.fingerprint("POST", "/api/v1/bookings/1", b"{}"));
        assert_ne!(base, s.fingerprint("POST", "/api/v1/bookings", b"{ }"));
        assert_ne!(
            base,
            key.secrets("user:2")
                .fingerprint("POST", "/api/v1/bookings", b"{}")
        );
        let other = IdempotencyKey::parse(b"k2").unwrap();
        assert_ne!(
            base,
            other
                .secrets("user:1")
                .fingerprint("POST", "/api/v1/bookings", b"{}")
        );
        assert_eq!(key.hash().len(), 64);
        assert!(!key.hash().contains("k1"));
    }

    #[test]
    fn a_sealed_response_opens_only_with_its_key_scope_and_status() {
        let key = IdempotencyKey::parse(b"k1").unwrap();
        let body = br#"{"token":"secret-token"}"#;
        let sealed = key.secrets("ip:127.0.0.1").seal(200, body).unwrap();
        assert!(!sealed.windows(12).any(|w| w == b"secret-token"));
        assert_eq!(
            key.secrets("ip:127.0.0.1").open(200, &sealed).as_deref(),
            Some(&body[..])
        );
        assert_eq!(key.secrets("ip:127.0.0.1").open(201, &sealed), None);
        assert_eq!(key.secrets("ip:10.0.0.1").open(200, &sealed), None);
        let other = IdempotencyKey::parse(b"k2").unwrap();
        assert_eq!(other.secrets("ip:127.0.0.1").open(200, &sealed), None);
    }
}
