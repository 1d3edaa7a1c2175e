//! Opaque bearer tokens: 32 random bytes, base64url; the database keeps only
//! their SHA-256, so a leaked table holds nothing a client could present.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A token as handed to the client, and its hash as stored.
pub struct IssuedToken(pub String, pub String);

pub fn generate() -> IssuedToken {
    let mut bytes = [0u8; 32];
    // The thread-local generator is a CSPRNG seeded from the operating system.
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    IssuedToken(token, hash)
}

/// The stored form of a presented token.
pub fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Does this look like one of our tokens? (Saves a database round trip for garbage.)
pub fn is_well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_well_formed() {
        let IssuedToken(a, ha) = generate();
        let IssuedToken(b, _) = generate();
        assert_ne!(a, b);
        assert!(is_well_formed(&a));
        assert_eq!(ha, hash(&a));
        assert_eq!(ha.len(), 64);
        assert!(!is_well_formed("short"));
        assert!(!is_well_formed(&"x".repeat(42).replace('x', "!")));
    }
}
