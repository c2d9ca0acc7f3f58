//! Bearer-token authentication: HS256 with a shared secret, or RS256/ES256 against an identity provider's JWKS.
//!
//! The user is the token's `sub` claim, a UUID. Nothing else identifies a user: MCP tools and REST handlers take
//! the user from the verified token, never from a request field.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use todo_domain::UserId;
use tokio::sync::RwLock;
use uuid::Uuid;

/// Why a request is not authenticated. Every variant is a 401 with its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    /// The header is not `Bearer <token>`.
    #[error("malformed Authorization header: expected `Bearer <token>`")]
    Malformed,
    /// The token failed verification.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token's `sub` is not a UUID.
    #[error("invalid token: `sub` must be a user id (UUID)")]
    BadSubject,
    /// The identity provider's keys could not be fetched.
    #[error("cannot verify tokens right now: {0}")]
    KeysUnavailable(String),
}

/// The claims this server reads and writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    #[serde(default)]
    pub iat: i64,
}

/// Verifies bearer tokens.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

enum Inner {
    Shared {
        key: DecodingKey,
        encoding: EncodingKey,
        validation: Validation,
    },
    Jwks {
        url: String,
        client: reqwest::Client,
        validation: Validation,
        keys: RwLock<(JwkSet, Option<Instant>)>,
    },
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.inner {
            Inner::Shared { .. } => f.write_str("Authenticator(HS256)"),
            Inner::Jwks { url, .. } => write!(f, "Authenticator(JWKS {url})"),
        }
    }
}

fn validation(
    algorithms: &[Algorithm],
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Validation {
    let mut v = Validation::new(algorithms[0]);
    v.algorithms = algorithms.to_vec();
    v.leeway = 30;
    v.set_required_spec_claims(&["exp", "sub"]);
    if let Some(iss) = issuer {
        v.set_issuer(&[iss]);
    }
    match audience {
        Some(aud) => v.set_audience(&[aud]),
        None => v.validate_aud = false,
    }
    v
}

impl Authenticator {
    /// HS256 with a shared secret.
    pub fn shared_secret(
        secret: &SecretString,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        Authenticator {
            inner: Arc::new(Inner::Shared {
                key: DecodingKey::from_secret(bytes),
                encoding: EncodingKey::from_secret(bytes),
                validation: validation(&[Algorithm::HS256], issuer, audience),
            }),
        }
    }

    /// RS256/ES256 tokens verified against the keys published at `url` (fetched lazily, refreshed when a token
    /// names an unknown key id, at most once a minute).
    pub fn jwks(url: String, issuer: Option<&str>, audience: Option<&str>) -> Self {
        Authenticator {
            inner: Arc::new(Inner::Jwks {
                url,
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap_or_default(),
                validation: validation(&[Algorithm::RS256, Algorithm::ES256], issuer, audience),
                keys: RwLock::new((JwkSet { keys: Vec::new() }, None)),
            }),
        }
    }

    /// A random 256-bit secret, for the embedded default.
    pub fn random_secret() -> SecretString {
        use rand::Rng;
        let bytes: [u8; 32] = rand::rng().random();
        SecretString::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    /// Mints an HS256 token for `user` (only with a shared secret).
    ///
    /// # Errors
    /// When this authenticator verifies against a JWKS (it has no signing key).
    pub fn mint(&self, user: UserId, ttl: chrono::Duration) -> Result<String, AuthError> {
        match &*self.inner {
            Inner::Shared { encoding, .. } => mint_with(encoding, user, ttl),
            Inner::Jwks { .. } => Err(AuthError::Invalid(
                "tokens are issued by the identity provider".into(),
            )),
        }
    }

    /// Verifies an `Authorization` header value and returns the user.
    ///
    /// # Errors
    /// An [`AuthError`] that says what is wrong.
    pub async fn authenticate_header(&self, header: Option<&str>) -> Result<UserId, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Malformed)?;
        self.authenticate(token).await
    }

    /// Verifies a token and returns the user.
    ///
    /// # Errors
    /// An [`AuthError`] that says what is wrong.
    pub async fn authenticate(&self, token: &str) -> Result<UserId, AuthError> {
        let claims = match &*self.inner {
            Inner::Shared {
                key, validation, ..
            } => decode(token, key, validation)?,
            Inner::Jwks {
                url,
                client,
                validation,
                keys,
            } => {
                let header = jsonwebtoken::decode_header(token)
                    .map_err(|e| AuthError::Invalid(e.to_string()))?;
                let kid = header
                    .kid
                    .ok_or_else(|| AuthError::Invalid("token has no `kid`".into()))?;
                let mut key = find_key(&keys.read().await.0, &kid)?;
                if key.is_none() {
                    let mut guard = keys.write().await;
                    let stale = guard
                        .1
                        .is_none_or(|at| at.elapsed() > Duration::from_secs(60));
                    if stale {
                        let set = fetch_jwks(client, url).await?;
                        *guard = (set, Some(Instant::now()));
                    }
                    key = find_key(&guard.0, &kid)?;
                }
                let key =
                    key.ok_or_else(|| AuthError::Invalid(format!("unknown key id `{kid}`")))?;
                decode(token, &key, validation)?
            }
        };
        Uuid::parse_str(&claims.sub)
            .map(UserId::from_uuid)
            .map_err(|_| AuthError::BadSubject)
    }
}

/// Mints an HS256 token with a secret (for `todo token`).
///
/// # Errors
/// When signing fails.
pub fn mint_token(
    secret: &SecretString,
    user: UserId,
    ttl: chrono::Duration,
) -> Result<String, AuthError> {
    mint_with(
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
        user,
        ttl,
    )
}

fn mint_with(key: &EncodingKey, user: UserId, ttl: chrono::Duration) -> Result<String, AuthError> {
    let now = Utc::now().timestamp();
    let claims = Claims {
        sub: user.to_string(),
        exp: now + ttl.num_seconds(),
        iat: now,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)
        .map_err(|e| AuthError::Invalid(e.to_string()))
}

fn decode(token: &str, key: &DecodingKey, validation: &Validation) -> Result<Claims, AuthError> {
    jsonwebtoken::decode::<Claims>(token, key, validation)
        .map(|d| d.claims)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            AuthError::Invalid(match e.kind() {
                ErrorKind::ExpiredSignature => "token expired".into(),
                ErrorKind::InvalidSignature => "signature does not verify".into(),
                ErrorKind::InvalidAlgorithm => "algorithm not accepted".into(),
                ErrorKind::InvalidIssuer => "wrong issuer".into(),
                ErrorKind::InvalidAudience => "wrong audience".into(),
                ErrorKind::MissingRequiredClaim(c) => format!("missing claim `{c}`"),
                _ => e.to_string(),
            })
        })
}

fn find_key(set: &JwkSet, kid: &str) -> Result<Option<DecodingKey>, AuthError> {
    set.find(kid)
        .map(|jwk| {
            DecodingKey::from_jwk(jwk)
                .map_err(|e| AuthError::KeysUnavailable(format!("unusable key `{kid}`: {e}")))
        })
        .transpose()
}

async fn fetch_jwks(client: &reqwest::Client, url: &str) -> Result<JwkSet, AuthError> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| AuthError::KeysUnavailable(e.to_string()))?;
    if !response.status().is_success() {
        return Err(AuthError::KeysUnavailable(format!(
            "{url} answered {}",
            response.status()
        )));
    }
    response
        .json::<JwkSet>()
        .await
        .map_err(|e| AuthError::KeysUnavailable(format!("{url}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator::shared_secret(&SecretString::from("s3cret"), None, None)
    }

    #[tokio::test]
    async fn minted_token_authenticates_its_user() {
        let user = UserId::from_uuid(Uuid::new_v4());
        let token = auth().mint(user, chrono::Duration::hours(1)).expect("mint");
        assert_eq!(
            auth()
                .authenticate_header(Some(&format!("Bearer {token}")))
                .await,
            Ok(user)
        );
    }

    #[tokio::test]
    async fn bad_tokens_say_what_is_wrong() {
        let user = UserId::from_uuid(Uuid::new_v4());
        assert_eq!(
            auth().authenticate_header(None).await,
            Err(AuthError::Missing)
        );
        assert_eq!(
            auth().authenticate_header(Some("Basic abc")).await,
            Err(AuthError::Malformed)
        );
        let other = Authenticator::shared_secret(&SecretString::from("other"), None, None);
        let token = other.mint(user, chrono::Duration::hours(1)).expect("mint");
        assert_eq!(
            auth().authenticate(&token).await,
            Err(AuthError::Invalid("signature does not verify".into()))
        );
        let expired = auth()
            .mint(user, chrono::Duration::hours(-2))
            .expect("mint");
        assert_eq!(
            auth().authenticate(&expired).await,
            Err(AuthError::Invalid("token expired".into()))
        );
    }
}
