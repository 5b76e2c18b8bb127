//! Passwords (argon2id, PHC strings) and access tokens (HS256 JWTs with an expiry).
//!
//! Hashing is CPU-bound, so it runs on the blocking pool. Login verifies against a fixed dummy
//! hash when the username is unknown, so both failures cost the same time.

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::error::ApiError;
use filestore_contract::domain::{Password, UserId};

/// Hashes a password into a PHC string (`$argon2id$v=19$...`) with a fresh random salt.
///
/// # Errors
/// Only if the blocking pool or argon2 fail, which is a server fault.
pub async fn hash_password(password: &Password) -> anyhow::Result<String> {
    let password = password.expose().to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
    .await
    .context("password hashing task")?
}

static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(b"not a real password, only burns time", &salt)
        .expect("argon2 default parameters are valid")
        .to_string()
});

/// Checks a password against a stored PHC string; with `None` (unknown user) it checks against
/// a dummy hash and answers false, taking the same time.
///
/// # Errors
/// Only if the blocking pool fails.
pub async fn verify_password(password: &Password, stored: Option<String>) -> anyhow::Result<bool> {
    let password = password.expose().to_owned();
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let ok = PasswordHash::new(&phc)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        known && ok
    })
    .await
    .context("password verification task")
}

/// What a token says about its bearer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id.
    pub sub: UserId,
    /// The username, for logs and `whoami` without a read.
    pub usr: String,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Expires at (seconds since the epoch).
    pub exp: u64,
    /// The user's token version when issued; a password change bumps it.
    #[serde(default)]
    pub ver: u64,
}

/// Signs and checks access tokens with one HS256 key.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &Secret, ttl: Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a token for a user.
    ///
    /// # Errors
    /// Only if signing fails, a server fault.
    pub fn issue(&self, user_id: &UserId, username: &str, version: u64) -> anyhow::Result<String> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        let claims = Claims {
            sub: user_id.clone(),
            usr: username.to_string(),
            iat: now,
            exp: now + self.ttl.as_secs(),
            ver: version,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .context("signing a token")
    }

    /// Checks a token's signature (HS256 only, so `alg: none` and key confusion fail) and expiry.
    ///
    /// # Errors
    /// 401 for any token that is not one of ours or has expired.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized("token has expired; log in again")
                }
                _ => ApiError::unauthorized("invalid token"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> TokenKeys {
        TokenKeys::new(&Secret::new(secret), Duration::from_secs(60))
    }

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash() {
        let right = Password::parse("correct horse").unwrap();
        let wrong = Password::parse("battery staple").unwrap();
        let phc = hash_password(&right).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password(&right, Some(phc.clone())).await.unwrap());
        assert!(!verify_password(&wrong, Some(phc)).await.unwrap());
        assert!(!verify_password(&right, None).await.unwrap());
        assert!(
            !verify_password(&right, Some("garbage".into()))
                .await
                .unwrap()
        );
    }

    #[test]
    fn tokens_round_trip_and_reject_other_keys() {
        let k = keys("0123456789abcdef0123456789abcdef");
        let user = UserId::generate();
        let token = k.issue(&user, "alice", 3).unwrap();
        let claims = k.verify(&token).unwrap();
        assert_eq!(
            (&claims.sub, claims.usr.as_str(), claims.ver),
            (&user, "alice", 3)
        );
        let other = keys("fedcba9876543210fedcba9876543210");
        assert_eq!(other.verify(&token).unwrap_err().status(), 401);
        assert_eq!(k.verify("not.a.token").unwrap_err().status(), 401);
    }

    #[test]
    fn alg_none_and_expired_tokens_are_rejected() {
        use base64::Engine;
        let k = keys("0123456789abcdef0123456789abcdef");
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let user = UserId::generate();
        let none = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(&format!(
                r#"{{"sub":"{user}","usr":"a","iat":0,"exp":99999999999}}"#
            ))
        );
        assert_eq!(k.verify(&none).unwrap_err().status(), 401);
        let claims = Claims {
            sub: user,
            usr: "a".into(),
            iat: 0,
            exp: 1000,
            ver: 0,
        };
        let expired =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &k.encoding).unwrap();
        let err = k.verify(&expired).unwrap_err();
        assert!(err.to_string().contains("expired"));
    }
}
