//! Bearer-token authentication: HS256 with a shared secret, or RS256/ES256 against an identity provider's JWKS.
//!
//! The user is the token's `sub` claim, a UUID. Nothing else identifies a user: MCP tools and REST handlers take
//! the user from the verified token, never from a request field.
//!
//! With a JWKS URL the key set is fetched on the first request that needs it and kept. It is fetched again when a
//! token names a key id the set does not have (the identity provider rotated its keys) and before a set older
//! than [`JwksRefresh::max_age`] verifies a token (so a key the provider withdrew stops verifying), but never more
//! often than once per [`JwksRefresh::min_interval`], however many tokens with unknown key ids arrive. Concurrent
//! requests share one fetch. When a fetch fails, the keys fetched before keep verifying; a token that no fetched
//! key can verify is then refused with [`AuthError::KeysUnavailable`] (503), never accepted. Keys marked for
//! encryption (`"use": "enc"`) and entries this server cannot read are left out of the set rather than making the
//! whole document unusable.

use std::str::FromStr as _;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use todo_domain::UserId;
use uuid::Uuid;

/// Why a request is not authenticated. [`AuthError::KeysUnavailable`] is a 503 (the server cannot verify any
/// token right now); every other variant is a 401 with its message.
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
    /// The identity provider's keys could not be fetched or used.
    #[error("cannot verify tokens right now: {0}")]
    KeysUnavailable(String),
}

/// The claims this server reads.
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

/// The claims of a minted token: [`Claims`] plus the issuer and audience the server is configured to require.
#[derive(Serialize)]
struct MintedClaims<'a> {
    sub: String,
    exp: i64,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// When a JWKS is fetched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksRefresh {
    /// The shortest time between two fetches: a token naming an unknown key id within it is refused without one.
    pub min_interval: Duration,
    /// How long a fetched set verifies tokens before it is fetched again.
    pub max_age: Duration,
}

impl Default for JwksRefresh {
    /// At most one fetch every 10 seconds; the set is fetched again once it is 10 minutes old.
    fn default() -> Self {
        JwksRefresh {
            min_interval: Duration::from_secs(10),
            max_age: Duration::from_secs(600),
        }
    }
}

/// Verifies bearer tokens.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

// One per authenticator, behind an `Arc`: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Shared {
        key: DecodingKey,
        encoding: EncodingKey,
        validation: Validation,
        issuer: Option<String>,
        audience: Option<String>,
    },
    Jwks(Jwks),
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.inner {
            Inner::Shared { .. } => f.write_str("Authenticator(HS256)"),
            Inner::Jwks(jwks) => write!(f, "Authenticator(JWKS {})", jwks.url),
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
    v.validate_nbf = true;
    // jsonwebtoken checks `iss` and `aud` only when a token has them: a configured one must also be required,
    // or a token that leaves it out passes.
    let mut required = vec!["exp", "sub"];
    if let Some(iss) = issuer {
        v.set_issuer(&[iss]);
        required.push("iss");
    }
    match audience {
        Some(aud) => {
            v.set_audience(&[aud]);
            required.push("aud");
        }
        None => v.validate_aud = false,
    }
    v.set_required_spec_claims(&required);
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
                issuer: issuer.map(str::to_owned),
                audience: audience.map(str::to_owned),
            }),
        }
    }

    /// RS256/ES256 tokens verified against the keys published at `url`, refreshed as [`JwksRefresh::default`]
    /// says (see the module documentation).
    pub fn jwks(url: String, issuer: Option<&str>, audience: Option<&str>) -> Self {
        Self::jwks_with_refresh(url, issuer, audience, JwksRefresh::default())
    }

    /// [`Authenticator::jwks`] with its own refresh timing.
    pub fn jwks_with_refresh(
        url: String,
        issuer: Option<&str>,
        audience: Option<&str>,
        refresh: JwksRefresh,
    ) -> Self {
        Authenticator {
            inner: Arc::new(Inner::Jwks(Jwks {
                url,
                // Well inside the default request time limit, so a hanging identity provider is a 503 with a
                // reason rather than a timed-out request.
                client: reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap_or_default(),
                // One validation per algorithm: jsonwebtoken refuses a key unless every algorithm a validation
                // allows is of the key's family, so a single RS256+ES256 validation would refuse every token.
                validations: [Algorithm::RS256, Algorithm::ES256]
                    .map(|alg| validation(&[alg], issuer, audience)),
                refresh,
                cache: RwLock::new(KeyCache::default()),
                fetching: tokio::sync::Mutex::new(()),
            })),
        }
    }

    /// A random 256-bit secret, for the embedded default.
    pub fn random_secret() -> SecretString {
        use rand::Rng;
        let bytes: [u8; 32] = rand::rng().random();
        SecretString::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    /// Mints an HS256 token for `user` (only with a shared secret), with the issuer and audience this
    /// authenticator requires.
    ///
    /// # Errors
    /// When this authenticator verifies against a JWKS (it has no signing key).
    pub fn mint(&self, user: UserId, ttl: chrono::Duration) -> Result<String, AuthError> {
        match &*self.inner {
            Inner::Shared {
                encoding,
                issuer,
                audience,
                ..
            } => mint_with(encoding, user, ttl, issuer.as_deref(), audience.as_deref()),
            Inner::Jwks(_) => Err(AuthError::Invalid(
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
            Inner::Jwks(jwks) => {
                let header = jsonwebtoken::decode_header(token).map_err(|e| {
                    AuthError::Invalid(format!(
                        "unreadable token header (a JWT signed with RS256 or ES256 is expected): {e}"
                    ))
                })?;
                // Checked before any key lookup, so a token of the wrong kind never causes a fetch.
                let validation = jwks
                    .validations
                    .iter()
                    .find(|v| v.algorithms == [header.alg])
                    .ok_or_else(|| {
                        AuthError::Invalid(format!(
                            "algorithm {:?} not accepted: tokens must be signed with RS256 or ES256",
                            header.alg
                        ))
                    })?;
                let kid = header
                    .kid
                    .ok_or_else(|| AuthError::Invalid("token has no `kid` header".into()))?;
                let key = jwks.key_for(&kid, header.alg).await?;
                decode(token, &key, validation)?
            }
        };
        Uuid::parse_str(&claims.sub)
            .map(UserId::from_uuid)
            .map_err(|_| AuthError::BadSubject)
    }
}

/// The JWKS verifier's state.
struct Jwks {
    url: String,
    client: reqwest::Client,
    /// The accepted algorithms, one validation each.
    validations: [Validation; 2],
    refresh: JwksRefresh,
    cache: RwLock<KeyCache>,
    /// Held while fetching, so that concurrent requests share one fetch.
    fetching: tokio::sync::Mutex<()>,
}

/// The fetched keys and how the last fetches went.
#[derive(Default)]
struct KeyCache {
    keys: Vec<CachedKey>,
    /// The last successful fetch.
    fetched_at: Option<Instant>,
    /// The last fetch, successful or not.
    attempted_at: Option<Instant>,
    /// Why the last fetch failed; `None` after a successful one.
    error: Option<String>,
}

/// A signing key of the set, by key id.
#[derive(Clone)]
struct CachedKey {
    kid: String,
    /// The `alg` the set pins the key to, if it does.
    alg: Option<KeyAlgorithm>,
    /// The key, or why it cannot verify anything.
    key: Result<DecodingKey, String>,
}

impl Jwks {
    /// The key `kid` for a token signed with `alg`, fetching the set when the key is unknown or the set is old.
    async fn key_for(&self, kid: &str, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        if let Some(key) = self.cached(kid, false) {
            return self.usable(key, alg);
        }
        {
            let _one_fetch = self.fetching.lock().await;
            // Another request may have fetched while this one waited.
            if self.cached(kid, false).is_none() && self.may_fetch() {
                let result = fetch_jwks(&self.client, &self.url).await;
                self.store(result);
            }
        }
        match self.cached(kid, true) {
            Some(key) => self.usable(key, alg),
            None => Err(self.unknown(kid)),
        }
    }

    /// The cached key `kid`; unless `stale_ok`, only from a set younger than `max_age`.
    fn cached(&self, kid: &str, stale_ok: bool) -> Option<CachedKey> {
        let cache = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = cache
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.refresh.max_age);
        if !fresh && !stale_ok {
            return None;
        }
        cache.keys.iter().find(|k| k.kid == kid).cloned()
    }

    fn may_fetch(&self) -> bool {
        let cache = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .attempted_at
            .is_none_or(|at| at.elapsed() >= self.refresh.min_interval)
    }

    fn store(&self, result: Result<Vec<CachedKey>, String>) {
        let now = Instant::now();
        let mut cache = self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.attempted_at = Some(now);
        match result {
            Ok(keys) => {
                tracing::debug!(url = %self.url, keys = keys.len(), "fetched the JWKS");
                cache.keys = keys;
                cache.fetched_at = Some(now);
                cache.error = None;
            }
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, "cannot fetch the JWKS; keeping the keys fetched before");
                cache.error = Some(e);
            }
        }
    }

    /// Why no key `kid` is known: the set could not be fetched (503), or it has no such key (401).
    fn unknown(&self, kid: &str) -> AuthError {
        let cache = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &cache.error {
            Some(e) => AuthError::KeysUnavailable(format!(
                "the identity provider's key set could not be fetched ({e}); try again later"
            )),
            None => AuthError::Invalid(format!("unknown key id `{kid}`")),
        }
    }

    fn usable(&self, key: CachedKey, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        if let Some(pinned) = key.alg
            && Algorithm::from_str(&pinned.to_string()).ok() != Some(alg)
        {
            return Err(AuthError::Invalid(format!(
                "key `{}` is for {pinned}, the token is signed with {alg:?}",
                key.kid
            )));
        }
        key.key.map_err(|e| {
            AuthError::KeysUnavailable(format!(
                "key `{}` of the identity provider's key set is unusable: {e}",
                key.kid
            ))
        })
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
        None,
        None,
    )
}

fn mint_with(
    key: &EncodingKey,
    user: UserId,
    ttl: chrono::Duration,
    iss: Option<&str>,
    aud: Option<&str>,
) -> Result<String, AuthError> {
    let now = Utc::now().timestamp();
    let claims = MintedClaims {
        sub: user.to_string(),
        exp: now + ttl.num_seconds(),
        iat: now,
        iss,
        aud,
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
                ErrorKind::ImmatureSignature => "token not valid yet (`nbf`)".into(),
                ErrorKind::InvalidSignature => "signature does not verify".into(),
                ErrorKind::InvalidAlgorithm => "algorithm not accepted".into(),
                ErrorKind::InvalidIssuer => "wrong issuer".into(),
                ErrorKind::InvalidAudience => "wrong audience".into(),
                ErrorKind::MissingRequiredClaim(c) => format!("missing claim `{c}`"),
                _ => e.to_string(),
            })
        })
}

/// The largest JWKS document read (real ones are a few kilobytes).
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Fetches and reads a JWKS; the error says why it is unusable.
async fn fetch_jwks(client: &reqwest::Client, url: &str) -> Result<Vec<CachedKey>, String> {
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("{url}: {}", error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("{url}: {}", error_chain(&e)))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!(
                "{url}: the document is larger than {MAX_JWKS_BYTES} bytes"
            ));
        }
    }
    parse_jwks(&body).map_err(|e| format!("{url}: {e}"))
}

/// Reads the signing keys of a JWKS document, leaving out encryption keys, keys without a `kid` and entries
/// that are not keys this server can read (one odd key does not take the others down).
fn parse_jwks(body: &[u8]) -> Result<Vec<CachedKey>, String> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let set: RawSet = serde_json::from_slice(body)
        .map_err(|e| format!("not a JWKS document (`{{\"keys\": [...]}}`): {e}"))?;
    Ok(set
        .keys
        .into_iter()
        .filter_map(|raw| serde_json::from_value::<Jwk>(raw).ok())
        .filter(|jwk| jwk.common.public_key_use != Some(PublicKeyUse::Encryption))
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string());
            Some(CachedKey {
                kid,
                alg: jwk
                    .common
                    .key_algorithm
                    .filter(|a| *a != KeyAlgorithm::UNKNOWN_ALGORITHM),
                key,
            })
        })
        .collect())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
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

    #[tokio::test]
    async fn minted_tokens_carry_the_required_issuer_and_audience() {
        let user = UserId::from_uuid(Uuid::new_v4());
        let strict =
            Authenticator::shared_secret(&SecretString::from("s3cret"), Some("iss"), Some("aud"));
        let token = strict.mint(user, chrono::Duration::hours(1)).expect("mint");
        assert_eq!(strict.authenticate(&token).await, Ok(user));
        let plain = auth().mint(user, chrono::Duration::hours(1)).expect("mint");
        let refused = strict.authenticate(&plain).await;
        assert!(
            matches!(&refused, Err(AuthError::Invalid(m)) if m.starts_with("missing claim")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_key_set_keeps_the_signing_keys_it_can_read() {
        let body = serde_json::json!({"keys": [
            {"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "sig", "alg": "RS256", "use": "sig"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "enc", "use": "enc"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB"},
            {"kty": "OKP", "crv": "X25519", "x": "AAAA", "kid": "x25519"},
            {"kid": "nothing"},
        ]});
        let keys = parse_jwks(body.to_string().as_bytes()).expect("a key set");
        let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["sig"]);
        assert_eq!(keys[0].alg, Some(KeyAlgorithm::RS256));
        assert!(parse_jwks(b"[]").is_err());
        assert!(parse_jwks(b"<html>").is_err());
    }
}
