//! RFC 9457 problem details: every error response of the API.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, as named in the request (`title`, `due_date`, `query.limit`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An `application/problem+json` response body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Explanation of this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Field-level errors, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error answered as problem details.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    problem: Problem,
    retry_after: Option<u32>,
}

impl ApiError {
    /// A problem with a status, a type slug and a detail.
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            problem: Problem {
                kind: format!("https://todo.invalid/problems/{slug}"),
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                status: status.as_u16(),
                detail: Some(detail.into()),
                errors: Vec::new(),
            },
            retry_after: None,
        }
    }

    /// 422 with one field error.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::fields(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// 422 with field errors.
    pub fn fields(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", detail);
        e.problem.errors = errors;
        e
    }

    /// 400 for a request that cannot be read at all.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("{what} not found"),
        )
    }

    /// 409.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 503 with `Retry-After`.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail);
        e.retry_after = Some(1);
        e
    }

    /// 500; the detail is logged, never sent.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error.cause_chain = ?ErrorChain(error), "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to process the request",
        )
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut cur = Some(self.0);
        let mut first = true;
        while let Some(e) = cur {
            if !first {
                f.write_str(": ")?;
            }
            write!(f, "{e}")?;
            first = false;
            cur = e.source();
        }
        Ok(())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
