//! Tokens of an external identity provider: RS256 and ES256 tokens verified against a JWKS served by a local
//! HTTP server, with key rotation, refresh limits, outages and the `--jwks-url` flag.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use clap::Parser as _;
use http_body_util::BodyExt;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use todo_bin::auth::{AuthError, Authenticator, JwksRefresh};
use todo_bin::config::{Cli, Command};
use todo_bin::testing::TestApp;
use tower::ServiceExt;
use uuid::Uuid;

const ISSUER: &str = "https://idp.example.test/";
const AUDIENCE: &str = "todo-api";

/// A signing key with its public JWK.
struct Key {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    public_pem: String,
    jwk: Value,
}

impl Key {
    fn rsa(kid: &str) -> Key {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
        let pem = private.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8");
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("public PEM");
        Key::new(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA PEM"),
            public_pem,
        )
    }

    fn ec(kid: &str) -> Key {
        use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let private = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let pem = private.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8");
        let public_pem = private
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("public PEM");
        Key::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_pem(pem.as_bytes()).expect("EC PEM"),
            public_pem,
        )
    }

    fn new(kid: &str, alg: Algorithm, encoding: EncodingKey, public_pem: String) -> Key {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("JWK");
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Key {
            kid: kid.to_owned(),
            alg,
            encoding,
            public_pem,
            jwk: serde_json::to_value(jwk).expect("JWK JSON"),
        }
    }

    /// A token for `user` signed by this key under its own `kid`.
    fn token(&self, user: Uuid) -> String {
        self.sign(&self.kid, &claims(user))
    }

    /// `claims` signed by this key, naming `kid`.
    fn sign(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }
}

/// Keys are slow to generate in a debug build: made once for all tests.
struct Keys {
    rsa: Key,
    ec: Key,
    rotated: Key,
    foreign: Key,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys {
    rsa: Key::rsa("rsa-1"),
    ec: Key::ec("ec-1"),
    rotated: Key::rsa("rsa-2"),
    foreign: Key::ec("foreign"),
});

fn without(claims: &Value, name: &str) -> Value {
    let mut c = claims.clone();
    c.as_object_mut().expect("object").remove(name);
    c
}

fn claims(user: Uuid) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": user.to_string(), "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600})
}

/// A local identity provider: serves `document` at `/jwks` with `status`, and counts requests.
struct Provider {
    url: String,
    document: Arc<Mutex<Value>>,
    status: Arc<AtomicU16>,
    fetches: Arc<AtomicUsize>,
}

impl Provider {
    async fn start(keys: &[&Key]) -> Provider {
        let document = Arc::new(Mutex::new(set(keys)));
        let status = Arc::new(AtomicU16::new(200));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (d, s, f) = (document.clone(), status.clone(), fetches.clone());
        let router = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (d, s, f) = (d.clone(), s.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    let status =
                        StatusCode::from_u16(s.load(Ordering::SeqCst)).expect("status code");
                    let body = d.lock().expect("document").to_string();
                    (status, [(header::CONTENT_TYPE, "application/json")], body)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Provider {
            url: format!("http://{addr}/jwks"),
            document,
            status,
            fetches,
        }
    }

    fn publish(&self, document: Value) {
        *self.document.lock().expect("document") = document;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn set(keys: &[&Key]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
}

/// Refetch at will; sets stay fresh for the test's length.
fn eager() -> JwksRefresh {
    JwksRefresh {
        min_interval: Duration::ZERO,
        max_age: Duration::from_secs(3600),
    }
}

async fn app_for(provider: &Provider, refresh: JwksRefresh) -> TestApp {
    TestApp::spawn_with_auth(Authenticator::jwks_with_refresh(
        provider.url.clone(),
        Some(ISSUER),
        Some(AUDIENCE),
        refresh,
    ))
    .await
}

struct Response {
    status: StatusCode,
    content_type: String,
    retry_after: Option<String>,
    body: Value,
}

async fn call(
    app: &TestApp,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Response {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let res = app.router().oneshot(req).await.expect("infallible");
    let status = res.status();
    let text = |name: header::HeaderName| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = text(header::CONTENT_TYPE).unwrap_or_default();
    let retry_after = text(header::RETRY_AFTER);
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    Response {
        status,
        content_type,
        retry_after,
        body,
    }
}

async fn list(app: &TestApp, token: &str) -> Response {
    call(app, Method::GET, "/api/v1/tasks", Some(token), None).await
}

/// Asserts a 401 problem whose detail contains `needle`.
fn assert_unauthorized(r: &Response, needle: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.content_type, "application/problem+json");
    let detail = r.body["detail"].as_str().expect("detail");
    assert!(detail.contains(needle), "`{detail}` lacks `{needle}`");
}

/// Asserts a 503 problem with `Retry-After` whose detail contains `needle`.
fn assert_unavailable(r: &Response, needle: &str) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.content_type, "application/problem+json");
    assert!(r.retry_after.is_some(), "no Retry-After");
    let detail = r.body["detail"].as_str().expect("detail");
    assert!(detail.contains(needle), "`{detail}` lacks `{needle}`");
}

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// An unsigned token (`alg: none`) naming a key of the set.
fn unsigned(user: Uuid) -> String {
    let header = b64url(br#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#);
    let payload = b64url(claims(user).to_string().as_bytes());
    format!("{header}.{payload}.")
}

#[tokio::test]
async fn rs256_and_es256_tokens_of_the_set_are_accepted_and_sub_is_the_user() {
    let keys = &*KEYS;
    let provider = Provider::start(&[&keys.rsa, &keys.ec]).await;
    let app = app_for(&provider, JwksRefresh::default()).await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let created = call(
        &app,
        Method::POST,
        "/api/v1/tasks",
        Some(&keys.rsa.token(alice)),
        Some(json!({"title": "Renew passport"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id");
    let uri = format!("/api/v1/tasks/{id}");
    let mine = call(&app, Method::GET, &uri, Some(&keys.ec.token(alice)), None).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(mine.body["title"], "Renew passport");
    for token in [keys.rsa.token(bob), keys.ec.token(bob)] {
        let theirs = call(&app, Method::GET, &uri, Some(&token), None).await;
        assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.body);
    }
    let listed = list(&app, &keys.ec.token(bob)).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["items"], json!([]));
    // The set was fetched once, on the first request.
    assert_eq!(provider.fetches(), 1);
}

#[tokio::test]
async fn tokens_the_set_does_not_vouch_for_are_401_problems() {
    let keys = &*KEYS;
    let provider = Provider::start(&[&keys.rsa, &keys.ec]).await;
    let app = app_for(&provider, JwksRefresh::default()).await;
    let user = Uuid::new_v4();
    let now = chrono::Utc::now().timestamp();
    let with = |changes: Value| {
        let mut c = claims(user);
        for (k, v) in changes.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    };
    let cases: Vec<(String, &str)> = vec![
        // Signed by a key outside the set, under its own kid and under a kid of the set.
        (keys.foreign.token(user), "unknown key id `foreign`"),
        (
            keys.foreign.sign("ec-1", &claims(user)),
            "signature does not verify",
        ),
        // A key of the set, named by the wrong kid.
        (
            keys.rsa.sign("nope", &claims(user)),
            "unknown key id `nope`",
        ),
        // A key of the set, under the kid of a key of another kind.
        (
            keys.rsa.sign("ec-1", &claims(user)),
            "key `ec-1` is for ES256",
        ),
        (
            keys.rsa
                .sign("rsa-1", &with(json!({"exp": now - 120, "iat": now - 3600}))),
            "token expired",
        ),
        (
            keys.ec
                .sign("ec-1", &with(json!({"iss": "https://evil.example.test/"}))),
            "wrong issuer",
        ),
        (
            keys.ec.sign("ec-1", &with(json!({"aud": "another-api"}))),
            "wrong audience",
        ),
        (
            keys.rsa.sign("rsa-1", &with(json!({"nbf": now + 3600}))),
            "not valid yet",
        ),
        // A configured issuer or audience is required, not only checked when present.
        (
            keys.rsa.sign("rsa-1", &without(&claims(user), "iss")),
            "missing claim `iss`",
        ),
        (
            keys.ec.sign("ec-1", &without(&claims(user), "aud")),
            "missing claim `aud`",
        ),
        (
            keys.rsa
                .sign("rsa-1", &with(json!({"sub": "alice@example.test"}))),
            "`sub` must be a user id",
        ),
        (unsigned(user), "unreadable token header"),
        ("not.a.token".to_owned(), "unreadable token header"),
    ];
    for (token, needle) in &cases {
        assert_unauthorized(&list(&app, token).await, needle);
    }
    // The classic confusion: HS256 with the public key as the shared secret.
    let confused = jsonwebtoken::encode(
        &Header {
            kid: Some("rsa-1".into()),
            ..Header::new(Algorithm::HS256)
        },
        &claims(user),
        &EncodingKey::from_secret(keys.rsa.public_pem.as_bytes()),
    )
    .expect("sign");
    assert_unauthorized(&list(&app, &confused).await, "algorithm HS256 not accepted");
    let no_kid = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims(user),
        &keys.rsa.encoding,
    )
    .expect("sign");
    assert_unauthorized(&list(&app, &no_kid).await, "no `kid`");
    // MCP refuses the same tokens.
    let r = call(
        &app,
        Method::POST,
        "/mcp",
        Some(&unsigned(user)),
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}

#[tokio::test]
async fn tokens_of_the_wrong_kind_never_cause_a_fetch() {
    let keys = &*KEYS;
    let provider = Provider::start(&[&keys.rsa]).await;
    let app = app_for(&provider, eager()).await;
    let user = Uuid::new_v4();
    let hs256 = Authenticator::shared_secret(&"secret".to_owned().into(), None, None)
        .mint(
            todo_domain::UserId::from_uuid(user),
            chrono::Duration::hours(1),
        )
        .expect("mint");
    assert_unauthorized(&list(&app, &hs256).await, "algorithm HS256 not accepted");
    assert_unauthorized(
        &list(&app, &unsigned(user)).await,
        "unreadable token header",
    );
    assert_eq!(provider.fetches(), 0);
}

#[tokio::test]
async fn a_key_published_after_start_is_fetched_on_demand_once() {
    let keys = &*KEYS;
    let provider = Provider::start(&[&keys.rsa]).await;
    let app = app_for(&provider, eager()).await;
    let user = Uuid::new_v4();
    // Concurrent first requests share one fetch.
    let token = keys.rsa.token(user);
    let firsts = futures::future::join_all((0..16).map(|_| list(&app, &token))).await;
    assert!(firsts.iter().all(|r| r.status == StatusCode::OK));
    assert_eq!(provider.fetches(), 1);
    // The provider rotates: a new key appears beside the old one.
    provider.publish(set(&[&keys.rsa, &keys.rotated]));
    let r = list(&app, &keys.rotated.token(user)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(provider.fetches(), 2);
    // Both keys now verify without further fetches.
    for token in [keys.rsa.token(user), keys.rotated.token(user)] {
        assert_eq!(list(&app, &token).await.status, StatusCode::OK);
    }
    assert_eq!(provider.fetches(), 2);
}

#[tokio::test]
async fn unknown_key_ids_are_refetched_at_most_once_per_interval() {
    let keys = &*KEYS;
    let provider = Provider::start(&[&keys.rsa]).await;
    let app = app_for(
        &provider,
        JwksRefresh {
            min_interval: Duration::from_secs(2),
            max_age: Duration::from_secs(3600),
        },
    )
    .await;
    let user = Uuid::new_v4();
    assert_eq!(
        list(&app, &keys.rsa.token(user)).await.status,
        StatusCode::OK
    );
    assert_eq!(provider.fetches(), 1);
    provider.publish(set(&[&keys.rsa, &keys.rotated]));
    // Within the interval, a flood of unknown kids (and the new one) is refused without touching the provider.
    for i in 0..20 {
        let token = keys.foreign.sign(&format!("random-{i}"), &claims(user));
        assert_unauthorized(&list(&app, &token).await, "unknown key id");
    }
    assert_unauthorized(
        &list(&app, &keys.rotated.token(user)).await,
        "unknown key id `rsa-2`",
    );
    assert_eq!(provider.fetches(), 1);
    // After it, the new key is fetched.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = list(&app, &keys.rotated.token(user)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(provider.fetches(), 2);
}

#[tokio::test]
async fn a_withdrawn_key_stops_verifying_once_the_set_is_old() {
    let keys = &*KEYS;
    let provider = Provider::start(&[&keys.rsa, &keys.rotated]).await;
    let app = app_for(
        &provider,
        JwksRefresh {
            min_interval: Duration::ZERO,
            max_age: Duration::from_millis(500),
        },
    )
    .await;
    let user = Uuid::new_v4();
    assert_eq!(
        list(&app, &keys.rsa.token(user)).await.status,
        StatusCode::OK
    );
    provider.publish(set(&[&keys.rotated]));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_unauthorized(
        &list(&app, &keys.rsa.token(user)).await,
        "unknown key id `rsa-1`",
    );
    assert_eq!(
        list(&app, &keys.rotated.token(user)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_a_503_problem() {
    let keys = &*KEYS;
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("address")
    };
    let app = TestApp::spawn_with_auth(Authenticator::jwks_with_refresh(
        format!("http://{closed}/jwks"),
        Some(ISSUER),
        Some(AUDIENCE),
        eager(),
    ))
    .await;
    let token = keys.rsa.token(Uuid::new_v4());
    assert_unavailable(&list(&app, &token).await, "could not be fetched");
    let r = call(&app, Method::POST, "/mcp", Some(&token), Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    // Health and metrics need no token, so they answer whatever the provider does.
    for open in ["/healthz", "/metrics"] {
        assert_eq!(
            call(&app, Method::GET, open, None, None).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_failing_provider_is_a_503_and_known_keys_keep_working() {
    let keys = &*KEYS;
    let provider = Provider::start(&[&keys.rsa]).await;
    let refresh = JwksRefresh {
        min_interval: Duration::ZERO,
        max_age: Duration::from_millis(200),
    };
    let user = Uuid::new_v4();
    // Errors before any key was fetched: an error status, then a document that is not a key set.
    provider.status.store(500, Ordering::SeqCst);
    let app = app_for(&provider, refresh).await;
    assert_unavailable(&list(&app, &keys.rsa.token(user)).await, "answered 500");
    provider.status.store(200, Ordering::SeqCst);
    provider.publish(json!({"not": "keys"}));
    assert_unavailable(
        &list(&app, &keys.rsa.token(user)).await,
        "not a JWKS document",
    );
    // The provider recovers, then fails again once the set is old: the keys fetched keep verifying, a key id
    // they do not have is a 503 (the provider may know it), not a 401.
    provider.publish(set(&[&keys.rsa]));
    assert_eq!(
        list(&app, &keys.rsa.token(user)).await.status,
        StatusCode::OK
    );
    provider.status.store(503, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = list(&app, &keys.rsa.token(user)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_unavailable(&list(&app, &keys.rotated.token(user)).await, "answered 503");
    // Forged tokens stay 401 during the outage.
    assert_unauthorized(
        &list(&app, &keys.foreign.sign("rsa-1", &claims(user))).await,
        "key `rsa-1` is for RS256",
    );
}

#[tokio::test]
async fn odd_entries_of_the_set_are_skipped_and_pinned_algorithms_are_enforced() {
    let keys = &*KEYS;
    let mut pinned = keys.rotated.jwk.clone();
    pinned["alg"] = json!("RS512");
    let mut encryption = keys.rsa.jwk.clone();
    encryption["use"] = json!("enc");
    encryption["kid"] = json!("enc-1");
    let mut kidless = keys.ec.jwk.clone();
    kidless.as_object_mut().expect("object").remove("kid");
    let provider = Provider::start(&[]).await;
    provider.publish(json!({"keys": [
        {"kty": "OKP", "crv": "X448", "x": "AAAA", "kid": "x448"},
        {"kty": "RSA", "n": "%%%", "e": "AQAB", "kid": "broken", "alg": "RS256"},
        {"kty": "future-kind", "kid": "future"},
        encryption,
        kidless,
        pinned,
        keys.rsa.jwk,
        keys.ec.jwk,
    ]}));
    let app = app_for(&provider, JwksRefresh::default()).await;
    let user = Uuid::new_v4();
    for token in [keys.rsa.token(user), keys.ec.token(user)] {
        let r = list(&app, &token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert_unauthorized(
        &list(&app, &keys.rsa.sign("enc-1", &claims(user))).await,
        "unknown key id `enc-1`",
    );
    assert_unauthorized(
        &list(&app, &keys.rotated.token(user)).await,
        "key `rsa-2` is for RS512",
    );
    assert_unavailable(
        &list(&app, &keys.rsa.sign("broken", &claims(user))).await,
        "key `broken`",
    );
    assert_eq!(provider.fetches(), 1);
}

fn parse(args: &[&str]) -> Result<Cli, String> {
    Cli::try_parse_from(std::iter::once("todo").chain(args.iter().copied()))
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_jwks_url_flag_configures_the_authenticator_and_bad_values_name_it() {
    let keys = &*KEYS;
    let provider = Provider::start(&[&keys.ec]).await;
    let cli = parse(&[
        "serve",
        "--jwks-url",
        &provider.url,
        "--jwt-issuer",
        ISSUER,
        "--jwt-audience",
        AUDIENCE,
    ])
    .expect("valid flags");
    let Some(Command::Serve(serve)) = cli.command else {
        panic!("serve expected")
    };
    let auth = &serve.auth;
    assert_eq!(auth.jwks_url.as_deref(), Some(provider.url.as_str()));
    let authenticator = Authenticator::jwks(
        auth.jwks_url.clone().expect("url"),
        auth.jwt_issuer.as_deref(),
        auth.jwt_audience.as_deref(),
    );
    let user = Uuid::new_v4();
    assert_eq!(
        authenticator.authenticate(&keys.ec.token(user)).await,
        Ok(todo_domain::UserId::from_uuid(user))
    );
    assert!(matches!(
        authenticator.mint(
            todo_domain::UserId::from_uuid(user),
            chrono::Duration::hours(1)
        ),
        Err(AuthError::Invalid(_))
    ));
    for bad in [
        "not a url",
        "ftp://idp.example.test/jwks",
        "file:///etc/jwks.json",
        "",
    ] {
        let err = parse(&["serve", "--jwks-url", bad]).expect_err(bad);
        assert!(err.contains("--jwks-url"), "{bad}: {err}");
    }
    let err = parse(&["serve", "--jwks-url", &provider.url, "--jwt-secret", "s"])
        .expect_err("conflicting flags");
    assert!(
        err.contains("--jwks-url") && err.contains("--jwt-secret"),
        "{err}"
    );
    let cli = parse(&[
        "mcp",
        "--token",
        "t",
        "--jwks-url",
        "https://idp.example.test/jwks",
    ])
    .expect("mcp accepts --jwks-url");
    assert!(matches!(cli.command, Some(Command::Mcp(_))));
}
