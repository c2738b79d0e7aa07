//! Problems as HTTP responses (`application/problem+json`).

use crate::problem::Problem;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// A handler's error: a problem to serve.
#[derive(Debug)]
pub struct ApiError(pub Problem);

impl From<Problem> for ApiError {
    fn from(p: Problem) -> ApiError {
        ApiError(p)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        tracing::error!(error = %e, "storage error while answering a read");
        ApiError(Problem::unavailable(format!("storage failed: {e}")))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem_response(&self.0)
    }
}

pub fn problem_response(p: &Problem) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(p).unwrap_or_default();
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body,
    )
        .into_response();
    let retry = p.retry_after.or((p.status == 503).then_some(1));
    if let Some(secs) = retry {
        if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError(Problem::not_found(format!(
        "no route for {}; see openapi.yaml for the routes",
        uri.path()
    )))
}

pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let p = Problem::new(
        405,
        "method-not-allowed",
        "Method not allowed",
        format!("{method} is not allowed on {}", uri.path()),
    );
    problem_response(&p)
}

/// axum's `Path`, refusing malformed path parameters (bad percent-encoding, invalid UTF-8)
/// with a problem instead of plain text.
pub struct ApiPath<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(ApiError(Problem::form(format!("malformed path: {e}")))),
        }
    }
}
