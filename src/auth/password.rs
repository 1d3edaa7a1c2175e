//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes).
//!
//! Hashing is CPU-heavy, so it runs on the blocking pool, never on an async worker.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::Password;

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hashes a new password into a PHC string (algorithm, parameters, salt, hash).
pub async fn hash(password: Password) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
    })
    .await?
}

/// Checks `candidate` against a stored PHC hash. A malformed stored hash is an error.
pub async fn verify(candidate: String, stored_hash: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&stored_hash)
            .map_err(|e| anyhow::anyhow!("stored password hash is malformed: {e}"))?;
        Ok(hasher()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok())
    })
    .await?
}

/// A hash of a random password, made once at startup. Verifying against it
/// when an email is unknown makes a wrong email cost as much time as a wrong
/// password, so response times do not reveal which accounts exist.
pub async fn decoy_hash() -> anyhow::Result<String> {
    let random = crate::auth::token::generate().0;
    hash(Password::parse(&random).map_err(|e| anyhow::anyhow!(e.message))?).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let stored = hash(Password::parse("correct horse").unwrap())
            .await
            .unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(
            verify("correct horse".into(), stored.clone())
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse".into(), stored).await.unwrap());
    }

    #[tokio::test]
    async fn malformed_hash_is_an_error_not_a_match() {
        assert!(verify("x".into(), "not-a-hash".into()).await.is_err());
    }
}
