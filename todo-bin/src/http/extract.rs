//! Extractors whose rejections are problem details: JSON bodies, paths, the authenticated user.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use todo_domain::UserId;
use uuid::Uuid;

use super::AppState;
use super::problem::ApiError;

/// The user of the request, from a verified bearer token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthUser(pub(crate) UserId);

impl FromRequestParts<Arc<AppState>> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        state
            .auth
            .authenticate_header(header)
            .await
            .map(AuthUser)
            .map_err(|e| {
                let mut err = ApiError::unauthorized(e.to_string());
                if matches!(e, crate::auth::AuthError::KeysUnavailable(_)) {
                    err = ApiError::unavailable(e.to_string());
                }
                err
            })
    }
}

/// A JSON body whose every rejection is a problem: 415 without a JSON content type, 413 when too large, 400 for
/// malformed JSON, 422 with the field for a body of the wrong shape.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Json<T>(pub(crate) T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::bad_request(format!("malformed JSON: {}", inner_message(&e)))
        }
        JsonRejection::JsonDataError(e) => {
            let text = inner_message(&e);
            let field = field_of(&text);
            ApiError::field(field, text)
        }
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "the request body is too large",
            )
        }
        other => ApiError::bad_request(other.body_text()),
    }
}

fn inner_message(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    cur.to_string()
}

/// serde's messages name the field as `` field `x` `` (missing, unknown) or as a path prefix (`x: invalid type`).
fn field_of(message: &str) -> String {
    for marker in ["missing field `", "unknown field `"] {
        if let Some(rest) = message.split(marker).nth(1)
            && let Some(name) = rest.split('`').next()
        {
            return name.to_owned();
        }
    }
    match message.split_once(": ") {
        Some((path, _)) if !path.contains(' ') && !path.is_empty() => path.to_owned(),
        _ => "body".to_owned(),
    }
}

/// A UUID path segment; anything else is a 404 for `what`.
pub(crate) fn parse_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(what))
}
